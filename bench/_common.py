"""Shared helpers of the ``bench/`` scripts: environment, the packaged MiniLM encoder, interleaved timing, results.

Timing rule (all speed scripts): baseline and candidate are measured in the SAME process, interleaved (ABAB...,
the order alternating every repeat), ``repeats`` times after ``warmup`` rounds; we report medians and the ratio of
medians. Nothing asserts on time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _k, _v in (
    ("HF_HUB_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("TOKENIZERS_PARALLELISM", "false"),
    ("TRANSFORMERS_VERBOSITY", "error"),
    ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
):
    os.environ.setdefault(_k, _v)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
#: where results and plots go: ``$LDNET_BENCH_OUT`` (default ``runs/bench``), never the published ``bench/results``
#: and ``bench/plots`` unless asked (``LDNET_BENCH_OUT=bench`` refreshes them)
OUT_DIR = Path(os.environ.get("LDNET_BENCH_OUT") or REPO / "runs" / "bench")
RESULTS_DIR = OUT_DIR / "results"
PLOTS_DIR = OUT_DIR / "plots"

if str(REPO) not in sys.path:  # modeling_ldnet / processing / trainers when the package is not installed
    sys.path.insert(0, str(REPO))

from processing.paths import minilm_path  # noqa: E402, F401 - after the path fix; bench scripts use C.minilm_path


def quiet_transformers() -> None:
    import logging

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("modeling_ldnet").setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def make_processor(max_length: int = 512, **kwargs: Any):
    """A fresh ``LDNetProcessor`` over the MiniLM tokenizer (the tag tokens are added to its own tokenizer copy)."""
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetProcessor

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    return LDNetProcessor(tokenizer=tok, max_length=max_length, **kwargs)


def make_ldnet(processor, **config_kwargs: Any):
    """``LDNetModel.from_encoder(MiniLM, tokenizer=processor.tokenizer, **config_kwargs)``."""
    from modeling_ldnet import LDNetModel

    quiet_transformers()
    return LDNetModel.from_encoder(str(minilm_path()), tokenizer=processor.tokenizer, **config_kwargs)


# ---------------------------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------------------------


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every function once per round, round-robin, the order rotated each round; seconds per call per name."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        if r % 2:
            order = order[::-1]
        for n in order:
            t0 = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
    return times


def med(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def summary(xs: list[float]) -> dict[str, float]:
    """Median / min / max / interquartile spread of a list of seconds."""
    s = sorted(xs)
    q = lambda p: s[min(len(s) - 1, round(p * (len(s) - 1)))]
    return {"median_s": med(xs), "min_s": s[0], "max_s": s[-1], "q25_s": q(0.25), "q75_s": q(0.75), "n": len(xs)}


# ---------------------------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import torch

    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg_at_end": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "note": "CPU only; 2 cores shared with other jobs: absolute times are noisy, ratios are measured interleaved",
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write_json(name: str, data: dict[str, Any], out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir or RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"  # a name may hold a sub-folder ("conll03_budget/10min-ldnet-s1")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "machine": machine_info(), **data}
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    return path


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def plot_path(name: str, out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir or PLOTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)  # a name may hold a sub-folder
    return path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig, name: str, dpi: int = 120) -> Path:
    """Lay out, write ``<PLOTS_DIR>/<name>.png`` and close ``fig`` (closing frees it in long sweeps)."""
    fig.tight_layout()
    p = plot_path(name)
    fig.savefig(p, dpi=dpi)
    pyplot().close(fig)
    return p


def label_bars(ax, bars, values, fmt: str = "{:.1f}", **text_kwargs: Any) -> None:
    """Write each value centred above its bar."""
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v, fmt.format(v), ha="center", va="bottom", **text_kwargs)


# ---------------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------------


#: what a failed conversion of a missing / malformed shared-data copy raises
DATA_ERRORS = (OSError, KeyError, ValueError, RuntimeError)


def load_split(benchmark: str, split: str, data_dir: str | Path | None = None, **options: Any) -> list[dict]:
    """Unified records of one split of a registered benchmark, converted on the fly from ``shared/data``."""
    from processing import convert_benchmark
    from trainers.data import benchmark_source

    quiet_transformers()
    data_dir = benchmark_source(benchmark, data_dir)  # default: $LDNET_SHARED_DATA or ../shared/data
    key = (benchmark, str(data_dir), tuple(sorted(options.items())))
    if key not in _CONVERTED:
        _CONVERTED[key], _ = convert_benchmark(benchmark, str(data_dir), progress=False, **options)
    return [dict(r) for r in _CONVERTED[key][split]]


_CONVERTED: dict = {}


def text_token_count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def pack_records(
    records: list[dict], tokenizer, target_text_tokens: float, n: int, tolerance: float = 0.15, keep_ans: bool = True
) -> list[dict]:
    """Join consecutive records (texts with one space, ``ans.ent`` spans shifted) into ``n`` records whose text has
    about ``target_text_tokens`` tokens (within ``±tolerance``); packs that overshoot are dropped. Cycles over the
    input if needed."""
    lo, hi = target_text_tokens * (1 - tolerance), target_text_tokens * (1 + tolerance)
    out: list[dict] = []
    cur: list[dict] = []
    cur_tok = 0
    i = 0
    guard = 0
    while len(out) < n:
        r = records[i % len(records)]
        i += 1
        guard += 1
        if guard > 50 * len(records) + 10 * n:
            raise RuntimeError(f"cannot pack records to ~{target_text_tokens} text tokens")
        k = text_token_count(tokenizer, r["text"])
        if k == 0:
            continue
        cur.append(r)
        cur_tok += k
        if cur_tok >= lo:
            if cur_tok <= hi:
                out.append(_join(cur, len(out), keep_ans))
            cur, cur_tok = [], 0
    return out


def _join(recs: list[dict], idx: int, keep_ans: bool) -> dict:
    text, ents, off = "", [], 0
    for r in recs:
        if text:
            text += " "
            off = len(text)
        text += r["text"]
        for e in (r.get("ans") or {}).get("ent") or []:
            ents.append({"type": e["type"], "text": e["text"], "span": [e["span"][0] + off, e["span"][1] + off]})
    base = recs[0]
    ans = {"ent": ents} if keep_ans else {}
    return {"id": f"pack.{idx}", "instruction": base["instruction"], "schema": base["schema"], "text": text,
            "bg": "", "ans": ans}


def ldnet_batch(processor, records: list[dict]) -> dict:
    """Processor encoding -> model keyword arguments with training targets."""
    enc = processor(records, return_tensors="pt")
    return {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "span_graph_links": enc["span_graph_links"],
        "label_drop_targets": enc["label_drop_targets"],
    }


def quick_finetune(model, processor, records: list[dict], steps: int, batch_size: int = 8, encoder_lr: float = 5e-5,
                   head_lr: float = 1e-3, seed: int = 1227) -> list[float]:
    """A few plain AdamW steps (for realistic, sparse logits in the speed benches); returns the losses."""
    import random

    import torch

    from trainers import ldnet_parameter_groups

    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(ldnet_parameter_groups(model, encoder_lr, head_lr, weight_decay=0.01))
    model.train()
    losses = []
    for _ in range(steps):
        batch = ldnet_batch(processor, rng.sample(records, min(batch_size, len(records))))
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    return losses


# ---------------------------------------------------------------------------------------------------------------
# budgeted training (accuracy benches)
# ---------------------------------------------------------------------------------------------------------------


BUDGET_KEYS = ("max_minutes", "max_steps", "seed", "batch_size", "lr", "head_lr", "warmup_steps", "threads",
               "scheduler")


def add_budget_args(ap, max_minutes: float = 2.0) -> None:
    """The training budget / optimiser options of the accuracy benches (one set of defaults for every script)."""
    ap.add_argument("--max_minutes", type=float, default=max_minutes, help="training wall-time budget of EACH run")
    ap.add_argument("--max_steps", type=int, default=None, help="optional step cap (every run)")
    ap.add_argument("--seed", type=int, default=1227)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5, help="encoder learning rate")
    ap.add_argument("--head_lr", type=float, default=5e-4, help="learning rate of the heads")
    ap.add_argument("--warmup_steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scheduler", default="constant_with_warmup", choices=("constant_with_warmup", "linear", "cosine"),
                    help="LR schedule after warm-up; linear/cosine decay over the time budget "
                         "(trainers.trainer.time_budget_scheduler) when --max_minutes is set")


def budget_kwargs(args) -> dict[str, Any]:
    """The :func:`add_budget_args` values as keyword arguments of the benches' ``run`` functions."""
    return {k: getattr(args, k) for k in BUDGET_KEYS}


