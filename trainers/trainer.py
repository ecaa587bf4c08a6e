"""``LDNetTrainer``: ``transformers.Trainer`` for LDNet (SPEC §7 recipe, §4.6 model-transfer distillation).

* Loss: the model's ``L_MR + L_LD`` (per-batch means) plus ``distill_weight * L_MT`` when the batch carries teacher
  scores (eq 19; :func:`distillation_loss`). The loss is a per-micro-batch mean, so the Trainer divides it by the
  number of gradient-accumulation steps (``model_accepts_loss_kwargs = False``, ``loss_is_scaled_for_ga = False``).
* Logs ``span_graph_loss``, ``label_drop_loss``, ``distill_loss`` (averaged over the micro-batches since the last
  log, all processes), the teacher coverage counters and the head learning rate.
* Optimiser: AdamW with two learning rates (encoder ``plm.*``: ``learning_rate``; everything else:
  ``head_learning_rate``) and weight decay except for embeddings / LayerNorm / biases (SPEC §7.1).
* ``evaluate`` / ``predict`` decode: raw unified records are encoded by the processor, run batch-wise, decoded with
  ``processor.post_process_extraction`` and scored with ``trainers.scoring`` (``eval_ent_f1``,
  ``eval_rel_strict_f1``, ... usable as ``metric_for_best_model``). Under several processes each rank decodes a
  slice of the records and the predictions are gathered, so every rank returns the same metrics.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate.utils import gather_object
from torch import nn
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PredictionOutput, SchedulerType, get_last_checkpoint, speed_metrics

from modeling_ldnet.schema import normalize_schema, schema_labels

from .collator import LDNetDataCollator
from .data import (
    FEATURE_COLUMNS,
    as_records,
    is_tokenized,
    task_fields,
    tokenize_dataset,
)
from .scoring import compute_uie_metrics, flatten
from .teacher import (
    TEACHER_HASH_MISMATCH,
    TEACHER_MISSING,
    TEACHER_OK,
    TeacherScoreStore,
)

logger = logging.getLogger(__name__)

#: SPEC §7.1: no weight decay for these parameter names (searched, case-insensitive).
DEFAULT_NO_DECAY_PATTERN = r"embedding|layernorm|layer_norm|\.bias$"


# ---------------------------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class LDNetTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with the LDNet recipe as defaults (SPEC §7.1); every value can be overridden.

    Changed defaults: ``learning_rate=2e-5`` (encoder), ``weight_decay=0.1``, ``adam_beta2=0.98``,
    ``adam_epsilon=1e-6``, ``lr_scheduler_type="cosine"``, ``warmup_steps=0.1`` (a ratio of the total steps),
    ``max_grad_norm=1.0``, ``seed=1227``. New: ``head_learning_rate``, ``encoder_prefix``, ``no_decay_pattern``,
    ``decode_threshold``, ``early_stopping_patience``, ``max_minutes``, ``calibrate_thresholds``.
    """

    learning_rate: float = field(default=2e-5, metadata={"help": "Encoder (plm.*) learning rate (SPEC §7.1: 2e-5)."})
    head_learning_rate: float | None = field(
        default=1e-4,
        metadata={"help": "Learning rate of every non-encoder parameter (heads, label drop, fusion). None: = learning_rate."},
    )
    encoder_prefix: str = field(default="plm.", metadata={"help": "Parameter-name prefix of the encoder."})
    no_decay_pattern: str = field(
        default=DEFAULT_NO_DECAY_PATTERN,
        metadata={"help": "Regex (case-insensitive search) of parameter names without weight decay."},
    )
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay (SPEC §7.1: 0.1)."})
    adam_beta2: float = field(default=0.98, metadata={"help": "AdamW beta2 (SPEC §7.1: 0.98)."})
    adam_epsilon: float = field(default=1e-6, metadata={"help": "AdamW epsilon (SPEC §7.1: 1e-6)."})
    lr_scheduler_type: SchedulerType | str = field(
        default="cosine", metadata={"help": "Scheduler (SPEC §7.1: cosine with linear warmup)."}
    )
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Warmup steps (int >= 1) or ratio of the total steps (float < 1; SPEC: 0.1)."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clip (SPEC §7.1: 1.0)."})
    seed: int = field(default=1227, metadata={"help": "Random seed (SPEC §7.1: 1227)."})
    decode_threshold: float | None = field(
        default=None, metadata={"help": "Decoding threshold on sigmoid(logits); None: the model config's."}
    )
    early_stopping_patience: int = field(
        default=3, metadata={"help": "Evaluations without improvement of metric_for_best_model before stopping."}
    )
    calibrate_thresholds: bool = field(
        default=False,
        metadata={"help": "After training, fit one decoding threshold per span-graph channel on the dev split "
                          "(trainers.calibration) and save them in the model (config.decode_channel_thresholds)."},
    )
    calibrate_label_thresholds: bool = field(
        default=False,
        metadata={"help": "After the channel calibration, fit one threshold per label name on the dev split "
                          "(config.decode_label_thresholds; labels that gain nothing keep the channels'). "
                          "Implies --calibrate_thresholds."},
    )
    derive_arg_types: bool = field(
        default=False,
        metadata={"help": "After training, store each relation's head / tail entity types seen in the training data "
                          "(joint records) as the model's default typed arguments (config.relation_arg_types): "
                          "the pipeline then drops relations whose arguments are not extracted entities of those "
                          "types (pipeline arg_types=False turns it off)."},
    )
    max_minutes: float | None = field(
        default=None,
        metadata={"help": "Wall-clock training budget: stop after N minutes (the step in progress finishes; "
                          "TimeLimitCallback), then save, evaluate and predict as usual. None: no budget."},
    )


