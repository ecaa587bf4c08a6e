"""Unified records -> tokenized training features (``datasets.map``) and record loading helpers.

Each record becomes one *feature* per encoding window (``LDNetProcessor`` splits texts longer than ``max_length``
into overlapping windows). A feature row holds what the collator pads (``input_ids``, ``attention_mask``,
``span_graph_links`` as ``[channel, i, j]`` triples, ``label_drop_targets``) plus bookkeeping:

* ``record_id``: the record's ``id``;
* ``teacher_key``: the key of the feature's teacher scores (:func:`feature_key`: the record id for the first window,
  ``"<id>#<k>"`` for window ``k > 0``);
* ``length``: number of tokens (for ``group_by_length``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict

from modeling_ldnet.encoding_ldnet import EncodingReport
from modeling_ldnet.modelcard_ldnet import collect_schema
from modeling_ldnet.schema import normalize_record
from modeling_ldnet.vocabulary_ldnet import SCHEMA_DICT_FIELDS, SCHEMA_LIST_FIELDS, TASK_FIELDS
from processing import BENCHMARKS, convert_benchmark, load_unified
from processing.convert import ConversionReport, ordered_splits
from processing.features import to_arrow_record
from processing.paths import shared_data_dir
from processing.user_formats import load_user_data, read_user_data, split_prefix

logger = logging.getLogger("ldnet.data")

#: Columns the collator / trainer read from a tokenized dataset (kept by ``remove_unused_columns``).
FEATURE_COLUMNS = (
    "input_ids",
    "attention_mask",
    "span_graph_links",
    "label_drop_targets",
    "record_id",
    "teacher_key",
    "length",
)


def feature_key(record_id: Any, window: int = 0) -> str:
    """Teacher-score key of window ``window`` of record ``record_id`` (``"<id>"`` or ``"<id>#<window>"``)."""
    return str(record_id) if window == 0 else f"{record_id}#{window}"


def input_hash(input_ids: Sequence[int] | np.ndarray) -> str:
    """Stable 16-hex-digit hash of an encoded ``input_ids`` sequence (teacher/student input agreement check)."""
    arr = np.asarray(input_ids, dtype=np.int64)
    return hashlib.sha1(arr.tobytes()).hexdigest()[:16]


def rows_to_records(batch: dict[str, list]) -> list[dict]:
    """A ``datasets`` batch (dict of columns) -> list of row dicts."""
    keys = list(batch)
    n = len(batch[keys[0]]) if keys else 0
    return [{k: batch[k][i] for k in keys} for i in range(n)]


def as_records(data: Any) -> list[dict]:
    """Records in canonical SPEC form from a list of dicts, a ``datasets.Dataset`` of unified rows or a jsonl path."""
    if isinstance(data, (str, Path)):
        data = load_records(data)
    return [normalize_record(r) for r in data]


def encode_features(processor: Any, records: Sequence[dict]) -> dict[str, list]:
    """Encode records with the processor; returns per-feature columns (see the module docstring)."""
    enc = processor(list(records), return_tensors=None)
    out: dict[str, list] = {c: [] for c in FEATURE_COLUMNS}
    seen: dict[int, int] = {}
    for f, meta in enumerate(enc["meta"]):
        window = seen.get(meta.record_index, 0)
        seen[meta.record_index] = window + 1
        ids = list(enc["input_ids"][f])
        out["input_ids"].append(ids)
        out["attention_mask"].append(list(enc["attention_mask"][f]))
        out["span_graph_links"].append([list(x) for x in enc["span_graph_links"][f]])
        out["label_drop_targets"].append([float(x) for x in enc["label_drop_targets"][f]])
        out["record_id"].append(str(meta.record_id))
        out["teacher_key"].append(feature_key(meta.record_id, window))
        out["length"].append(len(ids))
    return out


def tokenize_dataset(
    processor: Any,
    dataset: Dataset | Sequence[dict],
    batch_size: int = 256,
    num_proc: int | None = None,
    desc: str = "LDNet encoding",
) -> Dataset:
    """Unified records (``Dataset`` or list of dicts) -> tokenized feature ``Dataset`` via ``Dataset.map``."""
    if not isinstance(dataset, Dataset):
        dataset = Dataset.from_list([_arrow_safe(r) for r in dataset])

    def fn(batch: dict[str, list]) -> dict[str, list]:
        return encode_features(processor, rows_to_records(batch))

    return dataset.map(
        fn,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc,
        remove_columns=dataset.column_names,
        desc=desc,
        keep_in_memory=True,
        load_from_cache_file=False,
    )


def _arrow_safe(record: dict) -> dict:
    """SPEC-form record -> Arrow-friendly row (dict-valued schema fields become ``[{name, labels}]`` lists)."""
    return to_arrow_record(normalize_record(record))


def is_tokenized(dataset: Any) -> bool:
    cols = getattr(dataset, "column_names", None)
    return bool(cols) and "input_ids" in cols


# ---------------------------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------------------------

SPLIT_ALIASES = {"train": ("train",), "dev": ("dev", "validation", "valid", "val"), "test": ("test",)}


def load_records(path: str | Path, split: str | None = None, flag: str | None = None) -> Dataset:
    """A unified ``.jsonl``/``.parquet`` file, or one split of a converted folder, as a ``Dataset``. Users' own
    formats (CoNLL/BIO, ``.spacy``, Label Studio, GLiNER, brat; detected, or ``FORMAT:path``) are converted first.
    ``flag`` (e.g. ``"--data"``) names the argument in errors."""
    user = load_user_data(path, split, flag=flag)
    if user is not None:
        return user
    p = Path(path)
    where = f"{flag} {p}" if flag else str(p)
    dd = load_unified(p)
    if p.is_file():
        return next(iter(dd.values()))
    if split is None:
        raise ValueError(f"{where} is a folder: name the split (one of {list(dd)})")
    name = pick_split(dd, split)
    if name is None:
        raise KeyError(f"{where}: no split {split!r} (have {list(dd)})")
    return dd[name]


def pick_split(dd: DatasetDict | dict, split: str) -> str | None:
    """The name under which ``dd`` holds ``split`` (``dev`` also matches ``validation``...), or None."""
    for name in SPLIT_ALIASES.get(split, (split,)):
        if name in dd:
            return name
    return None


def benchmark_source(name: str, data_dir: str | Path | None = None) -> str:
    """``data_dir``, or the staged copy ``<shared_data>/<shared_subdir>`` of benchmark ``name`` (``shared_data`` =
    ``$LDNET_SHARED_DATA``, default ``../shared/data``); an error names the folder when neither exists."""
    if data_dir:
        return str(data_dir)
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r} (python -m processing list)")
    path = shared_data_dir() / (BENCHMARKS[name].shared_subdir or name)
    if not path.is_dir():
        raise FileNotFoundError(f"benchmark {name!r}: no --data_dir given and the staged copy {path} does not exist "
                                "(set LDNET_SHARED_DATA or pass --data_dir)")
    return str(path)


def load_benchmark(name: str, data_dir: str | Path | None = None, **options: Any) -> DatasetDict:
    """Convert a registered benchmark on the fly (``processing.convert_benchmark``) and return its splits; the
    source defaults to the staged copy (:func:`benchmark_source`)."""
    dd, _report = convert_benchmark(name, benchmark_source(name, data_dir), progress=False, **options)
    return dd


def task_fields(records: Iterable[dict]) -> list[str]:
    """Tasks (``ans`` fields) the records' schemas ask for: reported by the metric even when nothing is found."""
    tasks: set[str] = set()
    for r in records:
        schema = r.get("schema") or {}
        active = [f for f in TASK_FIELDS if schema.get(f)]
        tasks.update(active)
        if not active:
            tasks.add("span")
    return sorted(tasks)


