"""A per-epoch augmented, lazily encoded training set (pre-training, and fine-tuning with ``--schema_shuffle``).

:class:`AugmentedRecordDataset` re-draws instruction and schema augmentation per ``(seed, epoch, record id)`` and
encodes lazily with the processor; :class:`EpochCallback` tells it the epoch. Library module (see ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import torch
from transformers import TrainerCallback

from modeling_ldnet.schema import normalize_record

from .data import FEATURE_COLUMNS, encode_features
from .instructions import InstructionSampler, record_rng
from .schema_aug import SchemaAugmenter

logger = logging.getLogger("ldnet.pretrain")

#: bookkeeping columns of a pre-training mix, carried through to the augmented record
EXTRA_COLUMNS = ("corpus", "task", "pool")


class AugmentedRecordDataset(torch.utils.data.Dataset):
    """Map-style training set: record ``i`` of epoch ``e`` = schema augmentation + instruction of ``(seed, e, id)``,
    encoded by the processor when fetched. One feature per record and epoch: a text longer than the processor's
    window yields several windows, of which one is drawn per epoch (also seeded).

    ``column_names`` lists the feature columns so :class:`~trainers.LDNetTrainer` treats it as tokenized.
    Works with ``dataloader_num_workers=0`` or non-persistent workers (the epoch is read when a worker starts).
    """

    column_names: ClassVar[list[str]] = list(FEATURE_COLUMNS)

    def __init__(self, records: Any, processor: Any, instructions: InstructionSampler | None = None,
                 schema_augmenter: SchemaAugmenter | None = None, seed: int = 0, epoch: int = 0) -> None:
        self.records = records
        self.processor = processor
        self.instructions = instructions
        self.schema_augmenter = schema_augmenter
        self.seed = int(seed)
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def record(self, index: int, epoch: int | None = None) -> dict[str, Any]:
        """The augmented SPEC-form record ``index`` of ``epoch`` (default: the current one)."""
        e = self.epoch if epoch is None else int(epoch)
        row = dict(self.records[index])
        task = row.get("task") or None
        if self.schema_augmenter is not None:
            rec = self.schema_augmenter(row, e, task)
        else:
            rec = normalize_record(row)
            rec.update({k: row[k] for k in EXTRA_COLUMNS if k in row})
        if self.instructions is not None:
            rec["instruction"] = self.instructions.instruction_for(rec, e, task, row.get("pool") or None)
        return rec

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.record(index)
        feats = encode_features(self.processor, [rec])
        n = len(feats["input_ids"])
        w = 0 if n == 1 else record_rng(self.seed, self.epoch, rec["id"], "window").randrange(n)
        return {c: feats[c][w] for c in FEATURE_COLUMNS}


class EpochCallback(TrainerCallback):
    """Sets the epoch of an :class:`AugmentedRecordDataset` at the start of every training epoch, and logs the
    processor's cumulative encoding report at the end of each."""

    def __init__(self, dataset: AugmentedRecordDataset) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        epoch = math.floor((state.epoch or 0.0) + 1e-6)
        self.dataset.set_epoch(epoch)
        logger.info("epoch %d: instructions / schemas re-drawn", epoch)

    def on_epoch_end(self, args, state, control, **kwargs):
        rep = getattr(self.dataset.processor, "report", None)
        if rep is not None:
            logger.info("encoding so far: %s", rep)


__all__ = ["EXTRA_COLUMNS", "AugmentedRecordDataset", "EpochCallback"]
