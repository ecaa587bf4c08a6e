#!/usr/bin/env python
"""Label-drop ablation on CoNLL04 (joint entities + relations) and ASTE 14res (v2): three LDNet settings with the
same encoder (packaged MiniLM), budget, seed and hyper-parameters.

* ``off``   — ``use_label_drop=False`` (the paper's LDNet_MR: no gate, no BCE term);
* ``logit`` — ``label_drop_mode="logit"``: ``P = S * lhat`` (reference code; decision-neutral at inference, so it
  acts through training only, SPEC §4.4);
* ``prob``  — ``label_drop_mode="prob"``: ``sigmoid(S) * lhat`` is thresholded (paper text; prunes at inference).

Each setting trains with ``trainers.LDNetTrainer`` for ``--max_minutes`` of training wall time (or ``--max_steps``),
then decodes the test split (``--test_limit`` records). Reported: relation strict F1 (``rel_strict_f1``: type and
both argument spans exact; for ASTE the "relation" is the sentiment of an (aspect, opinion) pair), plus entity F1
on CoNLL04. Paper numbers (DeBERTa-v3-large, full fine-tuning) are printed beside ours, labelled as such:

* CoNLL04, paper Table 7 (w/o PT, w/ Inst.): LDNet_MR (no label drop) 75.11; LDNet_MT- (MR + label drop) 75.81.
* 14-res, paper Figure 2 table (w/ PT & Inst., 100 epochs): without label drop 82.18; with 83.58.
  (w/ PT & w/o Inst.: 83.70 / 84.79.) The paper has no separate "prob" gate number (its code gates logits).

    python bench/ablation_label_drop.py --max_minutes 30            # the full run (lead): 2 datasets x 3 settings
    python bench/ablation_label_drop.py --max_minutes 1 --train_limit 200 --test_limit 50   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C
import numpy as np

SETTINGS: dict[str, dict[str, Any]] = {
    "off": {"use_label_drop": False},
    "logit": {"use_label_drop": True, "label_drop_mode": "logit"},
    "prob": {"use_label_drop": True, "label_drop_mode": "prob"},
}

DATASETS: dict[str, dict[str, Any]] = {
    "conll04": {"benchmark": "conll04", "options": {"with_entities": True}},
    "aste-14res": {"benchmark": "aste-14res", "options": {}},
}

#: Paper numbers (DeBERTa-v3-large), rel strict F1 (%); keys: our setting names ("logit" = the paper's code).
PAPER = {
    "conll04": {"source": "paper Table 7, w/o PT w/ Inst. (LDNet_MR vs LDNet_MT-)", "off": 75.11, "logit": 75.81},
    "aste-14res": {"source": "paper Fig. 2 table, w/ PT & Inst., 100 epochs", "off": 82.18, "logit": 83.58},
}


def run(data: dict[str, tuple[list[dict], list[dict]]], *, settings: list[str] = tuple(SETTINGS),
        max_minutes: float | None = 2.0, max_steps: int | None = None, seed: int = 1227, batch_size: int = 16,
        lr: float = 5e-5, head_lr: float = 5e-4, warmup_steps: int = 20, threads: int = 1,
        scheduler: str = "constant_with_warmup") -> dict:
    """``data``: dataset name -> (train records, test records). Returns per dataset and setting the metrics."""
    budget = max_minutes * 60 if max_minutes else None
    out: dict[str, Any] = {"results": {}, "paper": PAPER}
    for ds, (train, test) in data.items():
        out["results"][ds] = {}
        for st in settings:
            t0 = time.perf_counter()
            r = C.train_eval_ldnet(train, test, max_seconds=budget, max_steps=max_steps, seed=seed,
                                   batch_size=batch_size, lr=lr, head_lr=head_lr, warmup_steps=warmup_steps,
                                   threads=threads, config=SETTINGS[st], scheduler=scheduler)
            m = r["metrics"]
            row = {
                "rel_strict_f1": m.get("test_rel_strict_f1"),
                "rel_boundary_f1": m.get("test_rel_boundary_f1"),
                "ent_f1": m.get("test_ent_f1"),
                "steps": r["steps"],
                "train_seconds": r["train_seconds"],
                "config": SETTINGS[st],
                "metrics": m,
            }
            out["results"][ds][st] = row
            paper = PAPER.get(ds, {}).get(st)
            print(f"[ablation] {ds:<11} {st:<5}: rel strict F1 {100 * (row['rel_strict_f1'] or 0):6.2f}"
                  + (f", ent F1 {100 * row['ent_f1']:6.2f}" if row["ent_f1"] is not None else "")
                  + f" ({r['steps']} steps, {r['train_seconds']:.0f}s; {time.perf_counter() - t0:.0f}s in all)"
                  + (f"   [paper, DeBERTa-v3-large: {paper:.2f}]" if paper is not None else ""), flush=True)
    out["summary"] = {
        "budget_minutes_each": max_minutes, "max_steps": max_steps, "seed": seed, "batch_size": batch_size,
        "encoder_lr": lr, "head_lr": head_lr, "warmup_steps": warmup_steps, "threads": threads,
        "records": {ds: {"train": len(tr), "test": len(te)} for ds, (tr, te) in data.items()},
    }
    return out


def merge_results(parts: list[dict]) -> dict:
    """One result dict from several :func:`run` outputs (their JSON files): datasets side by side; the budget and
    hyper-parameters must agree, else the table would compare unlike runs."""
    keys = ("budget_minutes_each", "max_steps", "seed", "batch_size", "encoder_lr", "head_lr", "warmup_steps",
            "threads")
    out: dict[str, Any] = {"results": {}, "paper": PAPER, "merged_from": [p.get("command") for p in parts]}
    summary: dict[str, Any] = {}
    for p in parts:
        s = p["summary"]
        for k in keys:
            if k in summary and summary[k] != s.get(k):
                raise ValueError(f"cannot merge ablation results: {k} differs ({summary[k]!r} vs {s.get(k)!r})")
            summary[k] = s.get(k)
        summary.setdefault("records", {}).update(s.get("records", {}))
        for ds, rows in p["results"].items():
            if ds in out["results"]:
                raise ValueError(f"cannot merge ablation results: dataset {ds!r} appears twice")
            out["results"][ds] = rows
    out["summary"] = summary
    return out


def print_table(res: dict) -> None:
    settings = list(dict.fromkeys(st for rows in res["results"].values() for st in rows))
    print("\nrel strict F1 (%)     " + "".join(f"{s:>9}" for s in settings) + "   paper off / LD (DeBERTa-v3-large)")
    for ds, rows in res["results"].items():
        p = PAPER.get(ds, {})
        print(f"{ds:<22}" + "".join(f"{100 * (rows[s]['rel_strict_f1'] or 0):9.2f}" if s in rows else f"{'-':>9}"
                                    for s in settings)
              + f"   {p.get('off', float('nan')):.2f} / {p.get('logit', float('nan')):.2f}  ({p.get('source', '')})")


def plot(res: dict, name: str = "ablation_label_drop"):
    plt = C.pyplot()
    dss = list(res["results"])
    fig, axes = plt.subplots(1, len(dss), figsize=(5 * len(dss), 4), squeeze=False)
    for ax, ds in zip(axes[0], dss):
        sts = list(res["results"][ds])
        ours = [100 * (res["results"][ds][s]["rel_strict_f1"] or 0) for s in sts]
        x = np.arange(len(sts))
        bars = ax.bar(x - 0.2, ours, 0.4, label="ours (MiniLM-L6, budgeted)")
        C.label_bars(ax, bars, ours, fontsize=8)
        paper = [res["paper"].get(ds, {}).get(s) for s in sts]
        px = [i + 0.2 for i, v in enumerate(paper) if v is not None]
        pv = [v for v in paper if v is not None]
        if pv:
            pb = ax.bar(px, pv, 0.4, hatch="//", color="lightgray", edgecolor="gray",
                        label="paper (DeBERTa-v3-large)")
            C.label_bars(ax, pb, pv, fontsize=8)
        ax.set_xticks(x, sts)
        ax.set_ylabel("rel strict F1 (%)")
        ax.set_title(ds)
        ax.set_ylim(0, 110)  # room for the legend above the paper bars
        ax.legend(fontsize=7, loc="upper right")
    s = res["summary"]
    budget = f"{s['budget_minutes_each']} min" if s["budget_minutes_each"] else f"{s['max_steps']} steps"
    fig.suptitle(f"Label-drop ablation: off / gate on logits / gate on probabilities ({budget} each)", fontsize=9)
    return C.save_plot(fig, name)


def main(argv: list[str] | None = None) -> dict:
    from accuracy_conll03 import select

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_budget_args(ap)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--train_limit", type=int, default=0, help="random training subset (0: all)")
    ap.add_argument("--test_limit", type=int, default=0, help="random test subset (0: all)")
    ap.add_argument("--name", default="ablation_label_drop")
    ap.add_argument("--merge", nargs="+", default=None, metavar="RESULT_JSON",
                    help="combine result files of runs made in separate processes (e.g. one per dataset, in "
                         "parallel) into --name's JSON + plot; trains nothing")
    args = ap.parse_args(argv)
    if args.merge:
        res = merge_results([json.loads(Path(p).read_text()) for p in args.merge])
        print_table(res)
        path = C.write_json(args.name, res)
        print(f"wrote {path} and {plot(res, args.name)}")
        return res
    data = {}
    for ds in args.datasets:
        spec = DATASETS[ds]
        train = C.load_split(spec["benchmark"], "train", **spec["options"])
        test = C.load_split(spec["benchmark"], "test", **spec["options"])
        data[ds] = (select(train, args.train_limit, args.seed), select(test, args.test_limit, args.seed + 1))
    res = run(data, settings=args.settings, **C.budget_kwargs(args))
    print_table(res)
    path = C.write_json(args.name, res)
    print(f"wrote {path} and {plot(res, args.name)}")
    return res


if __name__ == "__main__":
    main()