# ---------------------------------------------------------------------------------------------------------------
# the splits of ldnet-train, where they came from, and what reading them cost (conversion_report.json)
# ---------------------------------------------------------------------------------------------------------------

#: ``ldnet-train``'s file flags: (split, flag, DataArguments field)
FILE_FLAGS = (("train", "--train_file", "train_file"), ("dev", "--validation_file", "validation_file"),
              ("test", "--test_file", "test_file"))


def portable_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies below it, else its last two components (an absolute
    path names the machine it ran on, not the data). ``trainers.loading.portable_path`` is this function."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(Path(*p.parts[-2:]))


def _portable_source(path: str) -> str:
    """``portable_path`` keeping a ``FORMAT:`` prefix (``brat:/abs/corpus`` -> ``brat:data/corpus``)."""
    head, sep, rest = str(path).partition(":")
    if sep and len(head) > 1 and "/" not in head and "\\" not in head:
        return f"{head}:{portable_path(rest)}"
    return portable_path(path)


@dataclass
class SplitSource:
    """Where one split of ``ldnet-train`` came from."""

    flag: str  #: ``--train_file``, ``--validation_file``, ``--test_file``, ``--data_dir`` or ``--benchmark``
    path: str  #: as recorded (portable; a ``FORMAT:`` prefix kept)
    format: str  #: ``unified``, a user format (``brat``, ``bio``...) or the benchmark's name
    part: str | None = None  #: the split of a multi-split folder / benchmark used for it (None: the only one)
    records: int = 0

    def describe(self) -> str:
        part = f", its {self.part!r} split" if self.part else ""
        return f"{self.flag} {self.path} ({self.format}{part})"

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "path": self.path, "format": self.format, "part": self.part,
                "records": self.records}


