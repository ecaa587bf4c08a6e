"""Few-shot protocol (paper §4.3, Table 5; Table 8: 200 epochs, patience 10) and evaluation helpers.

* :func:`sample_kshot`: a seeded greedy K-shot sampler in the style of UIE / Mirror (Yang & Katiyar's greedy
  sampling): every label gets at least ``K`` examples where the data has them, as close to exactly ``K`` as the
  multi-label records allow, deterministic per seed.
* :func:`fewshot_main` (``examples/fewshot.py``, console script ``ldnet-fewshot``): for every ``K`` and seed, sample
  the training split, fine-tune with :func:`trainers.cli.train_main` (the ``ldnet-train`` program) under the paper
  preset, test, and report mean ± std over the seeds.
* :func:`evaluate_records` / :func:`append_results_md`: shared by ``examples/zeroshot.py`` and
  ``bench/label_order.py``.

Counting unit (``unit``): ``"record"`` (default; a record counts once for every distinct label it contains: "K
sentences per type", as UIE's few-shot splits) or ``"instance"`` (gold items: "K mentions per type").
Labels counted (``fields``): the record's main task field, i.e. the first non-empty of ``event`` (event types),
``hyper_rel``, ``rel`` (relation types; also ABSA polarities), ``discontinuous_ent``, ``ent``, ``cls``;
``fields="all"`` counts every field.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modeling_ldnet.schema import normalize_record
from modeling_ldnet.vocabulary_ldnet import TASK_FIELDS

from .cli import train_main
from .console import ArgumentParser, console_entry, deferred_getattr, import_deferred

# The training stack (torch, transformers, datasets, the model): the imports in the TYPE_CHECKING block below are run
# by _import_training_stack() when a command runs, not when the module is imported, so that the console script's
# `--help` (a cached page) and importers of the light helpers do not pay seconds for them. A new heavy import of
# this module goes into that block.
if TYPE_CHECKING:  # also run by _import_training_stack() (console.import_deferred)
    import torch

    from .loading import (  # noqa: F401 - load_checkpoint, load_data, ... re-exported (their former home)
        load_checkpoint,
        load_data,
        load_data_split,
        parse_options,
        pick,
        portable,
        portable_path,
    )
    from .trainer import LDNetTrainer, LDNetTrainingArguments, default_metric_for


def _import_training_stack() -> None:
    """The imports of the ``TYPE_CHECKING`` block above, into this module's namespace (idempotent)."""
    import_deferred(globals())


#: re-exported names of the training stack (``from trainers.fewshot import ...``), imported on first use
__getattr__ = deferred_getattr(globals())


logger = logging.getLogger("ldnet.fewshot")

MAIN_FIELD_ORDER = tuple(reversed(TASK_FIELDS))  # the richest task first: event, hyper_rel, rel, ...

#: paper Table 8 (few-shot) on top of the ldnet-train defaults (SPEC §7.1)
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"num_train_epochs": 200, "early_stopping_patience": 10, "per_device_train_batch_size": 4},
    # a CPU-sized variant of the same protocol (used for smoke runs; say so when reporting)
    "quick": {"num_train_epochs": 20, "early_stopping_patience": 3, "per_device_train_batch_size": 4},
}


# ---------------------------------------------------------------------------------------------------------------
# labels of a record
# ---------------------------------------------------------------------------------------------------------------


def _field_labels(ans: Mapping[str, Any], f: str) -> list[str]:
    items = ans.get(f) or []
    if f == "cls":
        return list(items)
    if f in ("ent", "discontinuous_ent"):
        return [x["type"] for x in items]
    if f in ("rel", "hyper_rel"):
        return [x["relation"] for x in items]
    if f == "event":
        return [x["event_type"] for x in items]
    raise KeyError(f)


def record_labels(record: Mapping[str, Any], fields: str | Sequence[str] | None = None, unit: str = "record") -> Counter:
    """``Counter`` label -> count used by the sampler (see the module docstring for ``fields`` / ``unit``).

    Labels are prefixed by their field (``"ent:person"``) when ``fields`` names several fields, so equal strings of
    different fields stay apart.
    """
    if unit not in ("record", "instance"):
        raise ValueError(f"unit must be 'record' or 'instance', got {unit!r}")
    rec = normalize_record(dict(record))
    ans = rec["ans"]
    if fields is None or fields == "main":
        chosen = [next((f for f in MAIN_FIELD_ORDER if ans.get(f)), None)]
        chosen = [f for f in chosen if f]
        prefix = False
    elif fields == "all":
        chosen = [f for f in MAIN_FIELD_ORDER if ans.get(f)]
        prefix = True
    else:
        chosen = [fields] if isinstance(fields, str) else list(fields)
        prefix = len(chosen) > 1
    out: Counter = Counter()
    for f in chosen:
        for lab in _field_labels(ans, f):
            out[f"{f}:{lab}" if prefix else lab] += 1
    if unit == "record":
        out = Counter({k: 1 for k in out})
    return out


