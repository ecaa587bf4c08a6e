"""CoNLL-2002 Spanish and Dutch NER (flat; PER/LOC/ORG/MISC) -> unified NER records: ``conll2002-es``, ``conll2002-nl``.

Source format (``shared/data/conll2002/SOURCE.md``; teropa/nlp @ f89bc5a1, the NLTK copy the HF ``conll2002``
loader reads): UTF-8, one token a line, three space-separated columns ``token POS tag``, a blank line ends a
sentence, tags **IOB2**. Splits: train = ``{esp,ned}.train``, dev = ``testa``, test = ``testb``.

Quirks (SOURCE.md):

* Dutch ``-DOCSTART- -DOCSTART- O`` opens the first sentence of each article with **no blank line after it**: the
  line is dropped (not a separator, not a token) and counted in the report (287 / 74 / 119 in train / dev / test).
* Spanish has one ``I-`` without a ``B-`` in each file: treated as an entity start and noted (conlleval's reading).

Unified record: ``text`` = tokens joined by single spaces (char offsets exact), ``schema.ent`` =
``["person", "location", "organization", "miscellaneous"]`` (the CoNLL-2003 verbalisation), id
``conll2002-<lang>.<split>.<n>`` (n counts sentences from 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import NER_INSTRUCTION

from .conll03 import LABELS, block_entities
from .convert import ConversionReport, register_split_files, unified_record
from .registry import SourceFormatError

LANGUAGES = {"es": "esp", "nl": "ned"}
DOCSTART = "-DOCSTART-"


def split_files(lang: str) -> dict[str, str]:
    prefix = LANGUAGES[lang]
    return {"train": f"{prefix}.train", "dev": f"{prefix}.testa", "test": f"{prefix}.testb"}


def iter_sentences(path: Path, split: str, report: ConversionReport) -> Iterator[list[tuple[int, list[str]]]]:
    """Blank-line separated sentences of ``token POS tag`` lines; ``-DOCSTART-`` lines dropped and counted."""
    block: list[tuple[int, list[str]]] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if block:
                    yield block
                block = []
                continue
            cols = line.split(" ")
            if len(cols) != 3:
                raise SourceFormatError(path, lineno, f"expected 3 columns (token POS tag), got {len(cols)}: {line!r}")
            if cols[0] == DOCSTART:
                # the article marker: not a token of the sentence it opens (SOURCE.md, Dutch quirk)
                report.note(split, "-DOCSTART- line dropped (document marker)", f"{path.name}:{lineno}")
                continue
            block.append((lineno, cols))
    if block:
        yield block


def _reader(lang: str):
    def read_split(path: Path, split: str, instruction: str, report: ConversionReport) -> Iterator[dict[str, Any]]:
        labels = list(LABELS.values())
        for n, block in enumerate(iter_sentences(path, split, report)):
            tt, ents = block_entities(block, 2, "iob2", path, split, report)
            yield unified_record(f"conll2002-{lang}.{split}.{n}", instruction, {"ent": labels}, tt.text, {"ent": ents})

    return read_split


read_splits_es = register_split_files(
    "conll2002-es", "ner", split_files("es"), _reader("es"), NER_INSTRUCTION,
    "CoNLL-2002 Spanish esp.{train,testa,testb} (IOB2, token POS tag; NLTK copy), teropa/nlp @ f89bc5a1",
    shared_subdir="conll2002",
).read_splits
read_splits_nl = register_split_files(
    "conll2002-nl", "ner", split_files("nl"), _reader("nl"), NER_INSTRUCTION,
    "CoNLL-2002 Dutch ned.{train,testa,testb} (IOB2, token POS tag, -DOCSTART- lines dropped), teropa/nlp @ f89bc5a1",
    shared_subdir="conll2002",
).read_splits
