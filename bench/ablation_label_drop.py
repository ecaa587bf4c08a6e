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
import os
import sys
import time
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
        lr: float = 5e-5, head_lr: float = 5e-4, warmup_steps: int = 20, threads: int = 1) -> dict:
    """``data``: dataset name -> (train records, test records). Returns per dataset and setting the metrics."""
    budget = max_minutes * 60 if max_minutes else None
    out: dict[str, Any] = {"results": {}, "paper": PAPER}
    for ds, (train, test) in data.items():
        out["results"][ds] = {}
        for st in settings:
            t0 = time.perf_counter()
            r = C.train_eval_ldnet(train, test, max_seconds=budget, max_steps=max_steps, seed=seed,
                                   batch_size=batch_size, lr=lr, head_lr=head_lr, warmup_steps=warmup_steps,
                                   threads=threads, config=SETTINGS[st])
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


def plot(res: dict, name: str = "ablation_label_drop"):
    plt = C.pyplot()
    dss = list(res["results"])
    fig, axes = plt.subplots(1, len(dss), figsize=(5 * len(dss), 4), squeeze=False)
    for ax, ds in zip(axes[0], dss):
        sts = list(res["results"][ds])
        ours = [100 * (res["results"][ds][s]["rel_strict_f1"] or 0) for s in sts]
        x = np.arange(len(sts))
        bars = ax.bar(x - 0.2, ours, 0.4, label="ours (MiniLM-L6, budgeted)")
        for b, v in zip(bars, ours):
            ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        paper = [res["paper"].get(ds, {}).get(s) for s in sts]
        px = [i + 0.2 for i, v in enumerate(paper) if v is not None]
        pv = [v for v in paper if v is not None]
        if pv:
            pb = ax.bar(px, pv, 0.4, hatch="//", color="lightgray", edgecolor="gray",
                        label="paper (DeBERTa-v3-large)")
            for b, v in zip(pb, pv):
                ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, sts)
        ax.set_ylabel("rel strict F1 (%)")
        ax.set_title(ds)
        ax.legend(fontsize=7)
    s = res["summary"]
    budget = f"{s['budget_minutes_each']} min" if s["budget_minutes_each"] else f"{s['max_steps']} steps"
    fig.suptitle(f"Label-drop ablation: off / gate on logits / gate on probabilities ({budget} each)", fontsize=9)
    fig.tight_layout()
    p = C.plot_path(name)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def main(argv: list[str] | None = None) -> dict:
    from accuracy_conll03 import select

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max_minutes", type=float, default=2.0, help="training wall-time budget of EACH run")
    ap.add_argument("--max_steps", type=int, default=None, help="optional step cap (every run)")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--train_limit", type=int, default=0, help="random training subset (0: all)")
    ap.add_argument("--test_limit", type=int, default=0, help="random test subset (0: all)")
    ap.add_argument("--seed", type=int, default=1227)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--head_lr", type=float, default=5e-4)
    ap.add_argument("--warmup_steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="ablation_label_drop")
    args = ap.parse_args(argv)
    data = {}
    for ds in args.datasets:
        spec = DATASETS[ds]
        train = C.load_split(spec["benchmark"], "train", **spec["options"])
        test = C.load_split(spec["benchmark"], "test", **spec["options"])
        data[ds] = (select(train, args.train_limit, args.seed), select(test, args.test_limit, args.seed + 1))
    res = run(data, settings=args.settings, max_minutes=args.max_minutes, max_steps=args.max_steps, seed=args.seed,
              batch_size=args.batch_size, lr=args.lr, head_lr=args.head_lr, warmup_steps=args.warmup_steps,
              threads=args.threads)
    print("\nrel strict F1 (%)     " + "".join(f"{s:>9}" for s in args.settings) + "   paper off / LD (DeBERTa-v3-large)")
    for ds, rows in res["results"].items():
        p = PAPER.get(ds, {})
        print(f"{ds:<22}" + "".join(f"{100 * (rows[s]['rel_strict_f1'] or 0):9.2f}" for s in args.settings)
              + f"   {p.get('off', float('nan')):.2f} / {p.get('logit', float('nan')):.2f}  ({p.get('source', '')})")
    path = C.write_json(args.name, res)
    print(f"wrote {path} and {plot(res, args.name)}")
    return res


if __name__ == "__main__":
    main()