# ---------------------------------------------------------------------------------------------------------------
# the sampler
# ---------------------------------------------------------------------------------------------------------------


def sample_kshot(
    records: Sequence[Mapping[str, Any]],
    k: int,
    seed: int = 0,
    fields: str | Sequence[str] | None = None,
    unit: str = "record",
) -> list[int]:
    """Indices (ascending) of a K-shot subset of ``records``.

    Greedy, deterministic per ``seed``:

    1. records are visited in a seeded random order; labels rarest first;
    2. for each label, records containing it are added while it has fewer than ``K`` (pass 1 only takes records that
       push no label above ``K``; pass 2, if still short, takes the records that overshoot least);
    3. a removal pass drops selected records whose removal leaves every label at ``min(K, available)`` or more.

    A label available in fewer than ``K`` records gets all of them. Records without any counted label are never
    chosen. With single-label records the result has exactly ``K`` per label.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    labels = [record_labels(r, fields, unit) for r in records]
    available: Counter = Counter()
    for c in labels:
        available.update(c)
    rng = random.Random(seed)
    order = [i for i in range(len(records)) if labels[i]]
    rng.shuffle(order)
    position = {i: p for p, i in enumerate(order)}
    by_label: dict[str, list[int]] = {}
    for i in order:
        for lab in labels[i]:
            by_label.setdefault(lab, []).append(i)
    label_order = sorted(available, key=lambda lab: (len(by_label[lab]), lab))
    target = {lab: min(k, available[lab]) for lab in available}
    counts: Counter = Counter()
    chosen: set[int] = set()
    selected: list[int] = []

    def take(i: int) -> None:
        chosen.add(i)
        selected.append(i)
        counts.update(labels[i])

    for lab in label_order:
        if counts[lab] >= target[lab]:
            continue
        for i in by_label[lab]:  # pass 1: no overshoot anywhere
            if counts[lab] >= target[lab]:
                break
            if i in chosen:
                continue
            if all(counts[x] + c <= k for x, c in labels[i].items()):
                take(i)
        if counts[lab] < target[lab]:  # pass 2: least overshoot first
            rest = [i for i in by_label[lab] if i not in chosen]
            rest.sort(key=lambda i: (sum(max(0, counts[x] + c - k) for x, c in labels[i].items()), position[i]))
            for i in rest:
                if counts[lab] >= target[lab]:
                    break
                take(i)
    # removal pass (latest additions first)
    for i in reversed(list(selected)):
        if all(counts[x] - c >= target[x] for x, c in labels[i].items()):
            chosen.discard(i)
            counts.subtract(labels[i])
    return sorted(chosen)


def kshot_counts(records: Sequence[Mapping[str, Any]], indices: Iterable[int], fields=None, unit: str = "record") -> dict:
    """``{label: count}`` of the selected records (for reports / tests)."""
    c: Counter = Counter()
    for i in indices:
        c.update(record_labels(records[i], fields, unit))
    return dict(sorted(c.items()))


# ---------------------------------------------------------------------------------------------------------------
# evaluation helpers (zero-shot, label order, few-shot summaries)
# ---------------------------------------------------------------------------------------------------------------


def evaluate_records(model: Any, processor: Any, records: Any, batch_size: int = 16, prefix: str = "test",
                     output_dir: str | None = None) -> tuple[dict[str, float], list[dict]]:
    """Decode + score ``records`` with :class:`~trainers.LDNetTrainer` (same metrics as ``ldnet-train``).

    Returns ``(metrics, predictions)``; metric names are ``{prefix}_ent_f1``...
    """
    _import_training_stack()
    out = output_dir or tempfile.mkdtemp(prefix="ldnet-eval-")
    args = LDNetTrainingArguments(output_dir=out, per_device_eval_batch_size=batch_size, report_to="none",
                                  use_cpu=not torch.cuda.is_available())
    trainer = LDNetTrainer(model=model, args=args, processing_class=processor)
    res = trainer.predict(records, metric_key_prefix=prefix)
    return dict(res.metrics), list(res.predictions)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``n-1``; 0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan"), float("nan")
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def append_results_md(path: str | Path, title: str, lines: Sequence[str]) -> Path:
    """Append a ``### title`` block to a Markdown results file (created with a header when missing)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    head = "" if p.exists() else "# Benchmark results\n"
    with open(p, "a", encoding="utf-8") as fh:
        fh.write(head + f"\n### {title}\n\n" + "\n".join(lines) + "\n")
    return p


