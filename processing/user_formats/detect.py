"""Which format a user's file or folder is in, and loading it as unified records (``ldnet-train --train_file``).

:func:`detect_format` decides by extension, then by content:

===================================  ==============================================================================
``FORMAT:path`` prefix               that format (``bio``/``conll``, ``spacy``, ``labelstudio``, ``gliner``,
                                     ``gliner2``, ``brat``), e.g. ``--train_file gliner2:data.jsonl``
``*.spacy``                          spaCy DocBin
``*.ann``, or ``*.txt`` next to one  brat standoff
``*.json`` / ``*.jsonl``             first item has ``tokenized_text`` -> GLiNER; ``input`` + ``output`` (or
                                     ``text`` + a GLiNER2 ``schema``) -> GLiNER2; ``data`` + ``annotations`` ->
                                     Label Studio; otherwise the unified format
``*.conll *.bio *.iob* *.bioes``     CoNLL / BIO columns (``*.tsv`` / ``*.txt`` too when the first line has at
                                     least two columns)
a folder                             the format of its files (``*.ann`` anywhere -> brat)
anything else                        the unified format (``processing.load_unified``)
===================================  ==============================================================================
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..convert import ConversionReport, convert_benchmark
from . import bio

logger = logging.getLogger(__name__)

#: user formats -> registry name (``processing.BENCHMARKS``); ``unified`` = already converted
FORMATS = ("unified", "bio", "spacy", "labelstudio", "gliner", "gliner2", "brat")
ALIASES = {
    "conll": "bio", "iob": "bio", "iob1": "bio", "iob2": "bio", "bioes": "bio", "bilou": "bio",
    "docbin": "spacy", "label-studio": "labelstudio", "label_studio": "labelstudio", "ls": "labelstudio",
    "standoff": "brat",
}
_SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev"}


def canonical_format(name: str) -> str:
    """``"conll"`` -> ``"bio"``; an unknown name raises ``ValueError`` listing the known ones."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise ValueError(f"unknown data format {name!r}; known: {', '.join(FORMATS)} (aliases: {', '.join(ALIASES)})")
    return key


def split_prefix(path: str | Path) -> tuple[str | None, Path]:
    """``"conll:data/train.tsv"`` -> ``("bio", Path("data/train.tsv"))``; no known prefix -> ``(None, path)``."""
    text = str(path)
    head, sep, rest = text.partition(":")
    if sep and len(head) > 1 and head.strip().lower() in (set(FORMATS) - {"unified"}) | set(ALIASES):
        return canonical_format(head), Path(rest)
    return None, Path(text)


def _first_json_item(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        head = fh.read(1 << 16)
    stripped = head.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        return data[0] if isinstance(data, list) and data else None
    line = next((ln for ln in head.splitlines() if ln.strip()), "")
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _json_kind(path: Path) -> str:
    item = _first_json_item(path)
    if isinstance(item, dict):
        if "tokenized_text" in item and "ner" in item:
            return "gliner"
        if ("input" in item and isinstance(item.get("output"), dict)) or (
                "text" in item and isinstance(item.get("schema"), dict)
                and set(item["schema"]) & {"entities", "classifications", "json_structures"}):
            return "gliner2"
        if isinstance(item.get("data"), dict) and any(k in item for k in ("annotations", "completions")):
            return "labelstudio"
    return "unified"


def _looks_like_columns(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip() and not line.startswith("-DOCSTART-"):
                cols = line.split()
                if len(cols) < 2:
                    return False
                tag = cols[-1]
                return tag == "O" or (len(tag) > 2 and tag[1] == "-" and tag[0] in "BIESLU")
    return False


def _file_format(p: Path) -> str:
    name = p.name.lower()
    if name.endswith(".spacy"):
        return "spacy"
    if name.endswith(".ann") or (name.endswith(".txt") and p.with_suffix(".ann").is_file()):
        return "brat"
    if name.endswith((".json", ".jsonl")):
        return _json_kind(p)
    if name.endswith(tuple(s for s in bio.SUFFIXES if s not in (".tsv", ".txt"))):
        return "bio"
    if name.endswith((".tsv", ".txt")) and _looks_like_columns(p):
        return "bio"
    return "unified"


def detect_format(path: str | Path) -> str:
    """One of :data:`FORMATS` for a file or folder (a ``FORMAT:`` prefix wins; see the module doc)."""
    fmt, p = split_prefix(path)
    if fmt is not None:
        return fmt
    if p.is_file():
        return _file_format(p)
    if not p.is_dir():
        raise FileNotFoundError(f"{p} does not exist")
    if next(p.rglob("*.ann"), None) is not None:
        return "brat"
    files = sorted(f for f in p.iterdir() if f.is_file())
    kinds = {_file_format(f) for f in files if not f.name.startswith(".")}
    for kind in ("spacy", "labelstudio", "gliner", "gliner2", "bio"):
        if kind in kinds:
            return kind
    return "unified"


def read_user_data(path: str | Path, **options: Any) -> tuple[str, Path, Any, ConversionReport] | None:
    """``(format, path, DatasetDict, report)`` for a user-format file/folder (every split it holds), or ``None`` when
    ``path`` is in the unified format. ``FORMAT:`` prefixes are honoured; the report is returned, not logged."""
    fmt = detect_format(path)
    if fmt == "unified":
        return None
    _, p = split_prefix(path)
    dd, report = convert_benchmark(fmt, p, progress=False, **options)
    return fmt, p, dd, report


def load_user_data(path: str | Path, split: str | None = None, flag: str | None = None, **options: Any):
    """A user-format file/folder as one split ``Dataset`` of validated unified records, or ``None`` when ``path`` is
    in the unified format (the caller reads it with ``processing.load_unified``).

    A file gives its only split. A folder gives ``split`` (``validation`` = ``dev``), or with ``split=None`` its
    only split. ``flag`` (e.g. ``"--train_file"``) names the argument in errors. The conversion report is logged
    (a warning when items were dropped).
    """
    got = read_user_data(path, **options)
    if got is None:
        return None
    fmt, p, dd, report = got
    (logger.warning if report.dropped() else logger.info)("%s read as %s:\n%s", p, fmt, report.summary())
    return pick_user_split(dd, p, split, flag)


def pick_user_split(dd: Any, path: str | Path, split: str | None, flag: str | None = None) -> Any:
    """``dd[split]`` (``validation`` = ``dev``), or ``dd``'s only split; an error names ``flag`` and ``path``."""
    where = f"{flag} {path}" if flag else str(path)
    if len(dd) == 1 and (split is None or Path(path).is_file()):
        return next(iter(dd.values()))
    if split is None:
        raise ValueError(f"{where} holds the splits {list(dd)}: name one (argument split=)")
    name = _SPLIT_ALIASES.get(split, split)
    if name not in dd:
        raise KeyError(f"{where}: no split {split!r} (have {list(dd)})")
    return dd[name]
