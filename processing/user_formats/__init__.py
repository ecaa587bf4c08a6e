"""Converters from annotation tools' formats (users' own data) to the unified record (SPEC §1).

Registered in ``processing.BENCHMARKS`` like the benchmark converters, so the driver validates every record
(``validate_record``) and fills the same :class:`~processing.convert.ConversionReport`::

    python -m processing convert bio      data/ner/          out/ner      [--tag-column 3] [--scheme iob1]
    python -m processing convert spacy    corpus/train.spacy out/spacy    [--spans-key sc]
    python -m processing convert labelstudio export.json     out/ls       [--text-key text]
    python -m processing convert gliner   pilener_train.json out/gliner
    python -m processing convert gliner2  train.jsonl        out/gliner2
    python -m processing convert brat     brat_corpus/       out/brat     [--segment line]

    >>> from processing.user_formats import convert_user_data
    >>> dd, report = convert_user_data("export.json")          # format detected (detect_format)

``ldnet-train --train_file`` accepts these files directly (format detected, or ``FORMAT:path``), see
:func:`load_user_data` and ``docs/your-data.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..convert import ConversionReport, convert_benchmark
from ..registry import Benchmark, register
from . import bio, brat, docbin, gliner, gliner2, labelstudio
from ._common import AUTO_INSTRUCTION
from .detect import (
    FORMATS,
    canonical_format,
    detect_format,
    load_user_data,
    pick_user_split,
    read_user_data,
    split_prefix,
)

_LABEL_MAP = "rename labels: 'PER=person,LOC=location' or a JSON file {source: target}"
_OBTAIN = "your own annotations ({}); a file or a folder with train/dev/test in the file names"

register(Benchmark(
    name="bio", task="ner", read_splits=bio.read_splits, instruction=AUTO_INSTRUCTION,
    source="CoNLL/BIO column files (IOB1, IOB2 or BIOES/BILOU detected; any tag set)", status="fixture",
    how_to_obtain=_OBTAIN.format("one token a line, blank line between sentences"),
    options={"token_column": "token column (default 0)", "tag_column": "tag column (default -1 = last)",
             "separator": "column separator: tab, space or a string (default: any whitespace)",
             "scheme": "auto (default), iob1, iob2 or bioes", "comment_prefix": "skip lines starting with it",
             "label_map": _LABEL_MAP},
))
register(Benchmark(
    name="spacy", task="ner", read_splits=docbin.read_splits, instruction=AUTO_INSTRUCTION,
    source="spaCy DocBin .spacy files (doc.ents, doc.spans groups, doc.cats)", status="fixture",
    how_to_obtain=_OBTAIN.format("DocBin.to_disk / spacy convert"),
    options={"spans_key": "span groups to read, comma separated (default: all; '' = none)",
             "ents": "read doc.ents (default true)", "cats_threshold": "doc.cats score for a class (default 0.5)",
             "label_map": _LABEL_MAP},
))
register(Benchmark(
    name="labelstudio", task="re", read_splits=labelstudio.read_splits, instruction=AUTO_INSTRUCTION,
    source="Label Studio JSON export (labels spans, relations, choices)", status="fixture",
    how_to_obtain=_OBTAIN.format("Label Studio project > Export > JSON"),
    options={"text_key": "task data field holding the text (default: 'text' or the only string field)",
             "label_map": _LABEL_MAP},
))
register(Benchmark(
    name="gliner", task="ner", read_splits=gliner.read_splits, instruction=AUTO_INSTRUCTION,
    source="GLiNER training data JSON / JSONL (tokenized_text + ner [start, end_inclusive, label])",
    status="fixture", how_to_obtain=_OBTAIN.format("GLiNER training data"),
    options={"label_map": _LABEL_MAP},
))
register(Benchmark(
    name="gliner2", task="re", read_splits=gliner2.read_splits, instruction=AUTO_INSTRUCTION,
    source="GLiNER2 training JSONL ({input, output: {entities, entity_descriptions, relations, classifications}})",
    status="fixture", how_to_obtain=_OBTAIN.format("GLiNER2 training data"),
    options={"label_map": _LABEL_MAP},
))
register(Benchmark(
    name="brat", task="ee", read_splits=brat.read_splits, instruction=AUTO_INSTRUCTION,
    source="brat standoff .txt + .ann (T incl. discontinuous, R, E; A/M/N/#/* reported)", status="fixture",
    how_to_obtain="your own annotations (a brat data folder, searched recursively; train/dev/test sub-folders "
                  "become splits)",
    options={"discontinuous": "auto (default), true or false: entities as discontinuous_ent",
             "strip_role_numbers": "Theme2 -> Theme (default true)",
             "segment": "document (default) or line: one record per non-blank line",
             "label_map": _LABEL_MAP},
))


def convert_user_data(
    src: str | Path, fmt: str | None = None, out_dir: str | Path | None = None, out_format: str = "jsonl",
    instruction: str | None = None, progress: bool = False, **options: Any,
) -> tuple[Any, ConversionReport]:
    """Convert a user file/folder (format ``fmt``, else :func:`detect_format`) -> ``(DatasetDict, report)``."""
    prefixed, path = split_prefix(src)
    name = canonical_format(fmt) if fmt else (prefixed or detect_format(path))
    if name == "unified":
        raise ValueError(f"{src}: already in the unified format (or not recognised); formats: {FORMATS[1:]}")
    return convert_benchmark(name, path, out_dir, fmt=out_format, instruction=instruction, progress=progress,
                             **options)


__all__ = ["FORMATS", "canonical_format", "convert_user_data", "detect_format", "load_user_data", "pick_user_split",
           "read_user_data", "split_prefix"]
