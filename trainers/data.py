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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict

from modeling_ldnet.schema import normalize_record
from modeling_ldnet.vocabulary_ldnet import TASK_FIELDS
from processing import BENCHMARKS, convert_benchmark, load_unified
from processing.features import to_arrow_record
from processing.paths import shared_data_dir
from processing.user_formats import load_user_data

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


def load_records(path: str | Path, split: str | None = None) -> Dataset:
    """A unified ``.jsonl``/``.parquet`` file, or one split of a converted folder, as a ``Dataset``. Users' own
    formats (CoNLL/BIO, ``.spacy``, Label Studio, GLiNER, brat; detected, or ``FORMAT:path``) are converted first."""
    user = load_user_data(path, split)
    if user is not None:
        return user
    p = Path(path)
    dd = load_unified(p)
    if p.is_file():
        return next(iter(dd.values()))
    if split is None:
        raise ValueError(f"{p} is a folder: name the split (one of {list(dd)})")
    name = pick_split(dd, split)
    if name is None:
        raise KeyError(f"{p}: no split {split!r} (have {list(dd)})")
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
