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
from .trainer import model_batches

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


class CorpusLossCallback(TrainerCallback):
    """Logs the loss of every corpus of a mix on a fixed probe of its records (epoch-0 augmentation), every
    ``every_steps`` optimiser steps and at the end: ``loss/<corpus>`` in the Trainer's log history (and the progress
    bar / ``trainer_state.json``), so a mix whose small sets are drowned shows it while it trains.

    The probe is the first ``per_corpus`` records of each corpus in the (shuffled) mix; they stay in training
    (this is a per-corpus *training* loss, measured in eval mode without dropout).
    """

    def __init__(self, dataset: AugmentedRecordDataset, per_corpus: int = 16, every_steps: int = 500,
                 batch_size: int = 16) -> None:
        if per_corpus < 1 or every_steps < 1 or batch_size < 1:
            raise ValueError("CorpusLossCallback: per_corpus, every_steps and batch_size must be >= 1")
        corpora = dataset.records["corpus"] if "corpus" in getattr(dataset.records, "column_names", ()) else None
        if corpora is None:
            raise ValueError("CorpusLossCallback needs a mix with a 'corpus' column (trainers.pretrain)")
        self.dataset = dataset
        self.every_steps = int(every_steps)
        self.batch_size = int(batch_size)
        self.probes: dict[str, list[int]] = {}
        for i, name in enumerate(corpora):
            rows = self.probes.setdefault(name, [])
            if len(rows) < per_corpus:
                rows.append(i)
        self.trainer: Any = None  # set by the caller after the Trainer exists: trainer.log writes the history
        self.last: dict[str, float] = {}  # the latest losses logged

    def corpus_losses(self, model: Any) -> dict[str, float]:
        """Mean loss per probe record of each corpus (``loss/<corpus>``)."""
        records = {i: self.dataset.record(i, 0) for rows in self.probes.values() for i in rows}
        out: dict[str, float] = {}
        was_training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
            for name, rows in self.probes.items():
                total, n = 0.0, 0
                recs = [records[i] for i in rows]
                for idx, _enc, res in model_batches(model, self.dataset.processor, recs, range(len(recs)),
                                                    self.batch_size, device, with_loss=True,
                                                    context=torch.no_grad):
                    total += float(res.loss) * len(idx)
                    n += len(idx)
                out[f"loss/{name}"] = round(total / max(n, 1), 4)
        finally:
            model.train(was_training)
        return out

    def _log(self, state, model) -> None:
        losses = self.last = self.corpus_losses(model)
        logger.info("step %d, loss per corpus: %s", state.global_step,
                    ", ".join(f"{k[5:]} {v:.3f}" for k, v in losses.items()))
        if self.trainer is not None:
            self.trainer.log(losses)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None and state.global_step % self.every_steps == 0:
            self._log(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if model is not None and state.global_step % self.every_steps != 0:
            self._log(state, model)


__all__ = ["EXTRA_COLUMNS", "AugmentedRecordDataset", "CorpusLossCallback", "EpochCallback"]