def training_args(output_dir: str, *, batch_size: int, lr: float, head_lr: float, seed: int, max_steps: int | None,
                  warmup_steps: int, logging_steps: int = 50, scheduler: str = "constant_with_warmup",
                  max_seconds: float | None = None, **kwargs: Any):
    """``LDNetTrainingArguments`` shared by LDNet and the baselines: ``scheduler`` after a linear warm-up (with a
    wall-time budget ``max_seconds``, linear/cosine decay over the time: ``time_budget_scheduler``), SPEC §7.1 AdamW
    settings, no checkpoints, no eval."""
    from trainers import LDNetTrainingArguments

    return LDNetTrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=32,
        learning_rate=lr,
        head_learning_rate=head_lr,
        lr_scheduler_type=scheduler,
        max_minutes=max_seconds / 60.0 if max_seconds else None,
        warmup_steps=warmup_steps,
        max_steps=max_steps if max_steps else 10**7,
        seed=seed,
        data_seed=seed,
        logging_steps=logging_steps,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        **kwargs,
    )


def step_clock():
    """A ``TrainerCallback`` counting optimiser steps and training wall time (``.steps``, ``.seconds``); put it
    after ``TimeLimitCallback`` (it cancels the checkpoint that callback requests)."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.t0 = None
            self.seconds = 0.0
            self.steps = 0

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.steps = state.global_step
            self.seconds = time.perf_counter() - self.t0
            control.should_save = False  # TimeLimitCallback asks for a final save; the benches keep nothing
            return control

    return StepClock()


def train_eval_ldnet(train_records: list[dict], test_records: list[dict], *, max_seconds: float | None,
                     max_steps: int | None = None, seed: int = 1227, batch_size: int = 16, lr: float = 5e-5,
                     head_lr: float = 5e-4, warmup_steps: int = 20, threads: int = 1, config: dict | None = None,
                     output_dir: str | None = None, scheduler: str = "constant_with_warmup",
                     group_by_length: bool = False, max_length: int = 512) -> dict:
    """Train a fresh LDNet (MiniLM) with ``LDNetTrainer`` for ``max_seconds`` of wall time (or ``max_steps``), then
    decode ``test_records``; returns the flat UIE metrics (``test_ent_f1``, ``test_rel_strict_f1``, ...) and
    bookkeeping (steps, seconds, records seen)."""
    import tempfile

    import torch
    from transformers import set_seed

    from trainers import LDNetTrainer, TimeLimitCallback

    quiet_transformers()
    torch.set_num_threads(threads)
    set_seed(seed)
    processor = make_processor(max_length=max_length)
    model = make_ldnet(processor, **(config or {}))
    with tempfile.TemporaryDirectory(dir=output_dir) as tmp:
        args = training_args(tmp, batch_size=batch_size, lr=lr, head_lr=head_lr, seed=seed, max_steps=max_steps,
                             warmup_steps=warmup_steps, scheduler=scheduler, max_seconds=max_seconds,
                             **({"train_sampling_strategy": "group_by_length"} if group_by_length else {}))
        clock = step_clock()
        callbacks = ([TimeLimitCallback(max_seconds)] if max_seconds else []) + [clock]
        trainer = LDNetTrainer(model=model, args=args, train_dataset=train_records, processing_class=processor,
                               callbacks=callbacks)
        trainer.train()
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        pred = trainer.predict(test_records)
        eval_s = time.perf_counter() - t0
    metrics = {k: float(v) for k, v in pred.metrics.items() if isinstance(v, (int, float))}
    return {"metrics": metrics, "steps": clock.steps, "train_seconds": clock.seconds,
            "records_seen": clock.steps * batch_size, "eval_seconds": eval_s, "predictions": pred.predictions,
            "config": dict(config or {})}
