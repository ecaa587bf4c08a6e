"""GLUE-style TSV classification -> unified classification records (``schema.cls`` / ``ans.cls``).

Source format: the GLUE benchmark's ``{train,dev,test}.tsv`` files (Wang et al. 2018, ``download_glue_data.py``
layout; tab-separated, no quoting -- read like GLUE's own processors with ``quotechar=None``). Real data staged:
SST-2 (``shared/data/sst2/SOURCE.md``; eyalbd2/Reproducing-AutoPrompt @ 6288fb5b ``glue_data/SST-2``: header
``sentence<TAB>label``, test ``index<TAB>sentence``, unlabeled). Presets for the other GLUE tasks follow the official
headers (fixture-tested only):

======== ===================================================== ====================== =======================
name     header (train/dev)                                    text / bg              labels
======== ===================================================== ====================== =======================
sst2     ``sentence label``                                    sentence               0 negative, 1 positive
cola     none: ``source label original_mark sentence``         sentence               0 unacceptable, 1 acceptable
mrpc     ``Quality #1 ID #2 ID #1 String #2 String``           #1 String / #2 String  0 not equivalent, 1 equivalent
qqp      ``id qid1 qid2 question1 question2 is_duplicate``     question1 / question2  0 not duplicate, 1 duplicate
qnli     ``index question sentence label``                     question / sentence    entailment, not entailment
rte      ``index sentence1 sentence2 label``                   sentence1 / sentence2  entailment, not entailment
wnli     ``index sentence1 sentence2 label``                   sentence1 / sentence2  0 not entailment, 1 entailment
mnli     ``index ... sentence1 sentence2 ... gold_label``      sentence1 / sentence2  contradiction, entailment, neutral
======== ===================================================== ====================== =======================

Sentence pairs: the first segment goes to ``text``, the second to ``bg`` (SPEC §1 convention). Test files have no
label column: their records get an empty ``ans.cls``. Texts are stripped of surrounding whitespace (SST-2 train rows
end with a space). The generic ``glue-tsv`` benchmark reads every ``*.tsv`` of a folder (split = file stem) with
column names and label names given as options (``text_col``, ``bg_col``, ``label_col``, ``labels="0:no,1:yes"``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modeling_ldnet.vocabulary_ldnet import CLS_INSTRUCTION

from .convert import ConversionReport
from .registry import Benchmark, SourceFormatError, register


@dataclass(frozen=True)
class TsvTask:
    """How to read one GLUE-style task."""

    name: str
    text_col: str
    labels: dict[str, str]  # raw label -> readable label, in schema order
    instruction: str
    bg_col: str | None = None
    label_col: str | None = "label"
    # split -> candidate file names (first existing one wins)
    files: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"train": ("train.tsv",), "dev": ("dev.tsv",), "test": ("test.tsv",)}
    )
    headerless_columns: tuple[str, ...] | None = None  # used when the first line is not a header


NLI = "Please determine whether the first text entails the second one."
PRESETS: dict[str, TsvTask] = {
    "sst2": TsvTask(
        "sst2", "sentence", {"0": "negative", "1": "positive"}, "Please classify the sentiment of the text.",
        files={"train": ("train_full.tsv", "train.tsv"), "dev": ("dev.tsv",), "test": ("test.tsv",)},
    ),
    "cola": TsvTask(
        "cola", "sentence", {"0": "unacceptable", "1": "acceptable"},
        "Please determine whether the text is grammatically acceptable.",
        headerless_columns=("source", "label", "original_mark", "sentence"),
    ),
    "mrpc": TsvTask(
        "mrpc", "#1 String", {"0": "not equivalent", "1": "equivalent"},
        "Please determine whether the two sentences are semantically equivalent.", bg_col="#2 String",
        label_col="Quality",
    ),
    "qqp": TsvTask(
        "qqp", "question1", {"0": "not duplicate", "1": "duplicate"},
        "Please determine whether the two questions are duplicates.", bg_col="question2", label_col="is_duplicate",
    ),
    "qnli": TsvTask(
        "qnli", "question", {"entailment": "entailment", "not_entailment": "not entailment"},
        "Please determine whether the sentence contains the answer to the question.", bg_col="sentence",
    ),
    "rte": TsvTask("rte", "sentence1", {"entailment": "entailment", "not_entailment": "not entailment"}, NLI,
                   bg_col="sentence2"),
    "wnli": TsvTask("wnli", "sentence1", {"0": "not entailment", "1": "entailment"}, NLI, bg_col="sentence2"),
    "mnli": TsvTask(
        "mnli", "sentence1", {"contradiction": "contradiction", "entailment": "entailment", "neutral": "neutral"},
        NLI, bg_col="sentence2", label_col="gold_label",
        files={
            "train": ("train.tsv",),
            "dev_matched": ("dev_matched.tsv",),
            "dev_mismatched": ("dev_mismatched.tsv",),
            "test_matched": ("test_matched.tsv",),
            "test_mismatched": ("test_mismatched.tsv",),
        },
    ),
}


def _read_tsv(path: Path, task: TsvTask, dataset: str, split: str, instruction: str) -> Iterator[dict[str, Any]]:
    labels = list(task.labels.values())
    with path.open(encoding="utf-8", newline="") as fh:
        first = fh.readline().rstrip("\r\n").split("\t")
        if task.text_col in first:
            columns, start_line = first, 2
        elif task.headerless_columns is not None:
            columns, start_line = list(task.headerless_columns), 1
            fh.seek(0)
        else:
            raise SourceFormatError(path, 1, f"header {first!r} has no column {task.text_col!r}")
        index = {c: i for i, c in enumerate(columns)}
        for col in (task.bg_col,):
            if col is not None and col not in index:
                raise SourceFormatError(path, 1, f"header {columns!r} has no column {col!r}")
        has_label = task.label_col is not None and task.label_col in index
        n = 0
        for lineno, raw in enumerate(fh, start_line):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != len(columns):
                raise SourceFormatError(path, lineno, f"expected {len(columns)} tab-separated columns, got {len(cols)}")
            cls: list[str] = []
            if has_label:
                raw_label = cols[index[task.label_col]].strip()
                if raw_label not in task.labels:
                    raise SourceFormatError(path, lineno, f"unknown label {raw_label!r}; expected {sorted(task.labels)}")
                cls = [task.labels[raw_label]]
            yield {
                "id": f"{dataset}.{split}.{n}",
                "instruction": instruction,
                "schema": {"cls": labels},
                "text": cols[index[task.text_col]].strip(),
                "bg": cols[index[task.bg_col]].strip() if task.bg_col else "",
                "ans": {"cls": cls},
            }
            n += 1


def _read_task(src_dir: Path, task: TsvTask, dataset: str, instruction: str,
               report: ConversionReport) -> dict[str, Iterator[dict[str, Any]]]:
    out = {}
    for split, names in task.files.items():
        path = next((Path(src_dir) / f for f in names if (Path(src_dir) / f).is_file()), None)
        if path is None:
            report.missing(split, Path(src_dir) / names[-1])
            continue
        out[split] = _read_tsv(path, task, dataset, split, instruction)
    return out


def _preset_reader(task: TsvTask, dataset: str):
    def read_splits(
        src_dir: Path, instruction: str = task.instruction, report: ConversionReport | None = None
    ) -> dict[str, Iterator[dict[str, Any]]]:
        """``{split: records}`` for the GLUE task's TSV files in ``src_dir`` (missing files reported)."""
        return _read_task(src_dir, task, dataset, instruction, report or ConversionReport(dataset))

    return read_splits


