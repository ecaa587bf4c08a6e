"""WNUT-17 Emerging and Rare Entities (flat NER, noisy user text) -> unified NER records. HELD-OUT zero-shot target.

Source format (``shared/data/wnut17/SOURCE.md``; leondz/emerging_entities_17 @ e52a2d2a, the files the Hugging Face
``wnut_17`` loader reads): ``token<TAB>tag``, BIO (IOB2) with lower-case types. Splits: train =
``wnut17train.conll``, dev = ``emerging.dev.conll``, test = ``emerging.test.annotated`` (the adjudicated gold; the
upstream ``emerging.test.conll`` is a pre-adjudication draft and is not read). In the train file 2394 sentence
separators are a line holding a single TAB and 1000 are empty lines: any line empty after ``strip()`` ends a sentence.

Never train on any split (INDEX.md): evaluate on test; dev may pick checkpoints (say so when it does).

Labels (:data:`LABELS`, ``schema.ent`` in this order): ``person``, ``location``, ``corporation``, ``product``,
``creative-work -> creative work``, ``group``. Unified record: ``text`` = tokens joined by single spaces, id
``wnut17.<split>.<n>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION

from .biomed import read_bio_tsv
from .convert import ConversionReport, register_split_files

LABELS = {
    "person": "person",
    "location": "location",
    "corporation": "corporation",
    "product": "product",
    "creative-work": "creative work",
    "group": "group",
}
SPLIT_FILES = {"train": "wnut17train.conll", "dev": "emerging.dev.conll", "test": "emerging.test.annotated"}


def _read_split(path: Path, split: str, instruction: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
    return read_bio_tsv(path, "wnut17", split, instruction, LABELS, report)


read_splits = register_split_files(
    "wnut17", "ner", SPLIT_FILES, _read_split, NER_INSTRUCTION,
    "WNUT-17 {wnut17train.conll, emerging.dev.conll, emerging.test.annotated} (BIO, token<TAB>tag), "
    "leondz/emerging_entities_17 @ e52a2d2a [held-out zero-shot target]",
    shared_subdir="wnut17",
).read_splits
