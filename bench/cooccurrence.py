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
    # seeds (mean ± std), typed arguments and dev-calibrated thresholds (per channel, then per label name)
    python bench/cooccurrence.py --models label_drop=runs/c04/raw-s1,runs/c04/raw-s2,runs/c04/raw-s3 \\
        no_label_drop=runs/c04/nold-s1,runs/c04/nold-s2,runs/c04/nold-s3 --sets conll04 --typed --calibrate

Writes ``cooccurrence_fpr.json`` (``{set: {"fpr", "rel_f1", "hard_fpr", "fpr_<model>"...}}``, rates and F1 in 0-1,
the first model's values unprefixed) and ``cooccurrence_pr_<set>.png`` (precision-recall curves).
"""

from __future__ import annotations

import argparse
import json
import statistics
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


#: declared argument types of each set's relations (issue #21 item 2), as the schema's typed form
ARG_TYPES: dict[str, dict[str, dict[str, list[str]]]] = {
    "conll04": {"kill": {"head": ["people"], "tail": ["people"]},
                "live in": {"head": ["people"], "tail": ["location"]},
                "located in": {"head": ["location"], "tail": ["location"]},
                "organization in": {"head": ["organization"], "tail": ["location"]},
                "work for": {"head": ["people"], "tail": ["organization"]}},
}


def typed_schema(schema: dict, arg_types: dict[str, dict[str, list[str]]]) -> dict:
    """The record's schema with every relation label in the typed form (``{label: {"head": [...], "tail": [...]}}``)."""
    missing = [label for label in schema.get("rel", []) if label not in arg_types]
    if missing:
        raise KeyError(f"no declared argument types for relation labels {missing}")
    return {**schema, "rel": {label: dict(arg_types[label]) for label in schema.get("rel", [])}}


def scored(gold: Sequence[dict], pred: Sequence[dict]) -> dict[str, Any]:
    return {**cooccurrence_counts(gold, pred), "rel": relation_prf(gold, pred)}


def evaluate(ie: Any, records: Sequence[dict], batch_size: int = 16, dev: Sequence[dict] | None = None,
             arg_types: dict | None = None) -> dict[str, Any]:
    """One model on one test split: the default threshold, the threshold curve, and (when given) typed arguments
    and thresholds calibrated on ``dev`` per channel and then per label name."""
    inputs = [{"text": r["text"], "schema": r["schema"]} for r in records]
    gold = [r["ans"] for r in records]
    t0 = time.time()
    default = ie(inputs, batch_size=batch_size)
    low = ie(inputs, batch_size=batch_size, threshold=GRID[0])
    curve = [{"threshold": t, **relation_prf(gold, at_threshold(low, t)),
              "fpr": cooccurrence_counts(gold, at_threshold(low, t))["fpr"]} for t in GRID]
    out: dict[str, Any] = {**scored(gold, default), "curve": curve}
    if arg_types:
        typed = [{"text": r["text"], "schema": typed_schema(r["schema"], arg_types)} for r in records]
        out["typed"] = scored(gold, ie(typed, batch_size=batch_size))
    if dev is not None:
        from trainers.calibration import calibrate_label_thresholds, calibrate_thresholds

        cal = calibrate_thresholds(ie.model, ie.processor, list(dev), batch_size=batch_size, apply=True)
        ie.processor.threshold = tuple(cal.thresholds)
        out["channel"] = {**scored(gold, ie(inputs, batch_size=batch_size)), "thresholds": cal.thresholds}
        lab = calibrate_label_thresholds(ie.model, ie.processor, list(dev), batch_size=batch_size, apply=True)
        out["per_label"] = {**scored(gold, ie(inputs, batch_size=batch_size)), "thresholds": lab.thresholds}
    out["seconds"] = round(time.time() - t0, 1)
    return out


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


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    return statistics.mean(xs), statistics.pstdev(xs) if len(xs) > 1 else 0.0


#: summary keys: (row key, path into one run's result)
SUMMARY = (("fpr", ("fpr",)), ("hard_fpr", ("hard_fpr",)), ("rel_f1", ("rel", "f1")), ("rel_p", ("rel", "p")),
           ("rel_r", ("rel", "r")), ("typed_rel_f1", ("typed", "rel", "f1")), ("typed_rel_p", ("typed", "rel", "p")),
           ("typed_rel_r", ("typed", "rel", "r")), ("typed_fpr", ("typed", "fpr")),
           ("channel_rel_f1", ("channel", "rel", "f1")), ("channel_fpr", ("channel", "fpr")),
           ("per_label_rel_f1", ("per_label", "rel", "f1")), ("per_label_fpr", ("per_label", "fpr")))


def _get(res: dict, path: Sequence[str]) -> float | None:
    for k in path:
        if not isinstance(res, dict) or k not in res:
            return None
        res = res[k]
    return float(res)


def summarise(runs: dict[str, list[dict]], first: str) -> dict[str, float]:
    """Means (and ``_std``) over each model's seeds; the first model's keys unprefixed, the others ``key_<model>``."""
    row: dict[str, float] = {}
    for m, seeds in runs.items():
        suffix = "" if m == first else f"_{m}"
        for key, path in SUMMARY:
            xs = [v for v in (_get(r, path) for r in seeds) if v is not None]
            if xs:
                row[key + suffix], row[key + "_std" + suffix] = mean_std(xs)
        row["seeds" + suffix] = len(seeds)
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", required=True,
                    help="name=path[,path...] of trained LDNet folders (several paths: seeds, reported as mean ± std)")
    ap.add_argument("--sets", nargs="+", default=list(SET_OPTIONS), choices=list(SET_OPTIONS))
    ap.add_argument("--max_records", type=int, default=None)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--calibrate", action="store_true",
                    help="also fit thresholds on the dev split, per channel and then per label name, and score test")
    ap.add_argument("--typed", action="store_true", help="also score test with the declared argument types (ARG_TYPES)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "relations"))
    args = ap.parse_args(argv)
    import torch
    from transformers import pipeline

    torch.set_num_threads(1)
    _common.quiet_transformers()
    models = {name: paths.split(",") for name, paths in (m.split("=", 1) for m in args.models)}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    full: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    first = next(iter(models))
    for name in args.sets:
        records = _common.load_split(name, "test", **SET_OPTIONS[name])[: args.max_records]
        dev = _common.load_split(name, "dev", **SET_OPTIONS[name]) if args.calibrate else None
        arg_types = ARG_TYPES.get(name) if args.typed else None
        full[name] = {}
        for m, paths in models.items():
            # a fresh pipeline per set and seed: calibration writes the thresholds it fits into the model's config
            full[name][m] = [evaluate(pipeline("universal-ie", model=path, trust_remote_code=True), records,
                                      args.batch_size, dev, arg_types) for path in paths]
        summary[name] = summarise(full[name], first)
        plot({m: runs[0] for m, runs in full[name].items()}, name, out_dir)
        print(name, json.dumps(summary[name]), flush=True)
    (out_dir / "cooccurrence_fpr.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out_dir / "cooccurrence_full.json").write_text(json.dumps({"models": models, "sets": full}, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    main()
