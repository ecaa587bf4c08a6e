#!/usr/bin/env python
"""Span hygiene at decode time (issue #24.6): punctuation variants of one answer (``Boston`` / ``Boston .``).

For each data set's dev split: (1) gold statistics — spans that start / end in punctuation, spans whose first / last
whitespace token is punctuation only, gold pairs that are punctuation variants of each other (same type), and
genuinely nested gold pairs; (2) the model's dev predictions decoded three ways from ONE forward pass per batch
(``pipeline("universal-ie")``'s own preprocess / forward / postprocess, with ``config.decode_span_hygiene`` set to
``None`` (the paper's decoder), ``"merge"`` and ``"suppress"``), scored with ``trainers.scoring`` (the ``ldnet_uie``
metric); (3) in the variant groups the undeduplicated decoder predicts, which member is gold: the best-scored one
(what ``merge`` keeps) or the one closest to the bare span (what ``suppress`` keeps).

CoNLL03 is scored with the CoNLL04-trained demo model in the zero-label-change sense: CoNLL03's types renamed to
the model's own label strings (person -> people, miscellaneous -> other), nothing trained; ``--limit`` predicts the
first N dev sentences only (the gold statistics cover the whole split).

    python bench/span_hygiene.py --model runs/demo/model --limit 1000 --out runs/bench/results/span_hygiene.json
"""

from __future__ import annotations

import argparse
import json
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import _common as C

from modeling_ldnet.answers_ldnet import punctuation_core
from serving.extract import load_pipeline
from trainers.scoring import compute_uie_metrics, flatten

MODES: tuple[str | None, ...] = (None, "merge", "suppress")
#: CoNLL03 type -> the demo model's (CoNLL04) label string
CONLL03_AS_CONLL04 = {"person": "people", "location": "location", "organization": "organization",
                      "miscellaneous": "other"}


def _punct_only(s: str) -> bool:
    return bool(s) and all(unicodedata.category(ch).startswith("P") for ch in s)


def gold_stats(records: list[dict]) -> dict[str, int]:
    c: Counter = Counter()
    for r in records:
        text, ents = r["text"], r["ans"].get("ent", [])
        keys = {(e["type"], tuple(e["span"])) for e in ents}
        for e in ents:
            s, t = e["span"]
            span_text = text[s:t]
            toks = span_text.split()
            c["spans"] += 1
            c["end_in_punctuation"] += _punct_only(span_text[-1])
            c["start_in_punctuation"] += _punct_only(span_text[0])
            c["last_token_punctuation_only"] += len(toks) > 1 and _punct_only(toks[-1])
            c["first_token_punctuation_only"] += len(toks) > 1 and _punct_only(toks[0])
        for ty, sp in keys:
            for ty2, sp2 in keys:
                if sp2 == sp or not (sp2[0] <= sp[0] and sp[1] <= sp2[1]):
                    continue  # pairs (inner sp, outer sp2)
                same_core = punctuation_core(sp, text) == punctuation_core(sp2, text)
                name = "punctuation_variant_pairs" if same_core else "nested_pairs"
                c[name + ("_same_type" if ty == ty2 else "_other_type")] += 1
    return dict(c)


def variant_groups(records: list[dict], preds: list[dict]) -> dict[str, int]:
    """Predicted entity groups (same type, same punctuation core) with more than one member, and which is gold."""
    c: Counter = Counter()
    for r, p in zip(records, preds):
        text = r["text"]
        gold = {(e["type"], tuple(e["span"])) for e in r["ans"].get("ent", [])}
        groups: dict[tuple, list[dict]] = {}
        for e in p.get("ent", []):
            groups.setdefault((e["type"], punctuation_core(tuple(e["span"]), text)), []).append(e)
        for members in groups.values():
            if len(members) < 2:
                continue
            c["groups"] += 1
            c["extra_predictions"] += len(members) - 1
            best = min(members, key=lambda e: (-e["score"], e["span"][1] - e["span"][0]))
            bare = min(members, key=lambda e: (e["span"][1] - e["span"][0], -e["score"]))
            in_gold = [(e["type"], tuple(e["span"])) in gold for e in members]
            if not any(in_gold):
                c["no_member_gold"] += 1
                continue
            c["best_scored_is_gold"] += (best["type"], tuple(best["span"])) in gold
            c["bare_is_gold"] += (bare["type"], tuple(bare["span"])) in gold
    return dict(c)


