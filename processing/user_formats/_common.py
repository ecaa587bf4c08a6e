"""Helpers shared by the user-format converters: split discovery, label maps, schema / instruction assembly.

Every user-format reader gathers the labels of *all* its split files before yielding the first record, so that one
schema (the sorted union of the labels of every split) is shared by train / dev / test: the BIO reader in a
streaming first pass, the JSON / DocBin / brat readers by parsing everything (annotation exports fit in memory).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import (
    CLS_INSTRUCTION,
    EE_INSTRUCTION,
    JOINT_INSTRUCTION,
    NER_INSTRUCTION,
    RE_INSTRUCTION,
)

from ..convert import ConversionReport
from ..registry import SourceFormatError

#: the registry's default instruction for every user format: a marker replaced by the one matching the content
AUTO_INSTRUCTION = NER_INSTRUCTION

Record = dict[str, Any]

# split names recognised in file / folder names (``en_train.conll``, ``dev.spacy``, ``valid/`` ...)
_SPLIT_WORDS = {"train": "train", "training": "train", "dev": "dev", "valid": "dev", "validation": "dev",
                "val": "dev", "test": "test", "testing": "test"}


def split_of(name: str) -> str | None:
    """``"en_train.conll"`` -> ``"train"``; ``"valid"`` -> ``"dev"``; ``None`` when no split word is in ``name``."""
    for word in re.split(r"[^a-z]+", name.lower()):
        if word in _SPLIT_WORDS:
            return _SPLIT_WORDS[word]
    return None


def discover_files(src: Path, suffixes: tuple[str, ...], report: ConversionReport) -> dict[str, list[Path]]:
    """``{split: [files]}`` for a source that is one file or a folder of files ending in ``suffixes``.

    A single file is one split named after its file name (``dev.conll`` -> dev) or ``train``. In a folder every file
    whose name holds a split word goes to that split; a file without one goes to ``train`` (noted in the report).
    """
    if src.is_file():
        return {split_of(src.name) or "train": [src]}
    files = sorted(p for p in src.iterdir() if p.is_file() and p.name.lower().endswith(suffixes))
    if not files:
        raise FileNotFoundError(f"{src}: no file ending in {', '.join(suffixes)}")
    out: dict[str, list[Path]] = {}
    for f in files:
        split = split_of(f.name)
        if split is None:
            report.note("train", "file name without a split word (read as train)", f.name)
            split = "train"
        out.setdefault(split, []).append(f)
    return out


def parse_label_map(value: Any) -> dict[str, str]:
    """``label_map`` option: a dict, ``"PER=person,LOC=location"`` or the path of a JSON object file."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value)
    if Path(text).is_file():
        data = json.loads(Path(text).read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"label_map file {text}: expected a JSON object {{source label: new label}}")
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for part in text.split(","):
        if not part.strip():
            continue
        src, eq, dst = part.partition("=")
        if not eq or not src.strip() or not dst.strip():
            raise ValueError(f"label_map: expected 'SOURCE=TARGET,...', got {part!r}")
        out[src.strip()] = dst.strip()
    return out


class Labels:
    """Maps source labels through ``label_map`` and collects the label inventory of every answer field."""

    def __init__(self, label_map: Any = None) -> None:
        self.map = parse_label_map(label_map)
        self.seen: dict[str, set[str]] = {}
        self.roles: dict[str, set[str]] = {}

    def __call__(self, field: str, label: str) -> str:
        out = self.map.get(label, label)
        self.seen.setdefault(field, set()).add(out)
        return out

    def role(self, event_type: str, role: str) -> str:
        out = self.map.get(role, role)
        self.roles.setdefault(event_type, set()).add(out)
        return out

    def schema(self) -> dict[str, Any]:
        """The shared schema: each field's labels sorted; ``event`` = ``{type: sorted roles}``."""
        out: dict[str, Any] = {}
        for f in ("cls", "ent", "discontinuous_ent", "rel"):
            if self.seen.get(f):
                out[f] = sorted(self.seen[f])
        if self.seen.get("event"):
            out["event"] = {t: sorted(self.roles.get(t, ())) for t in sorted(self.seen["event"])}
        return out


def pick_instruction(instruction: str | None, schema: dict[str, Any]) -> str:
    """The registry passes its default (:data:`AUTO_INSTRUCTION`) unless the user gave one: replace the default with
    the paper-style instruction of the task the data holds (events > relations > classes > entities)."""
    if instruction is not None and instruction != AUTO_INSTRUCTION:
        return instruction
    if "event" in schema:
        return EE_INSTRUCTION
    if "rel" in schema:
        return JOINT_INSTRUCTION if ("ent" in schema or "discontinuous_ent" in schema) else RE_INSTRUCTION
    if "cls" in schema and not ("ent" in schema or "discontinuous_ent" in schema):
        return CLS_INSTRUCTION
    return NER_INSTRUCTION


def finish(parsed: dict[str, list[tuple[str, str, dict[str, Any]]]], labels: Labels, instruction: str | None
           ) -> dict[str, Iterator[Record]]:
    """``{split: [(id, text, ans)]}`` -> ``{split: records}`` with the shared schema and instruction."""
    schema = labels.schema()
    inst = pick_instruction(instruction, schema)

    def gen(items: list[tuple[str, str, dict[str, Any]]]) -> Iterator[Record]:
        for rid, text, ans in items:
            yield {"id": rid, "instruction": inst, "schema": schema, "text": text, "bg": "",
                   "ans": {k: v for k, v in ans.items() if k in schema}}

    return {split: gen(items) for split, items in parsed.items()}


class Dedup:
    """Drops verbatim duplicate answer items of one record (reported, never silent)."""

    def __init__(self, report: ConversionReport, split: str, where: str) -> None:
        self.report, self.split, self.where = report, split, where
        self.seen: set[Any] = set()

    def fresh(self, kind: str, key: Any) -> bool:
        if (kind, key) in self.seen:
            self.report.drop(self.split, f"duplicate {kind}", f"{self.where} {key}")
            return False
        self.seen.add((kind, key))
        return True


def mention(text: str, s: int, e: int) -> dict[str, Any]:
    return {"text": text[s:e], "span": [s, e]}


def load_json_items(path: Path, required: Iterable[str], what: str) -> list[tuple[int, Any]]:
    """``(line or list position, item)`` for a JSON list file or a JSON-lines file of objects.

    A ``.json`` file holding one list is read as a list (position = 1-based index); otherwise one object a line
    (position = line number). An item without every ``required`` key raises :class:`SourceFormatError`.
    """
    raw = path.read_text(encoding="utf-8")
    stripped = raw.lstrip()
    items: list[tuple[int, Any]] = []
    if stripped.startswith("["):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SourceFormatError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
        items = [(i + 1, x) for i, x in enumerate(data)]
    else:
        for lineno, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise SourceFormatError(path, lineno, f"invalid JSON: {exc.msg}") from None
    req = tuple(required)
    for pos, item in items:
        if not isinstance(item, dict) or any(k not in item for k in req):
            raise SourceFormatError(path, pos, f"expected {what} (an object with {', '.join(map(repr, req))})")
    return items
