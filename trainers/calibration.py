"""Decode-threshold calibration (issue #14): fit one threshold per span-graph channel on dev data.

The model runs once over the records; the cached logits are then decoded under candidate thresholds (coordinate
ascent over the channels on a grid), scoring each with the same UIE metrics as evaluation. The winner is stored in
``config.decode_channel_thresholds``, which the processor, the trainer and ``pipeline("universal-ie")`` read.

Per label (:func:`calibrate_label_thresholds`, issue #21): after the channels, one threshold per label **name**
(``config.decode_label_thresholds``, ``{task: {label: t}}``): a label is an input token whose position changes with
the schema, so the table is keyed by name and the pipeline maps it onto any schema order at decode time
(``answers_ldnet.apply_label_thresholds``). Labels that gain nothing on dev keep the channel thresholds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from modeling_ldnet.answers_ldnet import LABEL_KEYS, apply_label_thresholds

from .data import as_records, task_fields
from .scoring import compute_uie_metrics, flatten
from .trainer import default_metric_for, model_batches

#: Candidate thresholds per channel.
DEFAULT_GRID: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class CalibrationResult:
    """``thresholds`` per channel, the objective at the uncalibrated threshold and after calibration."""

    thresholds: list[float]
    metric: str
    before: float
    after: float
    base_threshold: float
    history: list[tuple[list[float], float]] = field(default_factory=list)


@torch.no_grad()
def cache_logits(model: Any, processor: Any, records: Sequence[dict], batch_size: int = 16) -> list[tuple[list, dict, torch.Tensor]]:
    """Run ``model`` once over ``records``; return ``(record indices, encoding, logits)`` per batch."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = [
        (idx, {"meta": enc["meta"]}, o.logits.float().cpu())
        for idx, enc, o in model_batches(model, processor, records, range(len(records)), batch_size, device)
    ]
    model.train(was_training)
    return out


def decode_cached(processor: Any, cached: Sequence[tuple[list, dict, torch.Tensor]], n: int, threshold: Any,
                  return_scores: bool = False) -> list[dict]:
    preds: list[dict] = [{} for _ in range(n)]
    for idx, enc, logits in cached:
        for i, ans in zip(idx, processor.post_process_extraction(logits, enc, threshold=threshold,
                                                                 return_scores=return_scores)):
            preds[i] = ans
    return preds


def calibrate_thresholds(
    model: Any,
    processor: Any,
    records: Any,
    grid: Sequence[float] = DEFAULT_GRID,
    rounds: int = 2,
    metric: str | None = None,
    batch_size: int = 16,
    apply: bool = True,
) -> CalibrationResult:
    """Fit ``config.decode_channel_thresholds`` on ``records`` (gold ``ans``) by coordinate ascent on ``grid``.

    Starts from the model's current threshold on every channel; each round tries every grid value on one channel at
    a time, keeping the best (ties keep the current value, so the result never scores below the start on
    ``records``). ``apply=True`` stores the result in ``model.config`` and ``processor.threshold``.
    """
    records = as_records(records)
    if not records or not any(r.get("ans") for r in records):
        raise ValueError("calibrate_thresholds: `records` need gold `ans` (e.g. the dev split)")
    metric = metric or default_metric_for(records)  # the model-selection metric of the records' tasks
    tasks = task_fields(records)
    refs = [r.get("ans") or {} for r in records]
    cached = cache_logits(model, processor, records, batch_size)
    cfg = model.config
    base = float(cfg.decode_threshold)
    start = list(cfg.decode_channel_thresholds or [base] * cfg.num_channels)

    def score(th: Sequence[float]) -> float:
        preds = decode_cached(processor, cached, len(records), tuple(th))
        m = flatten(compute_uie_metrics(preds, refs, tasks=tasks))
        if metric not in m:
            raise KeyError(f"calibrate_thresholds: metric {metric!r} not among {sorted(m)}")
        return float(m[metric])

    before = score([base] * cfg.num_channels)
    best, best_score = list(start), score(start)
    history = [(list(best), best_score)]
    for _ in range(rounds):
        changed = False
        for c in range(cfg.num_channels):
            for t in grid:
                if t == best[c]:
                    continue
                cand = list(best)
                cand[c] = float(t)
                s = score(cand)
                history.append((cand, s))
                if s > best_score:
                    best, best_score, changed = cand, s, True
        if not changed:
            break
    if apply:
        cfg.decode_channel_thresholds = list(best)
        processor.threshold = tuple(best)
    return CalibrationResult(list(best), metric, before, best_score, base, history)


