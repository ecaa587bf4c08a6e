"""Public metric helpers for ldnet (``trainers.scoring``; also importable as ``trainers.metrics``).

The metric itself is the ``evaluate`` module in ``trainers/metrics/ldnet_uie/``; this module runs it.

* :func:`load_uie_metric` — the ``ldnet_uie`` ``evaluate`` module, loaded from the local script
  ``trainers/metrics/ldnet_uie/ldnet_uie.py`` (works offline; nothing is fetched from the Hub).
* :func:`compute_uie_metrics` — python ``ans`` dicts in, nested result dict out (serialises the dicts to JSON and
  runs the ``evaluate`` module, so both paths give identical numbers).
* :func:`flatten` — nested results -> flat ``{"ent_f1": .., "rel_strict_f1": ..}`` floats for ``Trainer`` logs.
* :func:`label_drop_accuracy` — the paper's label-drop accuracy diagnostic (SPEC §6, last paragraph).

Metric definitions: ``trainers/metrics/ldnet_uie/README.md``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

METRIC_DIR = Path(__file__).resolve().parent / "metrics" / "ldnet_uie"
METRIC_SCRIPT = METRIC_DIR / "ldnet_uie.py"
_IMPL_NAME = "_ldnet_uie_metric_impl"

_metric_cache: dict = {}


def metric_path() -> str:
    """Directory of the ``ldnet_uie`` metric script (pass it to ``evaluate.load``)."""
    return str(METRIC_DIR)


def _impl():
    """The metric script imported as a plain module (its pure-python functions: ``compute_uie``, ``flatten``...)."""
    mod = sys.modules.get(_IMPL_NAME)
    if mod is None:
        spec = importlib.util.spec_from_file_location(_IMPL_NAME, METRIC_SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[_IMPL_NAME] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(_IMPL_NAME, None)
            raise
    return mod


def load_uie_metric(**kwargs: Any):
    """``evaluate.load(<repo>/trainers/metrics/ldnet_uie, **kwargs)`` — an ``evaluate.EvaluationModule``.

    Extra keyword arguments go to ``evaluate.load`` (e.g. ``keep_in_memory=True``, ``experiment_id=...``).
    """
    import evaluate  # noqa: PLC0415 - optional: only the `evaluate` path needs it (the trainer scores without it)

    return evaluate.load(str(METRIC_DIR), **kwargs)


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy / torch scalars and arrays
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"cannot serialise {type(o).__name__} in an `ans` dict")


def _to_json(obj: Any) -> str:
    if isinstance(obj, str):
        return obj
    if obj is None:
        return "{}"
    return json.dumps(obj, ensure_ascii=False, default=_json_default)


def compute_uie_metrics(
    predictions: Sequence[Any],
    references: Sequence[Any],
    tasks: Iterable[str] | None = None,
    *,
    event_trigger_aware: bool = False,
    metric: Any = None,
) -> dict:
    """Nested UIE metrics for lists (one item per record) of unified ``ans`` dicts (or their JSON strings).

    ``tasks`` forces tasks to be reported even if no record has that field (see the metric card).
    ``metric`` lets a caller reuse an ``evaluate`` module from :func:`load_uie_metric`; by default one in-memory
    instance is cached per process.
    """
    preds = [_to_json(p) for p in predictions]
    refs = [_to_json(r) for r in references]
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references")
    if tasks is not None:
        tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not preds:  # evaluate refuses empty inputs; the pure function handles them
        return _impl().compute_uie([], [], tasks=tasks, event_trigger_aware=event_trigger_aware)
    if metric is None:
        metric = _metric_cache.get("default")
        if metric is None:
            metric = _metric_cache["default"] = load_uie_metric(keep_in_memory=True)
    return metric.compute(predictions=preds, references=refs, tasks=tasks, event_trigger_aware=event_trigger_aware)


def flatten(results: dict, include_per_type: bool = False, sep: str = "_") -> dict:
    """Nested results -> flat ``{name: float}`` (e.g. ``ent_f1``, ``rel_strict_f1``, ``event_arg_cls_f1``,
    ``cls_acc``, ``span_squad_f1``, ``general_f1``). Counts become floats; per-type entries only on request."""
    return _impl().flatten(results, include_per_type=include_per_type, sep=sep)


def label_drop_accuracy(label_drop_probs, span_graph_labels, attention_mask, threshold: float = 0.5) -> float:
    """Label-drop accuracy (paper Table 6; SPEC §6 last paragraph) — a diagnostic, not a selection metric.

    Args:
        label_drop_probs: ``[B, L]`` sigmoid outputs ``lhat`` of the label-drop head.
        span_graph_labels: ``[B, C, L, L]`` gold span graph ``G`` in {0, 1} (C = 3 channels).
        attention_mask: ``[B, L]``, 1 for real tokens, 0 for padding.
        threshold: ``lhat > threshold`` is a positive column (0.5 in the paper).

    The prediction for cell ``(i, j)`` of every channel is ``lhat[j] > threshold`` (the vector is broadcast along
    rows, i.e. column ``j`` is predicted positive for every row ``i``). A cell is valid iff both its row and
    column tokens are unpadded. Per channel, accuracy = equal valid cells / valid cells; the result is the mean over
    channels (the valid-cell count is the same for every channel, so this equals the pooled accuracy). Returns 0.0
    when there is no valid cell. Inputs may be torch tensors or anything ``torch.as_tensor`` accepts.
    """
    probs = torch.as_tensor(label_drop_probs).detach()
    graph = torch.as_tensor(span_graph_labels).detach()
    mask = torch.as_tensor(attention_mask).detach().bool()
    if graph.dim() == 3:  # [B, L, L] -> a single channel
        graph = graph.unsqueeze(1)
    if probs.dim() != 2 or graph.dim() != 4 or mask.dim() != 2:
        raise ValueError(
            f"expected probs [B,L], graph [B,C,L,L], mask [B,L]; got {tuple(probs.shape)}, "
            f"{tuple(graph.shape)}, {tuple(mask.shape)}"
        )
    b, _, l1, l2 = graph.shape
    if probs.shape != (b, l2) or mask.shape != (b, l1) or l1 != l2:
        raise ValueError(
            f"shape mismatch: probs {tuple(probs.shape)}, graph {tuple(graph.shape)}, mask {tuple(mask.shape)}"
        )
    pred = (probs.float() > threshold)[:, None, None, :]  # [B,1,1,L] broadcast over channels and rows
    gold = graph > 0.5
    valid = (mask[:, :, None] & mask[:, None, :])[:, None]  # [B,1,L,L]
    n_valid = int(valid.sum())
    if n_valid == 0:
        return 0.0
    equal = ((pred == gold) & valid).sum(dim=(0, 2, 3)).double()  # per channel
    return float((equal / n_valid).mean())


__all__ = [
    "METRIC_DIR",
    "compute_uie_metrics",
    "flatten",
    "label_drop_accuracy",
    "load_uie_metric",
    "metric_path",
]
