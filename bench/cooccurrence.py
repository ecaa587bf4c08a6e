#!/usr/bin/env python
"""Relations users can trust (issue #21 item 1): false relations between entities that merely co-occur.

For every test sentence, every **ordered pair of gold entities with no gold relation** between them (head -> tail) is
a chance for a false relation; the false-positive rate is the share of such pairs that get a predicted relation
(any type; head and tail spans exact). The *hard* subset: sentences with >= 3 gold entities and no relation at all.
Beside it, the relation precision / recall / F1 (relation type + both spans exact, SPEC §6 "boundaries") over
thresholds, from one decoding at a low threshold (items filtered by score, as per-label thresholds are applied),
and at the model's own default threshold (its regular decoding).

    # one or more trained models (e.g. label drop on / off), the sets' test splits
    python bench/cooccurrence.py --models label_drop=runs/conll04-ld no_label_drop=runs/conll04-nold \\
        --sets conll04 ade scierc nyt --out bench/results/relations

Writes ``cooccurrence_fpr.json`` (``{set: {"fpr", "rel_f1", "hard_fpr", "fpr_<model>"...}}``, rates and F1 in 0-1,
the first model's values unprefixed) and ``cooccurrence_pr_<set>.png`` (precision-recall curves).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

REPO = Path(__file__).resolve().parents[1]
#: converter options of each set's joint (entities + relations) test split
SET_OPTIONS: dict[str, dict[str, Any]] = {"conll04": {"with_entities": True}, "ade": {"fold": "0"}, "scierc": {},
                                          "nyt": {}}
GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _span(x: dict) -> tuple[int, int]:
    return int(x["span"][0]), int(x["span"][1])


def cooccurrence_counts(gold: Sequence[dict], pred: Sequence[dict]) -> dict[str, Any]:
    """Unrelated ordered gold-entity pairs and the predicted relations on them (all sentences and the hard ones)."""
    out = {"sentences": len(gold), "pairs": 0, "fp_pairs": 0, "hard_sentences": 0, "hard_pairs": 0, "hard_fp_pairs": 0}
    for g, p in zip(gold, pred):
        ents = sorted({_span(e) for e in g.get("ent", [])})
        related = {(_span(r["head"]), _span(r["tail"])) for r in g.get("rel", [])}
        predicted = {(_span(r["head"]), _span(r["tail"])) for r in p.get("rel", [])}
        hard = len(ents) >= 3 and not g.get("rel")
        out["hard_sentences"] += hard
        for h in ents:
            for t in ents:
                if h == t or (h, t) in related:
                    continue
                hit = (h, t) in predicted
                out["pairs"] += 1
                out["fp_pairs"] += hit
                if hard:
                    out["hard_pairs"] += 1
                    out["hard_fp_pairs"] += hit
    out["fpr"] = out["fp_pairs"] / out["pairs"] if out["pairs"] else 0.0
    out["hard_fpr"] = out["hard_fp_pairs"] / out["hard_pairs"] if out["hard_pairs"] else 0.0
    return out


def relation_prf(gold: Sequence[dict], pred: Sequence[dict]) -> dict[str, float]:
    """Micro P / R / F1 over (record, relation, head span, tail span)."""
    g = {(i, r["relation"], _span(r["head"]), _span(r["tail"])) for i, a in enumerate(gold) for r in a.get("rel", [])}
    p = {(i, r["relation"], _span(r["head"]), _span(r["tail"])) for i, a in enumerate(pred) for r in a.get("rel", [])}
    tp = len(g & p)
    prec = tp / len(p) if p else 0.0
    rec = tp / len(g) if g else 0.0
    return {"p": prec, "r": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}


def at_threshold(pred: Sequence[dict], t: float) -> list[dict]:
    return [{"rel": [r for r in a.get("rel", []) if r.get("score", 1.0) >= t]} for a in pred]


def evaluate(ie: Any, records: Sequence[dict], batch_size: int = 16) -> dict[str, Any]:
    inputs = [{"text": r["text"], "schema": r["schema"]} for r in records]
    gold = [r["ans"] for r in records]
    t0 = time.time()
    default = ie(inputs, batch_size=batch_size)
    low = ie(inputs, batch_size=batch_size, threshold=GRID[0])
    curve = [{"threshold": t, **relation_prf(gold, at_threshold(low, t)),
              "fpr": cooccurrence_counts(gold, at_threshold(low, t))["fpr"]} for t in GRID]
    counts = cooccurrence_counts(gold, default)
    return {**counts, "rel": relation_prf(gold, default), "curve": curve, "seconds": round(time.time() - t0, 1)}


def plot(results: dict[str, dict[str, Any]], name: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for model, res in results.items():
        ax.plot([c["r"] for c in res["curve"]], [c["p"] for c in res["curve"]], marker="o", label=model)
    ax.set_xlabel("relation recall")
    ax.set_ylabel("relation precision")
    ax.set_title(f"{name}: relations over the threshold")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / f"cooccurrence_pr_{name}.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", required=True, help="name=path of trained LDNet folders")
    ap.add_argument("--sets", nargs="+", default=list(SET_OPTIONS), choices=list(SET_OPTIONS))
    ap.add_argument("--max_records", type=int, default=None)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "relations"))
    args = ap.parse_args(argv)
    import torch
    from transformers import pipeline

    torch.set_num_threads(1)
    _common.quiet_transformers()
    models = dict(m.split("=", 1) for m in args.models)
    pipes = {name: pipeline("universal-ie", model=path, trust_remote_code=True) for name, path in models.items()}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    full: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    first = next(iter(models))
    for name in args.sets:
        records = _common.load_split(name, "test", **SET_OPTIONS[name])[: args.max_records]
        full[name] = {m: evaluate(ie, records, args.batch_size) for m, ie in pipes.items()}
        row = {}
        for m, res in full[name].items():
            prefix = "" if m == first else f"_{m}"
            row[f"fpr{prefix}"], row[f"hard_fpr{prefix}"], row[f"rel_f1{prefix}"] = res["fpr"], res["hard_fpr"], res["rel"]["f1"]
        summary[name] = row
        plot(full[name], name, out_dir)
        print(name, json.dumps(row), flush=True)
    (out_dir / "cooccurrence_fpr.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out_dir / "cooccurrence_full.json").write_text(json.dumps({"models": models, "sets": full}, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    main()
