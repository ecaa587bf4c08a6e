"""ACE 2004 / ACE 2005 (LDC-licensed, not staged) -> unified NER / RE / EE records. Fixture-tested.

We read the preprocessed formats UIE's ``dataset_processing/README.md`` lists (and Mirror's UIE-derived data
therefore starts from):

* **ace04-ner / ace05-ner** (nested NER): ShannonAI ``mrc-for-flat-nested-ner`` files ``mrc-ner.{train,dev,test}``,
  a JSON list with one item per (sentence, entity type)::

      {"context": "begala dr . palmisano , again , thanks ...", "entity_label": "PER", "qas_id": "4.3",
       "query": "...", "impossible": false, "start_position": [1, 1, 11], "end_position": [2, 4, 12],
       "span_position": ["1;2", "1;4", "11;12"]}

  ``context`` is space-tokenized, positions are word indices with **inclusive** ends, ``qas_id`` =
  ``"<sentence>.<type index>"``: items sharing the sentence number are merged into one record.
* **ace05-rel**: btaille/sincere's ``ace05.json`` (``{"train"|"dev"|"test": [{tokens, entities[start,end),
  relations(head, tail)}]}``), exactly the CoNLL04 layout (``processing.conll04``); RE triplets by default, joint
  NER+RE with ``--with-entities``.
* **ace05-evt** (event extraction): OneIE's ``{train,dev,test}.oneie.json`` (JSON lines)::

      {"sent_id": "...", "tokens": [...], "entity_mentions": [{"id", "start", "end", "entity_type", "text"}],
       "event_mentions": [{"event_type": "Conflict:Attack", "trigger": {"start", "end", "text"},
                           "arguments": [{"entity_id", "role", "text"}]}]}

  token ``end`` exclusive; an argument points at an entity mention by id.

Labels (UIE's ``data_config/relation/ace05-rel.yaml``): ``FAC facility, GPE geographical social political,
LOC location, ORG organization, PER person, VEH vehicle, WEA weapon``; ``ART agent artifact, GEN-AFF general
affiliation, ORG-AFF organization affiliation, PART-WHOLE part whole, PER-SOC personal social, PHYS physical``.
Event types = the subtype, lower-cased, ``-`` -> space (``Personnel:End-Position`` -> ``end position``); roles
lower-cased (``Attacker`` -> ``attacker``). ``schema.event`` maps each event type (sorted) to the roles seen with it
in any split file present (sorted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import EE_INSTRUCTION, JOINT_INSTRUCTION, NER_INSTRUCTION, RE_INSTRUCTION

from .conll04 import read_spert_json
from .convert import ConversionReport, TokenText, as_bool, load_jsonl_objects, read_json_file, read_split_files
from .registry import Benchmark, SourceFormatError, register

ENT_LABELS = {
    "FAC": "facility",
    "GPE": "geographical social political",
    "LOC": "location",
    "ORG": "organization",
    "PER": "person",
    "VEH": "vehicle",
    "WEA": "weapon",
}
REL_LABELS = {
    "ART": "agent artifact",
    "GEN-AFF": "general affiliation",
    "ORG-AFF": "organization affiliation",
    "PART-WHOLE": "part whole",
    "PER-SOC": "personal social",
    "PHYS": "physical",
}


# ---------------------------------------------------------------------------------------------- MRC-NER (NER)


def _read_mrc_ner(path: Path, dataset: str, split: str, instruction: str,
                  report: ConversionReport) -> Iterator[dict[str, Any]]:
    items = read_json_file(path, list, "expected a JSON list of MRC-NER items")
    # group items by sentence, keeping the file order of sentences
    sentences: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(items):
        where = f"item {i}"
        try:
            sent_key = str(item["qas_id"]).split(".")[0]
            context, label = item["context"], item["entity_label"]
            starts, ends = item["start_position"], item["end_position"]
            if len(starts) != len(ends):
                raise ValueError(f"{len(starts)} start positions but {len(ends)} end positions")
        except (KeyError, TypeError, ValueError) as exc:
            # the list index stands in for the line: the file is one JSON document
            raise SourceFormatError(path, i + 1, f"{where}: malformed MRC-NER item ({exc})") from None
        if label not in ENT_LABELS:
            raise SourceFormatError(path, i + 1, f"{where}: unknown entity label {label!r}")
        sent = sentences.setdefault(sent_key, {"context": context, "spans": [], "first": i})
        if sent["context"] != context:
            raise SourceFormatError(path, i + 1, f"{where}: qas_id {item['qas_id']} has a different context")
        sent["spans"] += [(s, e, label, i) for s, e in zip(starts, ends)]
    labels = list(ENT_LABELS.values())
    for n, sent in enumerate(sentences.values()):
        tt = TokenText(sent["context"].split(" "))
        ents, seen = [], set()
        for s, e, label, i in sorted(sent["spans"], key=lambda x: (x[0], x[1], labels.index(ENT_LABELS[x[2]]))):
            try:
                m = tt.mention(int(s), int(e) + 1)
            except (IndexError, ValueError, TypeError):
                raise SourceFormatError(path, i + 1, f"item {i}: span [{s}, {e}] outside the context") from None
            if (s, e, label) in seen:
                report.drop(split, "duplicate entity", f"item {i}: {[s, e, label]}")
                continue
            seen.add((s, e, label))
            ents.append({"type": ENT_LABELS[label], **m})
        yield {"id": f"{dataset}.{split}.{n}", "instruction": instruction, "schema": {"ent": labels},
               "text": tt.text, "bg": "", "ans": {"ent": ents}}


def _mrc_reader(dataset: str):
    def read_splits(
        src_dir: Path, instruction: str = NER_INSTRUCTION, report: ConversionReport | None = None
    ) -> dict[str, Iterator[dict[str, Any]]]:
        """``{split: records}`` for ``src_dir/mrc-ner.{train,dev,test}``."""
        report = report or ConversionReport(dataset)
        files = {split: f"mrc-ner.{split}" for split in ("train", "dev", "test")}
        return read_split_files(
            src_dir, files, lambda path, split: _read_mrc_ner(path, dataset, split, instruction, report), report
        )

    return read_splits


# ---------------------------------------------------------------------------------------------- sincere (RE)


def read_ace05_rel(
    src_dir: Path, instruction: str = RE_INSTRUCTION, report: ConversionReport | None = None,
    with_entities: Any = False,
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` from sincere's ``src_dir/ace05.json`` (same layout as CoNLL04)."""
    report = report or ConversionReport("ace05-rel")
    src = Path(src_dir)
    path = src if src.is_file() else src / "ace05.json"
    if not path.is_file():
        for split in ("train", "dev", "test"):
            report.missing(split, path)
        return {}
    joint = as_bool(with_entities, "with_entities")
    if joint and instruction == RE_INSTRUCTION:
        instruction = JOINT_INSTRUCTION
    return read_spert_json(path, dataset="ace05-rel", instruction=instruction, ent_labels=ENT_LABELS,
                           rel_labels=REL_LABELS, with_entities=joint, report=report)