# ---------------------------------------------------------------------------------------------------------------
# optimiser parameter groups
# ---------------------------------------------------------------------------------------------------------------


def ldnet_parameter_groups(
    model: nn.Module,
    encoder_lr: float,
    head_lr: float | None = None,
    weight_decay: float = 0.1,
    no_decay_pattern: str = DEFAULT_NO_DECAY_PATTERN,
    encoder_prefix: str = "plm.",
) -> list[dict]:
    """SPEC §7.1 parameter groups: ``{encoder, head} x {decay, no decay}`` (empty groups left out).

    Each group carries ``lr``, ``weight_decay``, a ``group_name`` and the ``param_names`` of its tensors (in order).
    Frozen parameters (``requires_grad=False``, e.g. the ViT) are left out.
    """
    head_lr = encoder_lr if head_lr is None else head_lr
    no_decay = re.compile(no_decay_pattern, re.IGNORECASE)
    groups: dict[tuple[bool, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        clean = name.removeprefix("module.")
        is_encoder = clean.startswith(encoder_prefix)
        decay = no_decay.search(clean) is None
        g = groups.setdefault(
            (is_encoder, decay),
            {
                "group_name": f"{'encoder' if is_encoder else 'head'}_{'decay' if decay else 'no_decay'}",
                "params": [],
                "param_names": [],
                "lr": encoder_lr if is_encoder else head_lr,
                "weight_decay": weight_decay if decay else 0.0,
            },
        )
        g["params"].append(p)
        g["param_names"].append(clean)
    order = [(True, True), (True, False), (False, True), (False, False)]
    return [groups[k] for k in order if k in groups]


# ---------------------------------------------------------------------------------------------------------------
# distillation term
# ---------------------------------------------------------------------------------------------------------------


def distillation_per_record(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    attention_mask: torch.Tensor,
    target: str = "logits",
) -> torch.Tensor:
    """Eq 19 per record: ``sum_c mean_{i,j < n} (p^T_cij - p^S_cij)^2`` over the valid ``n x n`` region -> ``[B]``.

    ``target="logits"`` compares the gated decision logits (reference code), ``"probs"`` their sigmoids (paper).
    """
    if target not in ("logits", "probs"):
        raise ValueError(f"distill target must be 'logits' or 'probs', got {target!r}")
    s = student_logits.float()
    t = teacher_logits.to(s.device).float()
    if target == "probs":
        s, t = torch.sigmoid(s), torch.sigmoid(t)
    tok = attention_mask.bool()
    valid = (tok[:, :, None] & tok[:, None, :])[:, None]  # [B, 1, L, L]
    sq = (s - t).pow(2).masked_fill(~valid, 0.0)
    cells = valid.sum(dim=(-1, -2)).clamp(min=1)  # [B, 1] = n_b^2
    return (sq.sum(dim=(-1, -2)) / cells).sum(dim=-1)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    attention_mask: torch.Tensor,
    teacher_mask: torch.Tensor | None = None,
    target: str = "logits",
) -> tuple[torch.Tensor, int]:
    """Mean of :func:`distillation_per_record` over the records that have a teacher; ``(loss, n_records)``.

    Returns a zero (connected to the graph) and ``0`` when no record has a teacher.
    """
    per = distillation_per_record(student_logits, teacher_logits, attention_mask, target)
    has = torch.ones_like(per, dtype=torch.bool) if teacher_mask is None else teacher_mask.to(per.device).bool()
    n = int(has.sum())
    if n == 0:
        return per.sum() * 0.0, 0
    return per[has].mean(), n


# ---------------------------------------------------------------------------------------------------------------
# callbacks
# ---------------------------------------------------------------------------------------------------------------


class TimeLimitCallback(TrainerCallback):
    """Stops training after ``max_seconds`` of wall time (decided on rank 0 and shared, so all ranks stop together)."""

    def __init__(self, max_seconds: float):
        self.max_seconds = float(max_seconds)
        self.start: float | None = None
        self.stopped_at_step: int | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        over = self.start is not None and time.time() - self.start > self.max_seconds
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([1.0 if over else 0.0])
            if torch.distributed.get_backend() == "nccl":
                flag = flag.cuda()
            torch.distributed.broadcast(flag, src=0)
            over = bool(flag.item() > 0)
        if over:
            control.should_training_stop = True
            control.should_save = True
            control.should_evaluate = args.eval_strategy != "no"
            self.stopped_at_step = state.global_step
        return control


def time_budget_scheduler(
    optimizer: torch.optim.Optimizer,
    max_seconds: float,
    kind: str = "linear",
    warmup_steps: int = 0,
    num_training_steps: int | None = None,
    warmup_fraction: float = 0.0,
    clock: Any = time.monotonic,
) -> torch.optim.lr_scheduler.LambdaLR:
    """An LR schedule that decays over a wall-clock budget (``--max_minutes``) instead of a step count.

    A time budget has no known step total, so a step-based decay either barely decays (it sees the epochs' steps)
    or must guess. Here progress is ``p = max(elapsed / max_seconds, step / num_training_steps)`` (whichever budget
    ends first; the clock starts when the scheduler is built, i.e. when training starts). The warm-up is
    ``warmup_steps`` steps, or (``warmup_fraction`` > 0, e.g. ``--warmup_steps 0.05``) the first ``warmup_fraction``
    of ``p``. After it the multiplier is ``1 - q`` (``linear``) or ``0.5 (1 + cos(pi q))`` (``cosine``) with ``q`` the
    progress past the warm-up (``q = p`` after a step warm-up, ``(p - f) / (1 - f)`` after a fractional one);
    ``constant`` / ``constant_with_warmup`` stay at 1.
    """
    if kind not in ("linear", "cosine", "constant", "constant_with_warmup"):
        raise ValueError(f"time_budget_scheduler: lr_scheduler_type {kind!r} has no time-based form "
                         "(use linear, cosine, constant or constant_with_warmup)")
    if max_seconds <= 0:
        raise ValueError(f"time_budget_scheduler: max_seconds must be > 0, got {max_seconds}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"time_budget_scheduler: warmup_fraction must be in [0, 1), got {warmup_fraction}")
    start = clock()
    total = num_training_steps if num_training_steps and num_training_steps > 0 else None

    def progress(step: int) -> float:
        p = (clock() - start) / max_seconds
        if total is not None:
            p = max(p, step / total)
        return min(max(p, 0.0), 1.0)

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return float(step) / float(warmup_steps)
        p = progress(step) if warmup_fraction > 0 or kind in ("linear", "cosine") else 0.0
        if warmup_fraction > 0:
            if p < warmup_fraction:
                return p / warmup_fraction
            p = (p - warmup_fraction) / (1.0 - warmup_fraction)
        if kind in ("constant", "constant_with_warmup"):
            return 1.0
        return 1.0 - p if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * p))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def budget_scheduler_for(
    args: TrainingArguments, optimizer: torch.optim.Optimizer, num_training_steps: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The :func:`time_budget_scheduler` of ``args`` (``max_minutes`` with a linear/cosine ``lr_scheduler_type``;
    a fractional ``warmup_steps`` is a fraction of the budget, not of the epochs' steps), or None without one.
    Any ``Trainer`` subclass can return it from ``create_scheduler``."""
    minutes = getattr(args, "max_minutes", None)
    kind = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    if not minutes or kind not in ("linear", "cosine"):
        return None
    warmup = float(args.warmup_steps or 0)
    fraction = warmup if 0 < warmup < 1 else 0.0
    return time_budget_scheduler(
        optimizer, float(minutes) * 60.0, kind, warmup_steps=0 if fraction else int(warmup),
        num_training_steps=num_training_steps if args.max_steps > 0 else None, warmup_fraction=fraction,
    )


def train_and_save(trainer: Trainer, time_cb: TimeLimitCallback | None = None) -> dict[str, Any]:
    """``trainer.train()`` (``--resume_from_checkpoint auto|last|latest`` = the output folder's last checkpoint),
    ``save_model()``, and the train metrics (plus ``stopped_by_time_limit_at_step`` when ``time_cb`` stopped it)."""
    checkpoint = trainer.args.resume_from_checkpoint
    if checkpoint in ("auto", "last", "latest"):  # a first run (no output folder yet) starts from scratch
        out = trainer.args.output_dir
        checkpoint = get_last_checkpoint(out) if out and os.path.isdir(out) else None
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    metrics = dict(result.metrics)
    if time_cb is not None and time_cb.stopped_at_step is not None:
        metrics["stopped_by_time_limit_at_step"] = time_cb.stopped_at_step
    return metrics


def model_batches(
    model: nn.Module,
    processor: Any,
    records: Sequence[dict],
    indices: Sequence[int],
    batch_size: int,
    device: Any,
    with_loss: bool = False,
    context: Any = contextlib.nullcontext,
):
    """Encode ``records[indices]`` in batches, longest first (less padding), and run ``model`` on each (under
    ``context()``): yields ``(record indices, encoding, model output)``. With ``with_loss`` the gold targets go in."""
    order = sorted(indices, key=lambda i: len(records[i]["text"]) + len(records[i].get("bg") or ""), reverse=True)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = processor([records[i] for i in idx], return_tensors="pt")
        kwargs = {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}
        if "pixel_values" in enc:
            kwargs["pixel_values"] = enc["pixel_values"].to(device)
            kwargs["image_mask"] = enc["image_mask"].to(device)
        if with_loss:
            kwargs["span_graph_links"] = enc["span_graph_links"].to(device)
            kwargs["label_drop_targets"] = enc["label_drop_targets"].to(device)
        with context():
            out = model(**kwargs)
        yield idx, enc, out


def time_limit_callback(args: TrainingArguments) -> TimeLimitCallback | None:
    """The :class:`TimeLimitCallback` of ``args.max_minutes`` (``--max_minutes``), or None without a budget."""
    minutes = getattr(args, "max_minutes", None)
    if minutes is None:
        return None
    if minutes < 0:
        raise ValueError(f"--max_minutes must be >= 0, got {minutes}")
    return TimeLimitCallback(float(minutes) * 60.0)


# ---------------------------------------------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------------------------------------------


# stats slots accumulated between two training logs
_SG, _SG_N, _LD, _LD_N, _MT, _MT_N, _T_OK, _T_MISS, _T_BAD = range(9)


def training_labels(dataset: Any) -> dict[str, list[str]] | None:
    """``{task: [labels]}``: the union of the schema labels of raw training records (negatives shown in a schema
    included; first-seen order). ``None`` when the dataset holds no schemas (already tokenized features). An
    :class:`~trainers.augmented.AugmentedRecordDataset` is read through its ``records`` (its augmentation draws
    negatives from these same schemas)."""
    if dataset is None:
        return None
    if is_tokenized(dataset):
        dataset = getattr(dataset, "records", None)
        if dataset is None or is_tokenized(dataset):
            return None
    names = getattr(dataset, "column_names", None)
    if names is not None:
        if "schema" not in names:
            return None
        rows = ({"schema": s, "descriptions": None} for s in dataset["schema"])  # one column, not whole rows
    else:
        rows = (r for r in dataset if isinstance(r, dict))
    out: dict[str, dict[str, None]] = {}
    for r in rows:
        schema, _ = normalize_schema(r.get("schema"), r.get("id"))
        for task, labels in schema_labels(schema).items():
            out.setdefault(task, {}).update(dict.fromkeys(labels))
    return {task: list(labels) for task, labels in out.items()}


def merge_labels(old: dict[str, list[str]] | None, new: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per-task union of two ``trained_labels`` maps (``old`` first)."""
    out = {t: list(v) for t, v in (old or {}).items()}
    for task, labels in new.items():
        have = out.setdefault(task, [])
        seen = set(have)
        have.extend(x for x in labels if x not in seen)
    return out


class LDNetTrainer(Trainer):
    """``Trainer`` for :class:`~modeling_ldnet.LDNetModel`.

    Args (beyond ``transformers.Trainer``'s):
        processing_class: the :class:`~modeling_ldnet.LDNetProcessor` (also accepted as ``processor=``). It encodes
            raw records, pads batches, decodes predictions and is saved with every checkpoint.
        train_dataset: tokenized features (:func:`trainers.data.tokenize_dataset`) or raw unified records (a
            ``datasets.Dataset`` or list of dicts, tokenized here).
        eval_dataset: raw unified records (``Dataset``, list of dicts, or a dict name -> records).
        teacher_store: a :class:`~trainers.teacher.TeacherScoreStore` for model-transfer learning; the default
            collator then attaches ``teacher_logits`` / ``teacher_mask`` / ``teacher_status``.
        trained_labels: the labels of the training schemas when ``train_dataset`` is already tokenized
            (``training_labels(records)``); read from raw records (or an augmented dataset's) otherwise.

    Training records the labels of its training schemas (:func:`training_labels`) into
    ``model.config.trained_labels`` (union with what the config already held) when ``train()`` starts, so every
    checkpoint and the final folder record them; ``pipeline("universal-ie")`` warns on a schema label outside them.

    Attributes:
        trained_labels: the labels of this trainer's training schemas (``None``: pre-tokenized features).
        teacher_counts: ``Counter`` (``ok``, ``missing``, ``hash_mismatch``) of training features seen so far
            (all processes, updated at every log).
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-micro-batch mean

    def __init__(
        self,
        model: nn.Module | None = None,
        args: TrainingArguments | None = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        *,
        processor: Any = None,
        teacher_store: TeacherScoreStore | str | None = None,
        trained_labels: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ):
        processor = processor if processor is not None else processing_class
        if args is None:
            args = LDNetTrainingArguments(output_dir="ldnet_output")
        if isinstance(teacher_store, str):
            teacher_store = TeacherScoreStore(teacher_store)
        if data_collator is None and processor is not None:
            data_collator = LDNetDataCollator(processor, teacher_store=teacher_store)
        # before tokenizing: features hold no schemas (a caller that tokenized them itself passes trained_labels=)
        self.trained_labels = trained_labels if trained_labels is not None else training_labels(train_dataset)
        if train_dataset is not None and not is_tokenized(train_dataset):
            if processor is None:
                raise ValueError("LDNetTrainer: raw training records need a processor (processing_class=)")
            train_dataset = tokenize_dataset(processor, train_dataset)
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processor,
            **kwargs,
        )
        # our forward takes **kwargs, which would make Trainer believe it normalises by num_items_in_batch
        self.model_accepts_loss_kwargs = False
        # --max_minutes: the stop callback comes with the arguments (unless the caller passed its own)
        self.time_limit: TimeLimitCallback | None = next(
            (cb for cb in self.callback_handler.callbacks if isinstance(cb, TimeLimitCallback)), None)
        if self.time_limit is None:
            self.time_limit = time_limit_callback(self.args)
            if self.time_limit is not None:
                self.add_callback(self.time_limit)
        self.processor = processor
        self.teacher_store = teacher_store
        if teacher_store is not None:
            stored_mode = teacher_store.manifest.get("label_drop_mode")
            mode = getattr(self._unwrapped().config, "label_drop_mode", None)
            if stored_mode is not None and mode is not None and stored_mode != mode:
                logger.warning(
                    "LDNetTrainer: teacher scores were made with label_drop_mode=%r, the student uses %r; the "
                    "distillation targets are the teacher's decision logits either way",
                    stored_mode,
                    mode,
                )
        self.teacher_counts: Counter = Counter()
        self._ldnet_stats: torch.Tensor | None = None
        self._warned_teacher = False

    def train(self, *args: Any, **kwargs: Any):
        """``Trainer.train``, after recording the training schemas' labels in ``config.trained_labels``."""
        config = getattr(self._unwrapped(), "config", None)
        if self.trained_labels is not None and config is not None:
            config.trained_labels = merge_labels(getattr(config, "trained_labels", None), self.trained_labels)
        return super().train(*args, **kwargs)

    # -- columns ------------------------------------------------------------------------------------------------
    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        for col in FEATURE_COLUMNS:
            if col not in self._signature_columns:
                self._signature_columns.append(col)

    # -- loss -----------------------------------------------------------------------------------------------------
    def _unwrapped(self, model: nn.Module | None = None) -> nn.Module:
        return self.accelerator.unwrap_model(model if model is not None else self.model)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """``L_MR + L_LD (+ distill_weight * L_MT)``, a per-micro-batch mean (``num_items_in_batch`` is unused:
        the Trainer divides the returned loss by the number of accumulation steps)."""
        inputs = dict(inputs)
        teacher_logits = inputs.pop("teacher_logits", None)
        teacher_mask = inputs.pop("teacher_mask", None)
        teacher_status = inputs.pop("teacher_status", None)
        outputs = model(**inputs)
        loss = outputs.loss
        if loss is None:
            raise ValueError("LDNetTrainer: the model returned no loss (batch without gold links / label-drop targets)")
        config = self._unwrapped(model).config
        distill = None
        n_teacher = 0
        if teacher_logits is not None and config.distill_weight > 0:
            distill, n_teacher = distillation_loss(
                outputs.logits, teacher_logits, inputs["attention_mask"], teacher_mask, config.distill_target
            )
            if n_teacher:
                loss = loss + config.distill_weight * distill
        if model.training:
            self._accumulate(outputs, distill, n_teacher, teacher_status, loss.device)
        return (loss, outputs) if return_outputs else loss

    def _accumulate(self, outputs, distill, n_teacher, teacher_status, device) -> None:
        if self._ldnet_stats is None or self._ldnet_stats.device != device:
            self._ldnet_stats = torch.zeros(9, dtype=torch.float64, device=device)
        s = self._ldnet_stats
        if outputs.span_graph_loss is not None:
            s[_SG] += outputs.span_graph_loss.detach().double()
            s[_SG_N] += 1
        if outputs.label_drop_loss is not None:
            s[_LD] += outputs.label_drop_loss.detach().double()
            s[_LD_N] += 1
        if distill is not None and n_teacher:
            s[_MT] += distill.detach().double()
            s[_MT_N] += 1
        if teacher_status is not None:
            st = teacher_status.to(device)
            s[_T_OK] += (st == TEACHER_OK).sum()
            s[_T_MISS] += (st == TEACHER_MISSING).sum()
            s[_T_BAD] += (st == TEACHER_HASH_MISMATCH).sum()

    # -- logging --------------------------------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._ldnet_stats is not None:
            s = self._ldnet_stats.clone()
            if self.args.world_size > 1:
                s = self.accelerator.reduce(s, reduction="sum")
            v = s.tolist()
            if v[_SG_N]:
                logs["span_graph_loss"] = v[_SG] / v[_SG_N]
            if v[_LD_N]:
                logs["label_drop_loss"] = v[_LD] / v[_LD_N]
            if v[_MT_N]:
                logs["distill_loss"] = v[_MT] / v[_MT_N]
            if v[_T_OK] + v[_T_MISS] + v[_T_BAD] > 0:
                logs["distill_features"] = v[_T_OK]
                logs["distill_missing"] = v[_T_MISS]
                logs["distill_hash_mismatch"] = v[_T_BAD]
                self.teacher_counts.update(
                    {"ok": int(v[_T_OK]), "missing": int(v[_T_MISS]), "hash_mismatch": int(v[_T_BAD])}
                )
                if (v[_T_MISS] or v[_T_BAD]) and not self._warned_teacher:
                    logger.warning(
                        "LDNetTrainer: %d training features had no teacher entry and %d a different input hash; "
                        "they get no distillation term (counted in `distill_missing` / `distill_hash_mismatch`)",
                        int(v[_T_MISS]),
                        int(v[_T_BAD]),
                    )
                    self._warned_teacher = True
            self._ldnet_stats.zero_()
            if self.optimizer is not None:
                for g in self.optimizer.param_groups:
                    if str(g.get("group_name", "")).startswith("head"):
                        logs["learning_rate_head"] = g["lr"]
                        break
        super().log(logs, start_time)

    # -- optimiser ------------------------------------------------------------------------------------------------
    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW (``args.optim``) over :func:`ldnet_parameter_groups` (SPEC §7.1)."""
        opt_model = self.model if model is None else model
        if self.optimizer is None:
            args = self.args
            groups = ldnet_parameter_groups(
                opt_model,
                encoder_lr=args.learning_rate,
                head_lr=getattr(args, "head_learning_rate", None),
                weight_decay=args.weight_decay,
                no_decay_pattern=getattr(args, "no_decay_pattern", DEFAULT_NO_DECAY_PATTERN),
                encoder_prefix=getattr(args, "encoder_prefix", "plm."),
            )
            if self.optimizer_cls_and_kwargs is not None:
                optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
            else:
                optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(args, opt_model)
            optimizer_kwargs = {k: v for k, v in optimizer_kwargs.items() if k not in ("params", "model")}
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):
        """With ``--max_minutes``, a linear/cosine schedule decays over the time budget
        (:func:`budget_scheduler_for`); otherwise the Trainer's."""
        if self.lr_scheduler is None:
            sched = budget_scheduler_for(self.args, self.optimizer if optimizer is None else optimizer,
                                         num_training_steps)
            if sched is not None:
                self.lr_scheduler = sched
                self._created_lr_scheduler = True
                return sched
        return super().create_scheduler(num_training_steps, optimizer)

    # -- extraction / evaluation ----------------------------------------------------------------------------------
    def _decode_threshold(self) -> float | list[float] | None:
        thr = getattr(self.args, "decode_threshold", None)
        if thr is None:
            cfg = self._unwrapped().config
            thr = getattr(cfg, "decode_channel_thresholds", None) or getattr(cfg, "decode_threshold", None)
        return thr

    @torch.no_grad()
    def _extract_local(self, records: Sequence[dict], indices: Sequence[int], batch_size: int, with_loss: bool):
        model = self._unwrapped()
        was_training = model.training
        model.eval()
        device = self.args.device
        threshold = self._decode_threshold()
        results: list[tuple[int, dict]] = []
        stats = {"loss": 0.0, "span_graph_loss": 0.0, "label_drop_loss": 0.0, "features": 0, "budget_exhausted": 0}
        for idx, enc, out in model_batches(model, self.processor, records, indices, batch_size, device, with_loss,
                                           self.compute_loss_context_manager):
            nf = int(enc["input_ids"].shape[0])
            if out.loss is not None:
                stats["loss"] += float(out.loss) * nf
                stats["span_graph_loss"] += float(out.span_graph_loss) * nf if out.span_graph_loss is not None else 0.0
                stats["label_drop_loss"] += float(out.label_drop_loss) * nf if out.label_drop_loss is not None else 0.0
            stats["features"] += nf
            # the model's own decode-time span hygiene, as the pipeline applies it: dev/test F1 = what users get
            hygiene = getattr(getattr(model, "config", None), "decode_span_hygiene", None)
            answers = self.processor.post_process_extraction(out.logits.float(), enc, threshold=threshold,
                                                             span_hygiene=hygiene)
            stats["budget_exhausted"] += int(getattr(self.processor, "last_decode_budget_exhausted", 0) or 0)
            results.extend(zip(idx, answers))
        model.train(was_training)
        return results, stats

    def _extract(self, records: Any, batch_size: int | None = None, with_loss: bool = False):
        records = as_records(records)
        bs = batch_size or self.args.per_device_eval_batch_size
        world, rank = self.args.world_size, self.args.process_index
        indices = list(range(rank, len(records), world)) if world > 1 else list(range(len(records)))
        local, stats = self._extract_local(records, indices, bs, with_loss)
        if world > 1:
            gathered = gather_object([(local, stats)])
            local = [x for part, _ in gathered for x in part]
            total = Counter()
            for _, st in gathered:
                total.update(st)
            stats = dict(total)
        preds: list[dict | None] = [None] * len(records)
        for i, ans in local:
            preds[i] = ans
        return records, preds, stats

    def extract(self, records: Any, batch_size: int | None = None) -> list[dict]:
        """Decode unified records (``ans`` ignored): one unified ``ans`` dict per record, in input order.

        Must be called on every process when several are running (the work is split and gathered).
        """
        return self._extract(records, batch_size=batch_size)[1]

    def _score(self, records: list[dict], preds: list[dict], stats: dict, prefix: str) -> dict[str, float]:
        refs = [r.get("ans") or {} for r in records]
        metrics: dict[str, float] = {}
        if stats.get("features") and stats.get("loss") is not None and any(refs):
            n = stats["features"]
            metrics["loss"] = stats["loss"] / n
            metrics["span_graph_loss"] = stats["span_graph_loss"] / n
            metrics["label_drop_loss"] = stats["label_drop_loss"] / n
        metrics.update(flatten(compute_uie_metrics(preds, refs, tasks=task_fields(records))))
        metrics["decode_budget_exhausted"] = float(stats.get("budget_exhausted", 0))
        return {f"{prefix}_{k}": float(v) for k, v in metrics.items()}

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Decode the evaluation records and return ``{prefix}_loss`` and the UIE metrics (``{prefix}_ent_f1``...)."""
        override = eval_dataset is not None
        eval_dataset = eval_dataset if override else self.eval_dataset
        if eval_dataset is None:
            raise ValueError("LDNetTrainer.evaluate: no eval_dataset")
        if isinstance(eval_dataset, dict):
            metrics: dict[str, float] = {}
            for name, ds in eval_dataset.items():
                metrics.update(self.evaluate(ds, ignore_keys, metric_key_prefix=f"{metric_key_prefix}_{name}"))
            return metrics
        start = time.time()
        records, preds, stats = self._extract(eval_dataset, with_loss=True)
        metrics = self._score(records, preds, stats, metric_key_prefix)
        metrics.update(speed_metrics(metric_key_prefix, start, num_samples=len(records)))
        self.last_predictions = preds
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def predict(self, test_dataset: Any, ignore_keys: list[str] | None = None, metric_key_prefix: str = "test"):
        """Decode ``test_dataset``: ``PredictionOutput(predictions=[ans per record], label_ids=None, metrics)``.

        Metrics are computed when some record carries gold answers.
        """
        start = time.time()
        records, preds, stats = self._extract(test_dataset, with_loss=True)
        if any(r.get("ans") for r in records):
            metrics = self._score(records, preds, stats, metric_key_prefix)
        else:
            metrics = {}
        metrics.update(speed_metrics(metric_key_prefix, start, num_samples=len(records)))
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, metrics)
        return PredictionOutput(predictions=preds, label_ids=None, metrics=metrics)


def default_metric_for(records: Sequence[dict]) -> str:
    """Model-selection metric (SPEC §6 ``best_metric_field``) for the tasks of ``records``."""
    tasks = set(task_fields(records))
    for task, metric in (
        ("event", "event_arg_cls_f1"),
        ("hyper_rel", "hyper_rel_f1"),
        ("rel", "rel_strict_f1"),
        ("discontinuous_ent", "discontinuous_ent_f1"),
        ("ent", "ent_f1"),
        ("cls", "cls_acc"),
        ("span", "span_f1"),
    ):
        if task in tasks:
            return metric
    return "general_f1"


__all__ = [
    "DEFAULT_NO_DECAY_PATTERN",
    "LDNetTrainer",
    "LDNetTrainingArguments",
    "TimeLimitCallback",
    "default_metric_for",
    "distillation_loss",
    "model_batches",
    "distillation_per_record",
    "ldnet_parameter_groups",
]

