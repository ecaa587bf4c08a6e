"""Decode-threshold calibration (issue #14): fit one threshold per span-graph channel on dev data.

The model runs once over the records; the cached logits are then decoded under candidate thresholds (coordinate
ascent over the channels on a grid), scoring each with the same UIE metrics as evaluation. The winner is stored in
``config.decode_channel_thresholds``, which the processor, the trainer and ``pipeline("universal-ie")`` read.

Per-label thresholds are not fitted: a label is an input token (its index changes with the schema), so a per-label
value would have to travel with every schema; per channel is what a saved model can carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

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


def decode_cached(processor: Any, cached: Sequence[tuple[list, dict, torch.Tensor]], n: int, threshold: Any) -> list[dict]:
    preds: list[dict] = [{} for _ in range(n)]
    for idx, enc, logits in cached:
        for i, ans in zip(idx, processor.post_process_extraction(logits, enc, threshold=threshold)):
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


__all__ = ["DEFAULT_GRID", "CalibrationResult", "cache_logits", "calibrate_thresholds", "decode_cached"]