@dataclass
class LabelCalibrationResult:
    """``thresholds`` per task and label name (only the labels that gained); per task, the metric it was fitted on
    and its dev value before / after."""

    thresholds: dict[str, dict[str, float]]
    metric: dict[str, str]
    before: dict[str, float]
    after: dict[str, float]


#: the metric each answer field's label thresholds are fitted on (the field's own F1; SPEC §6)
LABEL_TASK_METRICS: dict[str, str] = {"ent": "ent_f1", "discontinuous_ent": "discontinuous_ent_f1",
                                      "rel": "rel_strict_f1", "hyper_rel": "hyper_rel_f1", "event": "event_arg_cls_f1"}


def calibrate_label_thresholds(
    model: Any,
    processor: Any,
    records: Any,
    grid: Sequence[float] = DEFAULT_GRID,
    rounds: int = 2,
    batch_size: int = 16,
    apply: bool = True,
) -> LabelCalibrationResult:
    """Fit ``config.decode_label_thresholds`` on ``records`` (gold ``ans``): per answer field, coordinate ascent over
    the label names of the records' schemas on that field's own F1 (:data:`LABEL_TASK_METRICS`; a field's items are
    filtered independently of the others'), each label tried at every ``grid`` value on top of the processor's
    current (channel) thresholds, scored exactly as the pipeline applies them
    (:func:`~modeling_ldnet.answers_ldnet.apply_label_thresholds` on the same logits decoded at the current thresholds
    and at the lowest grid value). Only strict gains are kept, so no field scores below its start on ``records``;
    ``apply`` stores the table in ``model.config``."""
    records = as_records(records)
    if not records or not any(r.get("ans") for r in records):
        raise ValueError("calibrate_label_thresholds: `records` need gold `ans` (e.g. the dev split)")
    tasks = task_fields(records)
    refs = [r.get("ans") or {} for r in records]
    cached = cache_logits(model, processor, records, batch_size)
    base = processor.threshold
    floor = min(base) if isinstance(base, (list, tuple)) else float(base)
    normal = decode_cached(processor, cached, len(records), base, return_scores=True)
    low = decode_cached(processor, cached, len(records), min(min(grid), floor), return_scores=True)
    labels: dict[str, set[str]] = {}
    for r in records:  # every label name of the records' schemas (event / hyper_rel: their type names)
        schema = r.get("schema") or {}
        for task in LABEL_KEYS:
            if schema.get(task):
                labels.setdefault(task, set()).update(schema[task])

    def score(table: dict[str, dict[str, float]], metric: str) -> float:
        preds = [apply_label_thresholds(a, b, table, floor) for a, b in zip(normal, low)]
        return float(flatten(compute_uie_metrics(preds, refs, tasks=tasks)).get(metric, 0.0))

    table: dict[str, dict[str, float]] = {}
    metrics, before, after = {}, {}, {}
    for task in LABEL_KEYS:
        if task not in labels or task not in tasks:
            continue
        metrics[task] = metric = LABEL_TASK_METRICS[task]
        before[task] = best = score(table, metric)
        for _ in range(rounds):
            changed = False
            for lab in sorted(labels[task]):
                for t in grid:
                    if table.get(task, {}).get(lab) == t:
                        continue
                    cand = {k: dict(v) for k, v in table.items()}
                    cand.setdefault(task, {})[lab] = float(t)
                    s = score(cand, metric)
                    if s > best:
                        table, best, changed = cand, s, True
            if not changed:
                break
        after[task] = best
    if apply:
        model.config.decode_label_thresholds = table or None
    return LabelCalibrationResult(table, metrics, before, after)


__all__ = ["DEFAULT_GRID", "CalibrationResult", "LabelCalibrationResult", "cache_logits", "calibrate_label_thresholds",
           "calibrate_thresholds", "decode_cached"]
