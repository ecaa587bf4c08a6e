"""CoNLL-2003 English NER (flat; PER/LOC/ORG/MISC) -> unified NER records.

Source format (``shared/data/conll03/SOURCE.md``; synalp/NER @ c0ea07c8 ``corpus/CoNLL-2003/eng.{train,testa,testb}``,
the files UIE's ``dataset_processing`` downloads): one token a line, four space-separated columns
``token POS chunk NER``; a blank line ends a sentence; ``-DOCSTART- -X- O O`` blocks separate documents (skipped).
Tags are **IOB1**: an entity starts with ``I-X`` unless it directly follows another ``X`` entity, in which case
``B-X`` opens it. Splits: train = ``eng.train``, dev = ``eng.testa``, test = ``eng.testb``.

Unified record: ``text`` = tokens joined by single spaces (char offsets exact), ``schema.ent`` =
``["person", "location", "organization", "miscellaneous"]`` (UIE's ``data_config/entity/conll03.yaml`` label names),
id ``conll03.<split>.<n>`` (n counts sentences from 0, ``-DOCSTART-`` blocks not counted).

Shared with other CoNLL-style converters (``processing.crossner``): :func:`iter_blocks`, :func:`decode_tags`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION

from .convert import ConversionReport, TokenText, register_split_files, unified_record
from .registry import SourceFormatError

LABELS = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous"}
SPLIT_FILES = {"train": "eng.train", "dev": "eng.testa", "test": "eng.testb"}

Block = list[tuple[int, list[str]]]  # [(1-based line number, columns)]


def iter_blocks(path: Path, sep: str | None = None, ncols: int | None = None) -> Iterator[Block]:
    """Blank-line separated blocks of a CoNLL-style file, ``-DOCSTART-`` blocks skipped.

    Args:
        sep: column separator (``None`` = any whitespace, ``"\\t"`` = tab only).
        ncols: if set, every line must have exactly this many columns (else :class:`SourceFormatError`).
    """
    block: Block = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if block:
                    yield block
                block = []
                continue
            cols = line.split(sep) if sep is not None else line.split()
            if ncols is not None and len(cols) != ncols:
                raise SourceFormatError(path, lineno, f"expected {ncols} columns, got {len(cols)}: {line!r}")
            if cols[0] == "-DOCSTART-":
                continue  # document separator: its (otherwise empty) block is dropped
            block.append((lineno, cols))
    if block:
        yield block


def decode_tags(
    tags: list[str], scheme: str, path: Path, lines: list[int], report: ConversionReport | None = None,
    split: str = "",
) -> list[tuple[int, int, str]]:
    """BIO tags -> ``[(start, end_exclusive, type)]`` in token order.

    ``scheme="iob1"`` (CoNLL-2003): ``I-X`` after ``O`` / another type starts an entity; ``B-X`` starts a new
    entity right after an ``X`` entity. ``scheme="iob2"`` (BIO): every entity starts with ``B-X``; an ``I-X``
    that does not continue an ``X`` entity is treated as a start (conlleval's behaviour) and noted in the report.
    A tag that is not ``O`` / ``B-*`` / ``I-*`` raises :class:`SourceFormatError` naming file and line.
    """
    if scheme not in ("iob1", "iob2"):
        raise ValueError(f"unknown tagging scheme {scheme!r}")
    spans: list[tuple[int, int, str]] = []
    cur_start, cur_type = -1, ""
    for i, tag in enumerate(tags):
        if tag == "O":
            prefix, typ = "O", ""
        elif len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
            prefix, typ = tag[0], tag[2:]
        else:
            raise SourceFormatError(path, lines[i], f"invalid tag {tag!r} (expected O, B-TYPE or I-TYPE)")
        continues = prefix == "I" and cur_type == typ
        if not continues and cur_type:
            spans.append((cur_start, i, cur_type))
            cur_type = ""
        if prefix == "O":
            continue
        if not continues:
            if prefix == "I" and scheme == "iob2" and report is not None:
                report.note(split, "I- tag without B- (treated as entity start)", f"{path.name}:{lines[i]} {tag}")
            cur_start, cur_type = i, typ
    if cur_type:
        spans.append((cur_start, len(tags), cur_type))
    return spans


def block_entities(block: list, tag_column: int, scheme: str, path: Path, split: str, report: ConversionReport
                   ) -> tuple[TokenText, list[dict[str, Any]]]:
    """The text and the typed entities (:data:`LABELS`) of one CoNLL sentence block ``[(line, columns)]`` whose tags
    (``scheme``) are in ``tag_column``; an unknown type raises :class:`SourceFormatError` naming its line."""
    tt = TokenText([cols[0] for _, cols in block])
    lines = [ln for ln, _ in block]
    ents = []
    for s, e, typ in decode_tags([cols[tag_column] for _, cols in block], scheme, path, lines, report, split):
        if typ not in LABELS:
            raise SourceFormatError(path, lines[s], f"unknown entity type {typ!r}; expected {sorted(LABELS)}")
        ents.append({"type": LABELS[typ], **tt.mention(s, e)})
    return tt, ents


def _read_split(path: Path, split: str, instruction: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
    labels = list(LABELS.values())
    for n, block in enumerate(iter_blocks(path, sep=" ", ncols=4)):
        tt, ents = block_entities(block, 3, "iob1", path, split, report)
        yield unified_record(f"conll03.{split}.{n}", instruction, {"ent": labels}, tt.text, {"ent": ents})


read_splits = register_split_files(
    "conll03", "ner", SPLIT_FILES, _read_split, NER_INSTRUCTION,
    "CoNLL-2003 eng.{train,testa,testb} (IOB1, 4 columns), synalp/NER @ c0ea07c8",
    shared_subdir="conll03",
).read_splits
