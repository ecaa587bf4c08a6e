"""HyperRED (Chia et al., EMNLP 2022) hyper-relational extraction -> unified ``hyper_rel`` records. Fixture-tested.

Source format: declare-lab/HyperRED's data files (published on the Hugging Face Hub as ``declare-lab/HyperRED``;
``{train,dev,test}.json`` are JSON lines, the raw files Mirror's ``convert_hyperred`` reads), one sentence a line::

    {"tokens": ["Leonard", "Parker", "received", "his", "PhD", "from", "Harvard", "University", "in", "1967", "."],
     "entities": [{"span": [0, 2], "label": "Entity"}, ...],
     "relations": [{"head": [0, 2], "tail": [6, 8], "label": "educated at",
                    "qualifiers": [{"span": [9, 10], "label": "end time"}]}]}

Token spans are ``[start, end)`` (end exclusive); labels are already human-readable Wikidata property names.
Unified record: ``text`` = tokens joined by single spaces; ``ans.hyper_rel`` = ``{relation, head, tail,
qualifiers: [{label, text, span}]}``. HyperRED does not tie qualifier types to relation types, so
``schema.hyper_rel`` maps **every** relation label (sorted) to the full qualifier label list (sorted), both collected
over all split files present (62 relations / 44 qualifiers in the release). Because the processor emits one
``[LR]`` tag per distinct label, this is the same input sequence as listing each qualifier once. A fact repeated
verbatim in a sentence is dropped (reason ``"duplicate fact"``). Ids ``hyperred.<split>.<n>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .convert import ConversionReport, TokenText, load_jsonl_objects, unified_record
from .registry import Benchmark, SourceFormatError, register

INSTRUCTION = "Please extract hyper relations from the text with the given schema."
SPLIT_FILES = {"train": ("train.json", "train.jsonl"), "dev": ("dev.json", "dev.jsonl"), "test": ("test.json", "test.jsonl")}


def _span(tt: TokenText, span: Any, path: Path, lineno: int) -> dict[str, Any]:
    try:
        s, e = span
        return tt.mention(int(s), int(e))
    except (TypeError, ValueError, IndexError) as exc:
        raise SourceFormatError(path, lineno, f"bad token span {span!r} ({exc})") from None


def read_splits(
    src_dir: Path, instruction: str = INSTRUCTION, report: ConversionReport | None = None
) -> dict[str, Iterator[dict[str, Any]]]:
    """``{split: records}`` for ``src_dir/{train,dev,test}.json`` (missing files reported, not fatal)."""
    report = report or ConversionReport("hyperred")
    data: dict[str, tuple[Path, list[tuple[int, dict[str, Any]]]]] = {}
    for split, names in SPLIT_FILES.items():
        path = next((Path(src_dir) / f for f in names if (Path(src_dir) / f).is_file()), None)
        if path is None:
            report.missing(split, Path(src_dir) / names[0])
        else:
            data[split] = (path, load_jsonl_objects(path, "tokens", "expected an object with 'tokens', 'entities', 'relations'"))
    relations, qualifiers = set(), set()
    for path, rows in data.values():
        for lineno, obj in rows:
            for rel in obj.get("relations") or []:
                if not isinstance(rel, dict) or not isinstance(rel.get("label"), str):
                    raise SourceFormatError(path, lineno, f"relation without a label: {rel!r}")
                relations.add(rel["label"])
                for q in rel.get("qualifiers") or []:
                    if not isinstance(q, dict) or not isinstance(q.get("label"), str):
                        raise SourceFormatError(path, lineno, f"qualifier without a label: {q!r}")
                    qualifiers.add(q["label"])
    quals = sorted(qualifiers)
    schema = {"hyper_rel": {r: list(quals) for r in sorted(relations)}}

    def gen(split: str) -> Iterator[dict[str, Any]]:
        path, rows = data[split]
        for n, (lineno, obj) in enumerate(rows):
            tt = TokenText(obj["tokens"])
            facts, seen = [], set()
            for rel in obj.get("relations") or []:
                head = _span(tt, rel.get("head"), path, lineno)
                tail = _span(tt, rel.get("tail"), path, lineno)
                qs = [{"label": q["label"], **_span(tt, q.get("span"), path, lineno)} for q in rel.get("qualifiers") or []]
                key = json.dumps([rel["label"], head["span"], tail["span"], [[q["label"], q["span"]] for q in qs]])
                if key in seen:
                    report.drop(split, "duplicate fact", f"{path.name}:{lineno} {rel['label']}")
                    continue
                seen.add(key)
                facts.append({"relation": rel["label"], "head": head, "tail": tail, "qualifiers": qs})
            yield unified_record(f"hyperred.{split}.{n}", instruction, schema, tt.text, {"hyper_rel": facts})

    return {split: gen(split) for split in data}


register(
    Benchmark(
        name="hyperred",
        task="hyper_re",
        read_splits=read_splits,
        instruction=INSTRUCTION,
        source="HyperRED jsonl {tokens, entities, relations[head, tail, label, qualifiers]} (declare-lab/HyperRED)",
        status="fixture",
        how_to_obtain=(
            "not staged (the data lives only on the Hugging Face Hub): download the dataset declare-lab/HyperRED "
            "(train/dev/test JSON lines, see github.com/declare-lab/HyperRED) into one folder"
        ),
    )
)