# ---------------------------------------------------------------------------------------------- OneIE (EE)


def event_label(oneie_type: str) -> str:
    """``Personnel:End-Position`` -> ``end position``."""
    return oneie_type.split(":")[-1].lower().replace("-", " ").replace("_", " ")


def role_label(role: str) -> str:
    """``Attacker`` -> ``attacker``."""
    return role.lower().replace("-", " ").replace("_", " ")


def read_ace05_evt(
    src_dir: Path, instruction: str = EE_INSTRUCTION, report: ConversionReport | None = None
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for OneIE's ``src_dir/{train,dev,test}.oneie.json``."""
    report = report or ConversionReport("ace05-evt")
    files = {split: f"{split}.oneie.json" for split in ("train", "dev", "test")}
    data = read_split_files(
        src_dir, files, lambda path, _: (path, load_jsonl_objects(path, "tokens", "expected an object with 'tokens'")),
        report,
    )
    roles: dict[str, set[str]] = defaultdict(set)
    for path, rows in data.values():
        for lineno, obj in rows:
            try:
                for ev in obj.get("event_mentions") or []:
                    et = event_label(ev["event_type"])
                    roles[et].update(role_label(a["role"]) for a in ev.get("arguments") or [])
            except (KeyError, TypeError, AttributeError) as exc:
                raise SourceFormatError(path, lineno, f"malformed event mention ({exc})") from None
    schema = {"event": {et: sorted(roles[et]) for et in sorted(roles)}}

    def gen(split: str) -> Iterator[dict[str, Any]]:
        path, rows = data[split]
        for n, (lineno, obj) in enumerate(rows):
            tt = TokenText(obj["tokens"])
            try:
                ents = {m["id"]: (int(m["start"]), int(m["end"])) for m in obj.get("entity_mentions") or []}
                events = []
                for ev in obj.get("event_mentions") or []:
                    trig = ev["trigger"]
                    args = []
                    for a in ev.get("arguments") or []:
                        if a["entity_id"] not in ents:
                            report.drop(split, "argument entity not found", f"{path.name}:{lineno} {a['entity_id']}")
                            continue
                        args.append({"role": role_label(a["role"]), **tt.mention(*ents[a["entity_id"]])})
                    events.append({"event_type": event_label(ev["event_type"]),
                                   "trigger": tt.mention(int(trig["start"]), int(trig["end"])), "args": args})
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                raise SourceFormatError(path, lineno, f"malformed sentence ({type(exc).__name__}: {exc})") from None
            yield {"id": f"ace05-evt.{split}.{n}", "instruction": instruction, "schema": schema, "text": tt.text,
                   "bg": "", "ans": {"event": events}}

    return {split: gen(split) for split in data}


# ---------------------------------------------------------------------------------------------- registry

_LDC = "LDC-licensed ({}); preprocess with {} as UIE's dataset_processing/README.md describes, then pass the output folder"
for _name, _ldc in (("ace04-ner", "LDC2005T09"), ("ace05-ner", "LDC2006T06")):
    register(
        Benchmark(
            name=_name,
            task="ner",
            read_splits=_mrc_reader(_name),
            instruction=NER_INSTRUCTION,
            source="ShannonAI/mrc-for-flat-nested-ner MRC-NER JSON (mrc-ner.{train,dev,test})",
            status="fixture",
            how_to_obtain=_LDC.format(_ldc, "ShannonAI/mrc-for-flat-nested-ner"),
        )
    )
register(
    Benchmark(
        name="ace05-rel",
        task="re",
        read_splits=read_ace05_rel,
        instruction=RE_INSTRUCTION,
        source="btaille/sincere ace05.json (SpERT-style, same layout as conll04.json)",
        status="fixture",
        how_to_obtain=_LDC.format("LDC2006T06", "btaille/sincere"),
        options={"with_entities": "also emit schema.ent/ans.ent (joint NER+RE)"},
    )
)
register(
    Benchmark(
        name="ace05-evt",
        task="ee",
        read_splits=read_ace05_evt,
        instruction=EE_INSTRUCTION,
        source="OneIE {train,dev,test}.oneie.json (blender.cs.illinois.edu/software/oneie)",
        status="fixture",
        how_to_obtain=_LDC.format("LDC2006T06", "OneIE's preprocessing (nltk==3.5)"),
    )
)