@dataclass
class TrainingData:
    """``ldnet-train``'s splits (``{"train"|"dev"|"test": Dataset}``), their sources, and the conversion report of
    every source that was converted (keyed by ``"FLAG PATH"``)."""

    splits: dict[str, Dataset] = field(default_factory=dict)
    sources: dict[str, SplitSource] = field(default_factory=dict)
    conversions: dict[str, ConversionReport] = field(default_factory=dict)

    def set(self, split: str, ds: Dataset, source: SplitSource) -> None:
        self.splits[split] = ds
        self.sources[split] = source

    def card_data(self) -> list[dict[str, Any]]:
        """The model card's ``training_data``: one entry per split (path, flag, format, records)."""
        return [{"path": s.path, "split": split, "format": s.format, "records": s.records, "flag": s.flag,
                 **({"part": s.part} if s.part else {})}
                for split, s in ((k, self.sources[k]) for k in ordered_splits(self.sources))]


def _read_source(path: str, flag: str, cache: dict[str, tuple[str, DatasetDict, ConversionReport | None]]
                 ) -> tuple[str, DatasetDict, ConversionReport | None]:
    """``(format, all splits, conversion report or None)`` of one flag's file / folder (converted once per path)."""
    if path in cache:
        return cache[path]
    _, p = split_prefix(path)
    if not p.exists():
        raise FileNotFoundError(f"{flag} {path}: no such file or folder")
    user = read_user_data(path)
    if user is not None:
        fmt, _, dd, report = user
        cache[path] = (fmt, dd, report)
    else:
        cache[path] = ("unified", load_unified(p), None)
    return cache[path]


