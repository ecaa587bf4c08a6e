"""Pile-NER-type, SLIMER subset (384 open entity types, GPT-3.5 silver labels, with type definitions) -> unified NER.

Source format (``shared/data/pilener_slimer/SOURCE.md``; andrewzamai/SLIMER @ cd212dc4):

* ``validation.jsonl`` (``data/pileNER/5pos_5neg_perNE_top391NEs_FalseDef/``): one JSON object a line, **one
  (passage, type) question per row**: ``{"doc_question_pairID": "<passage id>:<question index>", "tagName",
  "input": passage, "instruction", "output": a JSON *string* holding the list of mention strings}``. Every type was
  sampled with 5 positive and 5 negative passages, so an empty ``output`` is real "none of this type" supervision.
* ``top391NEs_definitions.json``: ``{type: {"gpt_answer": JSON string {"Definition", "Guidelines"}, ...}}``;
  :func:`load_definitions` returns ``{type: Definition}``.

Only SLIMER's validation file is staged (train/test are over the snapshot limit); it is registered as split
**``train``**, for the pre-training mix.

Unified record: rows are grouped by passage id (first-appearance order; id ``pilener.train.<n>``), ``text`` = the
passage unchanged (all rows of a passage must carry the same text), ``schema.ent`` = every type asked for that
passage in question-index order, **negatives included** (1 to 7 types). With ``descriptions=True`` (CLI
``--descriptions``) the schema takes GLiNER2's described form ``{"ent": {type: definition}}``; a type without a
definition (``instrument``) is a bare label (``None``, ``modeling_ldnet.schema``'s convention) and is noted.

Locating mention strings (silver data, no offsets; policy):

1. **every** exact occurrence of the string is tagged when it lies on word boundaries: an edge character that is a
   letter, digit or ``_`` must not touch another one outside the match (``Sharp`` is not found inside
   ``Sharpe``; ``$180.00`` needs no boundary before ``$``). A string occurring several times is noted
   ``"ambiguous mention (every occurrence tagged)"`` (nothing lost);
2. an occurrence lying inside an occurrence of a longer mention string **of the same type** (``York`` inside ``New
   York``, both listed as ``city``) is skipped (noted); nested mentions of different types are kept;
3. a string with no occurrence on word boundaries is dropped (``"mention not found in passage"``, counted); a string
   repeated in one ``output`` list is used once (noted ``"duplicate mention string"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION

from .convert import ConversionReport, as_bool, iter_json_lines, read_json_file, source_folder, unified_record
from .registry import Benchmark, SourceFormatError, register

ROWS = "validation.jsonl"
DEFINITIONS = "top391NEs_definitions.json"
SPLIT = "train"  # SLIMER's validation file, used as training data for the mix

AMBIGUOUS = "ambiguous mention (every occurrence tagged)"
INSIDE = "occurrence inside a longer mention of the same type skipped"
NOT_FOUND = "mention not found in passage"
DUPLICATE = "duplicate mention string"
NO_DEFINITION = "type without definition (bare label)"


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def word_occurrences(text: str, mention: str) -> list[int]:
    """Start offsets of ``mention`` in ``text`` on word boundaries (module docstring, rule 1)."""
    hits: list[int] = []
    if not mention:
        return hits
    i = text.find(mention)
    while i >= 0:
        j = i + len(mention)
        left = i == 0 or not (_word(mention[0]) and _word(text[i - 1]))
        right = j == len(text) or not (_word(mention[-1]) and _word(text[j]))
        if left and right:
            hits.append(i)
        i = text.find(mention, i + 1)
    return hits


def load_definitions(src_dir: str | Path) -> dict[str, str]:
    """``{type: definition}`` from ``src_dir/top391NEs_definitions.json`` (``src_dir`` may be its parent folder).

    Raises :class:`SourceFormatError` (file, line 1, the type) for an entry whose ``gpt_answer`` is not a JSON
    object with a string ``Definition``.
    """
    path = source_folder(src_dir, "pilener_slimer") / DEFINITIONS
    data = read_json_file(path, dict, "expected a JSON object {type: {gpt_answer, ...}}")
    out: dict[str, str] = {}
    for typ, entry in data.items():
        try:
            answer = json.loads(entry["gpt_answer"])
            definition = answer["Definition"]
        except (TypeError, KeyError, json.JSONDecodeError) as exc:
            raise SourceFormatError(path, 1, f"type {typ!r}: gpt_answer without a Definition ({exc})") from None
        if not isinstance(definition, str):
            raise SourceFormatError(path, 1, f"type {typ!r}: Definition is not a string")
        out[typ] = definition.strip()
    return out


def _passages(path: Path) -> list[tuple[int, str, str, list[tuple[int, str, list[str]]]]]:
    """``[(first line, passage id, text, [(question index, type, mention strings)])]`` in first-appearance order."""
    docs: dict[str, tuple[int, str, list[tuple[int, str, list[str]]]]] = {}
    for lineno, row in iter_json_lines(path):
        try:
            pid, sep, q = row["doc_question_pairID"].rpartition(":")
            typ, text = row["tagName"], row["input"]
            mentions = json.loads(row["output"])
            if not sep or not q.isdigit():
                raise ValueError(f"doc_question_pairID {row['doc_question_pairID']!r} is not '<passage>:<n>'")
            if not isinstance(typ, str) or not typ.strip() or not isinstance(text, str):
                raise TypeError("tagName must be a non-empty string and input a string")
            if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
                raise TypeError("output must be a JSON string holding a list of strings")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SourceFormatError(path, lineno, f"malformed row ({type(exc).__name__}: {exc})") from None
        first, doc_text, questions = docs.setdefault(pid, (lineno, text, []))
        if text != doc_text:
            raise SourceFormatError(path, lineno, f"passage {pid!r}: text differs from its row on line {first}")
        if any(t == typ for _, t, _ in questions):
            raise SourceFormatError(path, lineno, f"passage {pid!r}: type {typ!r} asked twice")
        questions.append((int(q), typ, mentions))
    return [(first, pid, text, sorted(qs)) for pid, (first, text, qs) in docs.items()]


def passage_entities(text: str, typ: str, mentions: list[str], where: str, split: str,
                     report: ConversionReport) -> list[dict[str, Any]]:
    """Every occurrence of ``mentions`` (one type) following the module policy, sorted by span."""
    unique = list(dict.fromkeys(mentions))
    for _ in range(len(mentions) - len(unique)):
        report.note(split, DUPLICATE, f"{where} {typ!r}")
    found = {m: word_occurrences(text, m) for m in unique}
    ents: dict[tuple[int, int], dict[str, Any]] = {}
    for m, hits in found.items():
        if not hits:
            report.drop(split, NOT_FOUND, f"{where} {typ!r}: {m!r}")
            continue
        longer = [(s, s + len(o)) for o, oh in found.items() if len(o) > len(m) and m in o for s in oh]
        kept = [h for h in hits if not any(s <= h and h + len(m) <= e for s, e in longer)]
        for _ in range(len(hits) - len(kept)):
            report.note(split, INSIDE, f"{where} {typ!r}: {m!r}")
        if len(kept) > 1:
            report.note(split, AMBIGUOUS, f"{where} {typ!r}: {m!r} x{len(kept)}")
        for h in kept:
            ents[(h, h + len(m))] = {"type": typ, "text": m, "span": [h, h + len(m)]}
    return [ents[k] for k in sorted(ents)]


def _records(path: Path, instruction: str, definitions: dict[str, str] | None,
             report: ConversionReport) -> Iterator[dict[str, Any]]:
    for n, (lineno, pid, text, questions) in enumerate(_passages(path)):
        where = f"{path.name}:{lineno} passage {pid}"
        types = [typ for _, typ, _ in questions]
        ents = [e for _, typ, ms in questions for e in passage_entities(text, typ, ms, where, SPLIT, report)]
        ents.sort(key=lambda e: (e["span"], types.index(e["type"])))
        schema: dict[str, Any]
        if definitions is None:
            schema = {"ent": types}
        else:
            for typ in types:
                if typ not in definitions:
                    report.note(SPLIT, NO_DEFINITION, f"{where} {typ!r}")
            schema = {"ent": {typ: definitions.get(typ) for typ in types}}
        yield unified_record(f"pilener.{SPLIT}.{n}", instruction, schema, text, {"ent": ents})


def read_splits(src_dir: Path, instruction: str = NER_INSTRUCTION, report: ConversionReport | None = None,
                descriptions: Any = False) -> dict[str, Iterator[dict[str, Any]]]:
    """``{"train": records}`` from ``src_dir/validation.jsonl`` (``src_dir`` = the folder or its parent)."""
    report = report or ConversionReport("pilener")
    src = source_folder(src_dir, "pilener_slimer")
    path = src / ROWS
    if not path.is_file():
        report.missing(SPLIT, path)
        return {}
    definitions = load_definitions(src) if as_bool(descriptions, "descriptions") else None
    return {SPLIT: _records(path, instruction, definitions, report)}


register(
    Benchmark(
        name="pilener",
        task="ner",
        read_splits=read_splits,
        instruction=NER_INSTRUCTION,
        source="Pile-NER-type SLIMER subset (validation.jsonl, 5 pos / 5 neg passages per type, registered as train; "
               "top391NEs_definitions.json), andrewzamai/SLIMER @ cd212dc4",
        status="real",
        shared_subdir="pilener_slimer",
        options={"descriptions": "schema in the described form {'ent': {type: definition}} (GLiNER2 style); "
                                 "default: a plain list of types"},
    )
)