def benchmark_name(task: TsvTask) -> str:
    """Registry name (and record id prefix): ``sst2``, ``glue-cola``, ``glue-mrpc``, ..."""
    return task.name if task.name == "sst2" else f"glue-{task.name}"


def parse_labels(spec: str) -> dict[str, str]:
    """``"0:negative,1:positive"`` -> ``{"0": "negative", "1": "positive"}`` (``"a,b"`` -> identity mapping)."""
    out = {}
    for part in spec.split(","):
        raw, _, readable = part.partition(":")
        raw = raw.strip()
        if not raw:
            raise ValueError(f"empty label in {spec!r}")
        out[raw] = (readable or raw).strip()
    return out


def read_generic(
    src_dir: Path,
    instruction: str = "Please classify the text.",
    report: ConversionReport | None = None,
    text_col: str = "sentence",
    bg_col: str | None = None,
    label_col: str | None = "label",
    labels: str | None = None,
    dataset: str = "glue",
) -> dict[str, Iterator[dict[str, Any]]]:
    """Any GLUE-style TSV folder: every ``*.tsv`` is a split named after its stem."""
    if not labels:
        raise ValueError("glue-tsv needs labels, e.g. --labels 0:negative,1:positive")
    files = sorted(Path(src_dir).glob("*.tsv"))
    task = TsvTask(dataset, text_col, parse_labels(labels), instruction, bg_col=bg_col, label_col=label_col,
                   files={f.stem: (f.name,) for f in files})
    return _read_task(src_dir, task, dataset, instruction, report or ConversionReport(dataset))


for _task in PRESETS.values():
    register(
        Benchmark(
            name=benchmark_name(_task),
            task="cls",
            read_splits=_preset_reader(_task, benchmark_name(_task)),
            instruction=_task.instruction,
            source=(
                "GLUE SST-2 TSV, eyalbd2/Reproducing-AutoPrompt @ 6288fb5b glue_data/SST-2"
                if _task.name == "sst2"
                else f"GLUE {_task.name.upper()} TSV (download_glue_data.py layout)"
            ),
            status="real" if _task.name == "sst2" else "fixture",
            shared_subdir="sst2" if _task.name == "sst2" else None,
            how_to_obtain="" if _task.name == "sst2" else (
                f"GLUE {_task.name.upper()}: run GLUE's download_glue_data.py (or export nyu-mll/glue from the "
                f"Hugging Face Hub to TSV) and pass the task folder"
            ),
        )
    )

register(
    Benchmark(
        name="glue-tsv",
        task="cls",
        read_splits=read_generic,
        instruction=CLS_INSTRUCTION,
        source="any GLUE-style TSV folder (header row; every *.tsv = one split)",
        status="fixture",
        how_to_obtain="your own TSV files; give --text-col/--bg-col/--label-col/--labels",
        options={
            "text_col": "column holding the text (default 'sentence')",
            "bg_col": "column holding the second segment of a pair task (-> bg)",
            "label_col": "label column (absent in a file -> unlabeled split)",
            "labels": "label inventory in schema order, 'raw:readable,...' (required)",
            "dataset": "dataset name used in record ids (default 'glue')",
        },
    )
)