def f1_keys(metrics: Mapping[str, float], prefix: str = "test") -> list[str]:
    return sorted(k for k in metrics if k.startswith(prefix + "_") and k.endswith(("_f1", "_acc")))


# ---------------------------------------------------------------------------------------------------------------
# the few-shot program
# ---------------------------------------------------------------------------------------------------------------


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> Path:
    """SPEC-form jsonl (Arrow rows and SPEC dicts both accepted; extra columns dropped)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            rec = normalize_record(dict(r))
            rec["schema"] = {k: v for k, v in rec["schema"].items() if v}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def build_fewshot_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="ldnet-fewshot",
        description="K-shot fine-tuning over several seeds (paper Table 5 protocol); unknown options go to "
        "ldnet-train (e.g. --per_device_train_batch_size 8 --max_length 256).",
    )
    p.add_argument("--model_name_or_path", required=True, help="encoder folder or a (pre-trained) LDNet checkpoint")
    p.add_argument("--benchmark", default=None, help="registered benchmark (python -m processing list)")
    p.add_argument("--data_dir", default=None, help="upstream source of --benchmark (default: shared/data/<subdir>)")
    p.add_argument("--benchmark_options", default=None, help="converter options 'k=v,k=v'")
    p.add_argument("--data", default=None, help="a converted folder ({train,dev,test}.jsonl) instead of --benchmark")
    p.add_argument("--shots", type=int, nargs="+", default=[1, 5, 10], help="K values (default: 1 5 10)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="sampling + training seeds (>= 3)")
    p.add_argument("--fields", default=None, help="label field(s) counted: main (default), all, or e.g. ent,rel")
    p.add_argument("--unit", default="record", choices=("record", "instance"))
    p.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="paper: 200 epochs, patience 10")
    p.add_argument("--max_eval_samples", type=int, default=None, help="cap the dev set (model selection)")
    p.add_argument("--max_predict_samples", type=int, default=None, help="cap the test set")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--results_md", default=None,
                   help="also append the summary table to this Markdown file (default: none; <output_dir>/summary.md "
                        "is always written)")
    p.add_argument("--sample_only", action="store_true", help="write the K-shot splits and stop")
    p.add_argument("--keep_checkpoints", action="store_true", help="keep each run's model (default: deleted)")
    return p


def fewshot_main(argv: list[str] | None = None) -> dict[str, Any]:
    """``ldnet-fewshot``: sample, fine-tune, test, aggregate. Returns the summary dict (also ``summary.json``)."""
    _import_training_stack()
    parser = build_fewshot_parser()
    args, passthrough = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO,
                        handlers=[logging.StreamHandler(sys.stdout)])  # stderr is for errors only
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    opts = parse_options(args.benchmark_options)
    fields = None if args.fields in (None, "main") else ("all" if args.fields == "all" else args.fields.split(","))

    splits = load_data(args.benchmark, args.data_dir, args.data, opts)
    source = args.benchmark or str(args.data)
    train, dev, test = (pick(splits, sp, source) for sp in ("train", "dev", "test"))
    if args.max_eval_samples is not None and len(dev) > args.max_eval_samples:
        dev = dev.select(range(args.max_eval_samples))
    if args.max_predict_samples is not None and len(test) > args.max_predict_samples:
        test = test.select(range(args.max_predict_samples))
    data_dir = out / "data"
    dev_file, test_file = _write_jsonl(data_dir / "dev.jsonl", dev), _write_jsonl(data_dir / "test.jsonl", test)
    train_rows = [dict(r) for r in train]
    metric = default_metric_for([normalize_record(dict(r)) for r in dev])
    preset = PRESETS[args.preset]

    runs: list[dict[str, Any]] = []
    for k in args.shots:
        for seed in args.seeds:
            run_dir = out / f"{k}shot" / f"seed{seed}"
            idx = sample_kshot(train_rows, k, seed=seed, fields=fields, unit=args.unit)
            train_file = _write_jsonl(run_dir / "train.jsonl", (train_rows[i] for i in idx))
            info = {
                "k": k,
                "seed": seed,
                "train_records": len(idx),
                "train_ids": [str(train_rows[i]["id"]) for i in idx],
                "label_counts": kshot_counts(train_rows, idx, fields, args.unit),
            }
            (run_dir / "kshot.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
            if args.sample_only:
                runs.append(info)
                continue
            model_dir = run_dir / "model"
            train_argv = [
                "--model_name_or_path", args.model_name_or_path,
                "--train_file", str(train_file),
                "--validation_file", str(dev_file),
                "--test_file", str(test_file),
                "--output_dir", str(model_dir),
                "--seed", str(seed),
                "--num_train_epochs", str(preset["num_train_epochs"]),
                "--early_stopping_patience", str(preset["early_stopping_patience"]),
                "--per_device_train_batch_size", str(preset["per_device_train_batch_size"]),
                "--eval_strategy", "epoch",
                "--save_strategy", "epoch",
                "--save_total_limit", "1",
                "--load_best_model_at_end", "true",
                "--metric_for_best_model", metric,
                "--greater_is_better", "true",
                "--report_to", "none",
                "--logging_strategy", "epoch",
                "--do_train", "--do_eval", "--do_predict",
                *passthrough,
            ]
            t0 = time.time()
            results = train_main(train_argv)
            info.update(
                {
                    "seconds": round(time.time() - t0, 1),
                    "metric": f"test_{metric}",
                    "test": {k2: v for k2, v in results.items() if k2.startswith("test_")},
                    "eval": {k2: v for k2, v in results.items() if k2.startswith("eval_")},
                    "epochs_run": results.get("epoch"),
                }
            )
            (run_dir / "result.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n")
            if not args.keep_checkpoints:
                shutil.rmtree(model_dir, ignore_errors=True)
            runs.append(info)

    summary: dict[str, Any] = {
        "command": "ldnet-fewshot " + " ".join(portable(list(sys.argv[1:] if argv is None else argv))),
        "data": args.benchmark or portable_path(args.data),
        "model": portable_path(args.model_name_or_path),
        "preset": {args.preset: preset},
        "metric": f"test_{metric}",
        "seeds": args.seeds,
        "runs": runs,
        "summary": {},
    }
    if not args.sample_only:
        for k in args.shots:
            rows = [r for r in runs if r["k"] == k]
            keys = sorted({m for r in rows for m in f1_keys(r["test"])})
            summary["summary"][str(k)] = {
                m: dict(zip(("mean", "std"), mean_std([r["test"][m] for r in rows if m in r["test"]]))) for m in keys
            }
        lines = _summary_table(summary, args.shots)
        (out / "summary.md").write_text("\n".join(lines) + "\n")
        if args.results_md:
            append_results_md(args.results_md, f"Few-shot {args.benchmark or args.data} ({args.preset} preset)", lines)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return summary


def _fmt(ms: Mapping[str, float] | None) -> str:
    if not ms or ms.get("mean") is None or math.isnan(ms["mean"]):
        return "-"
    return f"{100 * ms['mean']:.2f} ± {100 * ms['std']:.2f}"


def _summary_table(summary: Mapping[str, Any], shots: Sequence[int]) -> list[str]:
    metric = summary["metric"]
    seeds = summary["seeds"]
    header = "| model | data | metric | " + " | ".join(f"{k}-shot" for k in shots) + " |"
    row = f"| `{summary['model']}` | {summary['data']} | {metric.removeprefix('test_')} | " + " | ".join(
        _fmt(summary["summary"].get(str(k), {}).get(metric)) for k in shots
    ) + " |"
    return [
        f"mean ± sample std over seeds {seeds} (F1 × 100); command: `{summary['command']}`",
        "",
        header,
        "|" + "---|" * (3 + len(shots)),
        row,
    ]


fewshot_cli = console_entry("ldnet-fewshot", fewshot_main)


__all__ = [
    "PRESETS",
    "append_results_md",
    "evaluate_records",
    "fewshot_cli",
    "fewshot_main",
    "kshot_counts",
    "load_checkpoint",
    "load_data",
    "load_data_split",
    "mean_std",
    "pick",
    "record_labels",
    "sample_kshot",
]