def load_training_data(data_args: Any, benchmark_options: Mapping[str, Any] | None = None) -> TrainingData:
    """The splits of ``ldnet-train`` (``DataArguments`` in) with their sources and conversion reports.

    ``--benchmark`` (converted from ``--data_dir`` or the staged copy) or ``--data_dir`` (a converted folder, or a
    folder in a user format: every split it holds) come first; then each of ``--train_file`` /
    ``--validation_file`` / ``--test_file`` replaces its split. A file flag naming a folder with several splits
    (a brat folder with ``train/`` and ``dev/`` sub-folders, ``train.conll`` + ``dev.conll`` ...) takes the flag's
    split from it, and the folder's other splits fill in the splits no other argument gave (logged).
    """
    data = TrainingData()
    if data_args.benchmark:
        opts = dict(benchmark_options or {})
        if data_args.instruction is not None:
            opts["instruction"] = data_args.instruction
        src = benchmark_source(data_args.benchmark, data_args.data_dir)
        dd, report = convert_benchmark(data_args.benchmark, src, progress=False, **opts)
        where = f"{data_args.benchmark} ({portable_path(src)})"
        data.conversions[f"--benchmark {where}"] = report
        for split in ("train", "dev", "test"):
            name = pick_split(dd, split)
            if name is not None:
                data.set(split, dd[name], SplitSource("--benchmark", where, data_args.benchmark, name))
    elif data_args.data_dir:
        fmt, dd, report = _read_source(data_args.data_dir, "--data_dir", {})
        where = _portable_source(data_args.data_dir)
        if report is not None:
            data.conversions[f"--data_dir {where}"] = report
        for split in ("train", "dev", "test"):
            name = pick_split(dd, split)
            if name is not None:
                data.set(split, dd[name], SplitSource("--data_dir", where, fmt, name))
    cache: dict[str, tuple[str, DatasetDict, ConversionReport | None]] = {}
    extras: list[tuple[str, Dataset, SplitSource]] = []
    given = {split for split, _, attr in FILE_FLAGS if getattr(data_args, attr)}
    for split, flag, attr in FILE_FLAGS:
        path = getattr(data_args, attr)
        if not path:
            continue
        fmt, dd, report = _read_source(path, flag, cache)
        where = _portable_source(path)
        if report is not None and not any(r is report for r in data.conversions.values()):  # one folder, 2 flags
            data.conversions[f"{flag} {where}"] = report
        if len(dd) == 1:
            data.set(split, next(iter(dd.values())), SplitSource(flag, where, fmt))
            continue
        name = pick_split(dd, split)
        if name is None:
            raise KeyError(f"{flag} {path}: no {split!r} split in it (it holds {list(dd)}); point {flag} at the "
                           f"{split} file or folder itself")
        data.set(split, dd[name], SplitSource(flag, where, fmt, name))
        for other in ("train", "dev", "test"):
            other_name = pick_split(dd, other)
            if other != split and other_name is not None and other not in given:
                extras.append((other, dd[other_name], SplitSource(flag, where, fmt, other_name)))
    for split, ds, source in extras:
        if split not in data.splits:
            logger.info("%s split: %s; %s would replace it", split, source.describe(),
                        {s: f for s, f, _ in FILE_FLAGS}[split])
            data.set(split, ds, source)
    limits = {"train": data_args.max_train_samples, "dev": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    for split, n in limits.items():
        if n is not None and split in data.splits and len(data.splits[split]) > n:
            data.splits[split] = data.splits[split].select(range(n))
    if data_args.instruction is not None and not data_args.benchmark:
        inst = data_args.instruction
        data.splits = {k: v.map(lambda r: {"instruction": inst}, keep_in_memory=True) for k, v in data.splits.items()}
    for split, ds in data.splits.items():
        data.sources[split].records = len(ds)
    return data


def conversion_report_dict(report: ConversionReport) -> dict[str, Any]:
    """A :class:`~processing.convert.ConversionReport` as JSON: records / items per split, drops and notes with
    their counts and first example, missing splits."""
    def reasons(table: dict[str, Counter], kind: str) -> dict[str, dict[str, Any]]:
        return {sp: {r: {"count": n, "example": report.examples.get((kind, sp, r), "")}
                     for r, n in sorted(table[sp].items())} for sp in ordered_splits(table)}

    return {
        "splits": {sp: {"records": st.records, "no_answer": st.empty,
                        "items": {k: v for k, v in st.items.items() if v}}
                   for sp, st in ((sp, report.splits[sp]) for sp in ordered_splits(report.splits))},
        "dropped": reasons(report.drops, "drop"),
        "notes": reasons(report.notes, "note"),
        "missing_splits": dict(report.missing_splits),
    }


def encoding_check(processor: Any, records: Iterable[dict]) -> EncodingReport:
    """Encode ``records`` once (no tensors kept) and count what the processor could not encode (gold items that
    fall between tokens, beyond a truncation, backgrounds cut ...); the processor's cumulative report is untouched."""
    report = EncodingReport()
    for i, rec in enumerate(records):
        processor.encode_record(rec, i, report=report)
    return report


def encoding_dict(report: EncodingReport) -> dict[str, Any]:
    return {"records": report.records, "features": report.features, "gold_items": report.items,
            "encoded": report.encoded, "unencodable": dict(sorted(report.unencodable.items())),
            "snapped_to_tokens": report.misaligned, "label_collisions": report.label_collisions,
            "windowed_records": report.windowed_records, "truncated_backgrounds": report.truncated_bg,
            "schema_split_records": report.split_records}


def _label_key(label: str) -> str:
    """Case- and separator-insensitive form of a label (``Works_for`` / ``works-for`` / ``works for`` alike)."""
    return re.sub(r"[\s_\-./:]+", "", label.casefold())


def label_sets(dataset: Dataset | Sequence[dict]) -> dict[str, set[str]]:
    """Labels per schema field over all records (``event`` / ``hyper_rel``: their types, and ``"event roles"`` /
    ``"hyper_rel qualifiers"``: the inner labels)."""
    schemas = dataset["schema"] if isinstance(dataset, Dataset) else [r.get("schema") or {} for r in dataset]
    merged = collect_schema(schemas)
    out: dict[str, set[str]] = {}
    for f in SCHEMA_LIST_FIELDS:
        if merged.get(f):
            out[f] = set(merged[f])
    for f in SCHEMA_DICT_FIELDS:
        if merged.get(f):
            out[f] = set(merged[f])
            inner = {x for labels in merged[f].values() for x in labels}
            if inner:
                out[f"{f} {'roles' if f == 'event' else 'qualifiers'}"] = inner
    return out


def label_differences(train: Dataset | Sequence[dict], dev: Dataset | Sequence[dict]) -> dict[str, dict[str, Any]]:
    """``{field: {"only_train", "only_dev", "near_matches"}}`` for every schema field whose label sets differ;
    ``near_matches`` pairs ``[train spelling, dev spelling]`` equal up to case and separators (``_ - . / :`` and
    spaces), which are then left out of the ``only_*`` lists."""
    a, b = label_sets(train), label_sets(dev)
    out: dict[str, dict[str, Any]] = {}
    for f in [*a, *(k for k in b if k not in a)]:
        only_a, only_b = sorted(a.get(f, set()) - b.get(f, set())), sorted(b.get(f, set()) - a.get(f, set()))
        if not only_a and not only_b:
            continue
        near = [[x, y] for x in only_a for y in only_b if _label_key(x) == _label_key(y)]
        paired_a, paired_b = {x for x, _ in near}, {y for _, y in near}
        out[f] = {"only_train": [x for x in only_a if x not in paired_a],
                  "only_dev": [y for y in only_b if y not in paired_b], "near_matches": near}
    return out


def label_differences_message(diff: Mapping[str, Mapping[str, Any]]) -> str:
    """The warning for :func:`label_differences`: the near-matches of every field first (usually one label spelled
    twice), then the labels only in train / only in dev."""
    lines = ["train and dev label sets differ (dev is scored on its own labels; a label spelled differently in "
             "train was never learned under the dev spelling):"]
    for f, d in diff.items():
        for x, y in d["near_matches"]:
            lines.append(f"  {f}: {x!r} (train) vs {y!r} (dev) differ only in case/separators: use one spelling "
                         "(e.g. the converters' --label-map)")
    for f, d in diff.items():
        if d["only_train"]:
            lines.append(f"  {f}: only in train: {d['only_train']}")
        if d["only_dev"]:
            lines.append(f"  {f}: only in dev: {d['only_dev']}")
    return "\n".join(lines)


def data_report(data: TrainingData, processor: Any | None = None) -> dict[str, Any]:
    """What ``ldnet-train`` read (``conversion_report.json``): per split its source, record count and (with a
    processor) the encoding check; each converted source's conversion report; train / dev label differences."""
    splits: dict[str, Any] = {}
    for split in ordered_splits(data.splits):
        entry = data.sources[split].to_dict()
        if processor is not None:
            entry["encoding"] = encoding_dict(encoding_check(processor, data.splits[split]))
        splits[split] = entry
    diff = label_differences(data.splits["train"], data.splits["dev"]) if {"train", "dev"} <= set(data.splits) else {}
    return {"splits": splits, "conversions": {k: conversion_report_dict(r) for k, r in data.conversions.items()},
            "label_differences": diff}


def _counts(table: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    parts = []
    for sp, reasons in table.items():
        for reason, d in reasons.items():
            ex = f" (e.g. {d['example'][:60]})" if d.get("example") else ""
            parts.append(f"{sp}: {reason} x{d['count']}{ex}")
    return "; ".join(parts)


def format_data_report(report: Mapping[str, Any], saved_to: str | os.PathLike | None = None) -> str:
    """One compact block for the log: a line per split, a line per conversion's drops / notes."""
    lines = ["data read" + (f" (details: {saved_to})" if saved_to else "") + ":"]
    for split, s in report["splits"].items():
        line = f"  {split}: {s['records']} record{'' if s['records'] == 1 else 's'} <- {s['flag']} {s['path']} ({s['format']}"
        line += f", its {s['part']!r} split)" if s.get("part") else ")"
        enc = s.get("encoding")
        if enc:
            bad = ", ".join(f"{k} {v}" for k, v in enc["unencodable"].items())
            line += (f"; gold items {enc['gold_items']}, encoded {enc['encoded']}"
                     + (f", unencodable: {bad}" if bad else "")
                     + (f"; windowed records {enc['windowed_records']}" if enc["windowed_records"] else "")
                     + (f"; truncated backgrounds {enc['truncated_backgrounds']}" if enc["truncated_backgrounds"]
                        else ""))
        lines.append(line)
    for where, conv in report["conversions"].items():
        dropped = sum(d["count"] for reasons in conv["dropped"].values() for d in reasons.values())
        lines.append(f"  {where}: dropped {dropped} items" + (f": {_counts(conv['dropped'])}" if dropped else ""))
        if conv["notes"]:
            lines.append(f"  {where}: notes (nothing lost): {_counts(conv['notes'])}")
        for sp, path in conv["missing_splits"].items():
            lines.append(f"  {where}: split {sp!r} missing ({path})")
    return "\n".join(lines)
