"""CoNLL04 (Roth & Yih 2004) joint entity/relation data -> unified RE records.

Source format (``shared/data/conll04/SOURCE.md``; btaille/sincere @ dd1c3491 ``data/conll04.json``, the file UIE's
``dataset_processing`` starts from; SpERT split): one JSON object ``{"train": [...], "dev": [...], "test": [...]}``;
each sentence ``{"tokens": [...], "entities": [{"type", "start", "end"}], "relations": [{"type", "head", "tail"}],
"orig_id"}`` with token offsets ``start`` inclusive / ``end`` exclusive and ``head`` / ``tail`` indexing
``entities``. The ACE05-Rel file that sincere's preprocessing produces (``ace05.json``) has the same layout; the
reader here is shared with ``processing.ace``.

Unified record (Mirror's CoNLL04 task is relation-triplet extraction): ``schema.rel`` = the five relations, ``ans.rel``
= ``{relation, head{text,span}, tail{text,span}}``. With ``with_entities=True`` (CLI ``--with-entities``) the record
also carries ``schema.ent`` / ``ans.ent`` (joint NER + RE) and the default instruction becomes
:data:`JOINT_INSTRUCTION`. Labels follow UIE's ``data_config/relation/conll04.yaml``:
``Loc -> location, Org -> organization, Peop -> people, Other -> other``; ``Kill -> kill, Live_In -> live in,
Located_In -> located in, OrgBased_In -> organization in, Work_For -> work for``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import JOINT_INSTRUCTION, RE_INSTRUCTION

from .convert import ConversionReport, TokenText, as_bool, read_json_file
from .registry import Benchmark, SourceFormatError, register

ENT_LABELS = {"Loc": "location", "Org": "organization", "Peop": "people", "Other": "other"}
REL_LABELS = {
    "Kill": "kill",
    "Live_In": "live in",
    "Located_In": "located in",
    "OrgBased_In": "organization in",
    "Work_For": "work for",
}


def spert_record(
    sent: Any,
    *,
    dataset: str,
    split: str,
    n: int,
    instruction: str,
    ent_labels: dict[str, str],
    rel_labels: dict[str, str],
    with_entities: bool,
    path: Path,
    report: ConversionReport,
) -> dict[str, Any]:
    """One SpERT-style sentence -> a unified record (shared by CoNLL04 and sincere's ACE05-Rel).

    ``path`` and the sentence index name the offending item in :class:`SourceFormatError` (the source is a single
    JSON document, so "line" is the 1-based position of the sentence inside its split list).
    """
    where = f"{split}[{n}]"
    try:
        tt = TokenText(sent["tokens"])
        mentions = []
        for ent in sent["entities"]:
            if ent["type"] not in ent_labels:
                raise SourceFormatError(path, n + 1, f"{where}: unknown entity type {ent['type']!r}")
            mentions.append({"type": ent_labels[ent["type"]], **tt.mention(ent["start"], ent["end"])})
        rels = []
        seen = set()
        for rel in sent["relations"]:
            if rel["type"] not in rel_labels:
                raise SourceFormatError(path, n + 1, f"{where}: unknown relation type {rel['type']!r}")
            head, tail = mentions[rel["head"]], mentions[rel["tail"]]
            key = (rel["type"], tuple(head["span"]), tuple(tail["span"]))
            if key in seen:
                report.drop(split, "duplicate relation", f"{where} {key}")
                continue
            seen.add(key)
            rels.append(
                {
                    "relation": rel_labels[rel["type"]],
                    "head": {"text": head["text"], "span": head["span"]},
                    "tail": {"text": tail["text"], "span": tail["span"]},
                }
            )
    except SourceFormatError:
        raise
    except (KeyError, TypeError, IndexError) as exc:
        raise SourceFormatError(path, n + 1, f"{where}: malformed sentence ({type(exc).__name__}: {exc})") from None
    schema: dict[str, Any] = {}
    ans: dict[str, Any] = {}
    if with_entities:
        schema["ent"] = list(ent_labels.values())
        ans["ent"] = mentions
    schema["rel"] = list(rel_labels.values())
    ans["rel"] = rels
    return {"id": f"{dataset}.{split}.{n}", "instruction": instruction, "schema": schema, "text": tt.text, "bg": "",
            "ans": ans}


def read_spert_json(
    path: Path,
    *,
    dataset: str,
    instruction: str,
    ent_labels: dict[str, str],
    rel_labels: dict[str, str],
    with_entities: bool,
    report: ConversionReport,
    split_keys: dict[str, str] | None = None,
) -> dict[str, Iterator[dict[str, Any]]]:
    """Read a sincere/SpERT ``{split: [sentences]}`` JSON file; ``split_keys`` maps our split name -> JSON key."""
    split_keys = split_keys or {"train": "train", "dev": "dev", "test": "test"}
    data = read_json_file(path, dict, "expected a JSON object {train: [...], dev: [...], test: [...]}")

    def gen(split: str, sents: list[Any]) -> Iterator[dict[str, Any]]:
        for n, sent in enumerate(sents):
            yield spert_record(sent, dataset=dataset, split=split, n=n, instruction=instruction,
                               ent_labels=ent_labels, rel_labels=rel_labels, with_entities=with_entities,
                               path=path, report=report)

    out = {}
    for split, key in split_keys.items():
        if key in data:
            out[split] = gen(split, data[key])
        else:
            report.missing(split, f"{path} (key {key!r})")
    return out


def read_splits(
    src_dir: Path,
    instruction: str = RE_INSTRUCTION,
    report: ConversionReport | None = None,
    with_entities: Any = False,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` from ``src_dir/conll04.json`` (or ``src_dir`` itself if it is that file)."""
    report = report or ConversionReport("conll04")
    src = Path(src_dir)
    path = src if src.is_file() else src / "conll04.json"
    if not path.is_file():
        for split in ("train", "dev", "test"):
            report.missing(split, path)
        return {}
    joint = as_bool(with_entities, "with_entities")
    if joint and instruction == RE_INSTRUCTION:  # the default instruction follows the task
        instruction = JOINT_INSTRUCTION
    return read_spert_json(path, dataset="conll04", instruction=instruction, ent_labels=ENT_LABELS,
                           rel_labels=REL_LABELS, with_entities=joint, report=report)


register(
    Benchmark(
        name="conll04",
        task="re",
        read_splits=read_splits,
        instruction=RE_INSTRUCTION,
        source="CoNLL04 SpERT-style JSON, btaille/sincere @ dd1c3491 data/conll04.json",
        status="real",
        shared_subdir="conll04",
        options={"with_entities": "also emit schema.ent/ans.ent (joint NER+RE); default: relation triplets only"},
    )
)
