"""Decode step budget on an untrained-like score grid (about half of all cells positive): who starves?

Compares, on the same thresholded grids, the shared round-robin budget of ``span_graph.decode_chains`` (every schema
tag takes one search step in turn) with the former schedule (tags searched one after another from one counter,
emulated by calling ``decode_chains`` tag by tag with what is left of the budget), against the unbounded decoder.
Per budget: the labels that got at least one chain and the share of the unbounded chains recovered, per task, and
the decode time of each schedule (medians of interleaved repeats; ratios, no timed asserts).

    .venv/bin/python bench/decode_budget.py --out runs/bench/results/decode_budget.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import RESULTS_DIR  # noqa: E402
from modeling_ldnet.span_graph import DecodeResult, LabelInfo, decode_chains, threshold_logits  # noqa: E402


def sequential(y, scores, tags, text, budget: int) -> DecodeResult:
    """The former schedule: one tag after another from a single step counter (later labels starve)."""
    out = DecodeResult()
    for s, info in tags.items():
        left = budget - out.steps
        if left <= 0:
            out.budget_exhausted = True
            break
        r = decode_chains(y, scores, {s: info}, text, False, budget=left)
        out.chains |= r.chains
        out.steps += r.steps
        if r.budget_exhausted:
            out.budget_exhausted = True
            break
    return out


def per_task(chains, tags) -> dict:
    counts: dict[str, int] = {}
    for ch in chains:
        task = tags[ch[0][0]].task
        counts[task] = counts.get(task, 0) + 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--labels", type=int, default=60, help="half entity types, half relations")
    ap.add_argument("--budgets", type=int, nargs="+", default=[2000, 5000, 20000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "decode_budget.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    n_tags = args.labels
    tags = {i: LabelInfo("lr" if i % 2 else "lm", "rel" if i % 2 else "ent", f"l{i}") for i in range(1, n_tags + 1)}
    text = (n_tags + 2, args.length - 1)
    grids = []
    for seed in range(args.seeds):
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(1, 3, args.length, args.length, generator=g)
        y = threshold_logits(logits, [args.length], 0.5, 16)[0]
        grids.append((y, torch.sigmoid(logits[0, 0]).numpy()))
    full = [decode_chains(y, sc, tags, text, False, budget=10**9) for y, sc in grids]
    rows = []
    for budget in args.budgets:
        row: dict = {"budget": budget}
        for name, fn in (("round_robin", lambda y, sc: decode_chains(y, sc, tags, text, False, budget=budget)),
                         ("sequential", lambda y, sc: sequential(y, sc, tags, text, budget))):
            times, labels, recovered, cut = [], {"ent": [], "rel": []}, {"ent": [], "rel": []}, 0
            for rep in range(args.repeats):
                for (y, sc), f in zip(grids, full):
                    t = time.perf_counter()
                    r = fn(y, sc)
                    times.append(time.perf_counter() - t)
                    if rep:
                        continue
                    cut += r.budget_exhausted
                    got, want = per_task(r.chains, tags), per_task(f.chains, tags)
                    for task in ("ent", "rel"):
                        with_chain = {ch[0][0] for ch in r.chains if tags[ch[0][0]].task == task}
                        labels[task].append(len(with_chain))
                        recovered[task].append(got.get(task, 0) / max(want.get(task, 0), 1))
            row[name] = {
                "grids_cut": cut,
                "labels_with_results": {k: float(np.mean(v)) for k, v in labels.items()},
                "share_of_unbounded_chains": {k: round(float(np.mean(v)), 4) for k, v in recovered.items()},
                "median_s": float(np.median(times)),
            }
        row["time_ratio_round_robin_vs_sequential"] = row["round_robin"]["median_s"] / row["sequential"]["median_s"]
        rows.append(row)
    res = {
        "length": args.length, "labels": {"ent": n_tags // 2, "rel": n_tags - n_tags // 2},
        "positive_share": float(np.mean([y[1:].mean() for y, _ in grids])),
        "unbounded_steps": [f.steps for f in full], "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
