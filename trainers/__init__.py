"""Training, evaluation and distillation for LDNet on top of ``transformers.Trainer``.

    >>> from trainers import LDNetTrainer, LDNetTrainingArguments, LDNetDataCollator, TeacherScoreStore

Attributes are imported lazily (``import trainers`` alone does not import torch). Layout: library modules
(``loading``, ``data``, ``collator``, ``trainer``, ``teacher``, ...) below the entry points (``cli``, ``pretrain``,
``fewshot``); see ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "LDNetDataCollator": "collator",
    "LDNetTrainer": "trainer",
    "LDNetTrainingArguments": "trainer",
    "TimeLimitCallback": "trainer",
    "default_metric_for": "trainer",
    "distillation_loss": "trainer",
    "distillation_per_record": "trainer",
    "ldnet_parameter_groups": "trainer",
    "TEACHER_HASH_MISMATCH": "teacher",
    "TEACHER_MISSING": "teacher",
    "TEACHER_OK": "teacher",
    "TeacherScoreStore": "teacher",
    "TeacherScoreWriter": "teacher",
    "compute_teacher_scores": "teacher",
    "feature_key": "data",
    "input_hash": "data",
    "load_benchmark": "data",
    "load_records": "data",
    "tokenize_dataset": "data",
    "load_model_and_processor": "loading",
    "time_limit_callback": "trainer",
    "train_and_save": "trainer",
}

__all__ = [
    "TEACHER_HASH_MISMATCH",
    "TEACHER_MISSING",
    "TEACHER_OK",
    "LDNetDataCollator",
    "LDNetTrainer",
    "LDNetTrainingArguments",
    "TeacherScoreStore",
    "TeacherScoreWriter",
    "TimeLimitCallback",
    "compute_teacher_scores",
    "default_metric_for",
    "distillation_loss",
    "distillation_per_record",
    "feature_key",
    "input_hash",
    "ldnet_parameter_groups",
    "load_benchmark",
    "load_model_and_processor",
    "load_records",
    "time_limit_callback",
    "tokenize_dataset",
    "train_and_save",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trainers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from .collator import LDNetDataCollator
    from .data import (
        feature_key,
        input_hash,
        load_benchmark,
        load_records,
        tokenize_dataset,
    )
    from .loading import load_model_and_processor
    from .teacher import (
        TEACHER_HASH_MISMATCH,
        TEACHER_MISSING,
        TEACHER_OK,
        TeacherScoreStore,
        TeacherScoreWriter,
        compute_teacher_scores,
    )
    from .trainer import (
        LDNetTrainer,
        LDNetTrainingArguments,
        TimeLimitCallback,
        default_metric_for,
        distillation_loss,
        distillation_per_record,
        ldnet_parameter_groups,
        time_limit_callback,
        train_and_save,
    )