def decode_three_ways(ie: Any, records: list[dict], batch_size: int) -> dict[str, list[dict]]:
    """One forward pass per batch, decoded with each ``decode_span_hygiene`` (the pipeline's own stages)."""
    out: dict[str, list[dict]] = {str(m): [] for m in MODES}
    cfg = ie.model.config
    saved = getattr(cfg, "decode_span_hygiene", None)
    try:
        for i in range(0, len(records), batch_size):
            chunk = [{k: v for k, v in r.items() if k != "ans"} for r in records[i : i + batch_size]]
            outputs = ie.forward(ie.preprocess(chunk, _offset=i))
            for mode in MODES:
                cfg.decode_span_hygiene = mode
                out[str(mode)].extend(ie.postprocess(outputs))
    finally:
        cfg.decode_span_hygiene = saved
    return out


def load_dev(name: str) -> tuple[list[dict], list[str]]:
    if name == "conll04":
        recs = C.load_split("conll04", "dev", with_entities=True, instruction="")
        tasks = ["ent", "rel"]
    elif name == "conll03":
        recs = C.load_split("conll03", "dev", instruction="")
        for r in recs:  # zero label change: the model's own label strings
            r["schema"] = {"ent": [CONLL03_AS_CONLL04[t] for t in r["schema"]["ent"]]}
            r["ans"] = {"ent": [{**e, "type": CONLL03_AS_CONLL04[e["type"]]} for e in r["ans"]["ent"]]}
        tasks = ["ent"]
    else:
        raise SystemExit(f"span_hygiene: unknown data set {name!r} (conll04, conll03)")
    return recs, tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(C.REPO / "runs" / "demo" / "model"))
    ap.add_argument("--datasets", default="conll04,conll03")
    ap.add_argument("--limit", type=int, default=None,
                    help="predict the first N dev sentences of each data set (gold statistics: all of them)")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--out", default=str(C.RESULTS_DIR / "span_hygiene.json"))
    args = ap.parse_args()
    C.quiet_transformers()
    ie = load_pipeline(args.model)
    res: dict[str, Any] = {"model": args.model, "threshold": ie.processor.threshold, "datasets": {}}
    for name in args.datasets.split(","):
        all_recs, tasks = load_dev(name)
        recs = all_recs[: args.limit] if args.limit else all_recs
        t0 = time.perf_counter()
        preds = decode_three_ways(ie, recs, args.batch_size)
        gold = [r["ans"] for r in recs]
        scores = {}
        for mode, p in preds.items():
            flat = flatten(compute_uie_metrics(p, gold, tasks=tasks))
            scores[mode] = {k: round(100 * flat[k], 2) for k in (
                "ent_f1", "ent_precision", "ent_recall", "rel_strict_f1", "rel_strict_precision", "rel_strict_recall")
                if k in flat}
            scores[mode]["entities_predicted"] = sum(len(a.get("ent", [])) for a in p)
        res["datasets"][name] = {
            "records": len(recs), "seconds": round(time.perf_counter() - t0, 1),
            "gold": {"records": len(all_recs), **gold_stats(all_recs)},
            "predicted_variant_groups": variant_groups(recs, preds["None"]), "scores": scores,
        }
        print(name, json.dumps(res["datasets"][name], indent=1), flush=True)
    out = Path(args.out)
    print(f"-> {C.write_json(out.stem, res, out.parent)}")


if __name__ == "__main__":
    main()
