"""SciERC (Luan et al. 2018) scientific NER + RE -> sentence-level unified records (``schema.ent`` + ``schema.rel``).

Source format (``shared/data/scierc/SOURCE.md``; JerryHao2001/thesis-tanl @ 79612fe4 ``data/scierc/{train,dev,test}.json``,
a copy of the ``processed_data/json`` release that DyGIE++ / UIE use): JSON lines, one abstract a line::

    {"doc_key": "C04-1096", "sentences": [[tok, ...], ...],
     "ner": [[[start, end, "Type"], ...], ...],                      # per sentence
     "relations": [[[h_start, h_end, t_start, t_end, "LABEL"], ...], ...],
     "clusters": [...]}                                              # coreference, ignored

Token indices are **document-level** and both ends **inclusive**; ``ner[i]`` / ``relations[i]`` belong to sentence i.
This DyGIE++ layout is shared with ACE in DyGIE++ form (``processing.ace``), so :func:`iter_dygiepp_sentences`
also yields the per-sentence ``events`` (``[[trigger_tok, "Type"], [arg_start, arg_end, "Role"], ...]``) when present.

Unified record: one record per sentence, ``text`` = sentence tokens joined by single spaces; labels follow UIE's
``data_config/relation/scierc.yaml``: ``Task -> task, Method -> method, Metric -> metric, Material -> material,
OtherScientificTerm -> other scientific term, Generic -> generic``; ``USED-FOR -> used for, FEATURE-OF -> feature of,
HYPONYM-OF -> hyponym of, PART-OF -> part of, COMPARE -> compare, CONJUNCTION -> conjunction,
EVALUATE-FOR -> evaluate for``. Ids ``scierc.<split>.<n>`` count sentences over the split.
Quirk: the train split repeats 4 relations verbatim; the duplicates are dropped (reason "duplicate relation").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import JOINT_INSTRUCTION

from .convert import ConversionReport, TokenText, iter_json_lines, register_split_files, unified_record
from .registry import SourceFormatError

ENT_LABELS = {
    "Task": "task",
    "Method": "method",
    "Metric": "metric",
    "Material": "material",
    "OtherScientificTerm": "other scientific term",
    "Generic": "generic",
}
REL_LABELS = {
    "USED-FOR": "used for",
    "FEATURE-OF": "feature of",
    "HYPONYM-OF": "hyponym of",
    "PART-OF": "part of",
    "COMPARE": "compare",
    "CONJUNCTION": "conjunction",
    "EVALUATE-FOR": "evaluate for",
}
SPLIT_FILES = {"train": "train.json", "dev": "dev.json", "test": "test.json"}


@dataclass
class DygieSentence:
    """One sentence of a DyGIE++ document; annotation offsets already made sentence-local, end **exclusive**."""

    doc_key: str
    index: int  # sentence index inside the document
    lineno: int  # 1-based line of the document in its file
    tokens: list[str]
    ner: list[tuple[int, int, str]]
    relations: list[tuple[int, int, int, int, str]]
    events: list[list[tuple[int, int, str]]]  # [[(trig_s, trig_e, type), (arg_s, arg_e, role), ...], ...]


def iter_dygiepp_sentences(path: Path, split: str, report: ConversionReport) -> Iterator[DygieSentence]:
    """Split DyGIE++ documents (doc-level inclusive offsets) into sentences with local ``[start, end)`` offsets.

    An annotation reaching outside its sentence is dropped (reason ``"span outside sentence"``); a malformed line
    raises :class:`SourceFormatError` with file and line.
    """
    for lineno, doc in iter_json_lines(path):
        try:
            yield from _doc_sentences(doc, path, lineno, split, report)
        except SourceFormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SourceFormatError(path, lineno, f"malformed document ({type(exc).__name__}: {exc})") from None


def _doc_sentences(doc: dict[str, Any], path: Path, lineno: int, split: str,
                   report: ConversionReport) -> Iterator[DygieSentence]:
    sents = doc["sentences"]
    n = len(sents)
    ner_all = doc.get("ner") or [[] for _ in range(n)]
    rel_all = doc.get("relations") or [[] for _ in range(n)]
    ev_all = doc.get("events") or [[] for _ in range(n)]
    if not (len(ner_all) == len(rel_all) == len(ev_all) == n):
        raise SourceFormatError(path, lineno, f"{n} sentences but {len(ner_all)} ner / {len(rel_all)} relation / "
                                              f"{len(ev_all)} event lists")
    doc_key = str(doc.get("doc_key", f"line{lineno}"))
    offset = 0
    for i, tokens in enumerate(sents):
        end = offset + len(tokens)
        where = f"{doc_key} sentence {i}"

        def local(s: int, e: int, offset: int = offset, end: int = end, where: str = where) -> tuple[int, int] | None:
            if not (isinstance(s, int) and isinstance(e, int)):
                raise SourceFormatError(path, lineno, f"{where}: non-integer offsets {s!r}, {e!r}")
            if offset <= s <= e < end:
                return s - offset, e - offset + 1
            return None

        ner = []
        for s, e, lab in ner_all[i]:
            sp = local(s, e)
            if sp is None:
                report.drop(split, "span outside sentence", f"{where}: entity {[s, e, lab]}")
                continue
            ner.append((*sp, lab))
        rels = []
        for hs, he, ts, te, lab in rel_all[i]:
            h, t = local(hs, he), local(ts, te)
            if h is None or t is None:
                report.drop(split, "span outside sentence", f"{where}: relation {[hs, he, ts, te, lab]}")
                continue
            rels.append((*h, *t, lab))
        events = []
        for ev in ev_all[i]:
            (trig, etype), args = ev[0], ev[1:]
            tr = local(trig, trig)
            if tr is None:
                report.drop(split, "span outside sentence", f"{where}: trigger {[trig, etype]}")
                continue
            parts = [(*tr, etype)]
            for a_s, a_e, role in args:
                sp = local(a_s, a_e)
                if sp is None:
                    report.drop(split, "span outside sentence", f"{where}: argument {[a_s, a_e, role]}")
                    continue
                parts.append((*sp, role))
            events.append(parts)
        yield DygieSentence(doc_key, i, lineno, list(tokens), ner, rels, events)
        offset = end


def _read_split(path: Path, split: str, instruction: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
    for n, sent in enumerate(iter_dygiepp_sentences(path, split, report)):
        tt = TokenText(sent.tokens)
        ents = []
        for s, e, lab in sent.ner:
            if lab not in ENT_LABELS:
                raise SourceFormatError(path, sent.lineno, f"{sent.doc_key}: unknown entity type {lab!r}")
            ents.append({"type": ENT_LABELS[lab], **tt.mention(s, e)})
        rels, seen = [], set()
        for hs, he, ts, te, lab in sent.relations:
            if lab not in REL_LABELS:
                raise SourceFormatError(path, sent.lineno, f"{sent.doc_key}: unknown relation type {lab!r}")
            if (hs, he, ts, te, lab) in seen:
                report.drop(split, "duplicate relation", f"{sent.doc_key} sentence {sent.index}: {[hs, he, ts, te, lab]}")
                continue
            seen.add((hs, he, ts, te, lab))
            rels.append({"relation": REL_LABELS[lab], "head": tt.mention(hs, he), "tail": tt.mention(ts, te)})
        yield unified_record(
            f"scierc.{split}.{n}", instruction, {"ent": list(ENT_LABELS.values()), "rel": list(REL_LABELS.values())},
            tt.text, {"ent": ents, "rel": rels}
        )


read_splits = register_split_files(
    "scierc", "re", SPLIT_FILES, _read_split, JOINT_INSTRUCTION,
    "SciERC processed_data/json (DyGIE++ jsonl, doc-level inclusive offsets), JerryHao2001/thesis-tanl @ 79612fe4 "
    "data/scierc",
    shared_subdir="scierc",
).read_splits
