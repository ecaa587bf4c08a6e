#!/usr/bin/env python
"""Label-order robustness: evaluate one model with the schema labels in the original order and in N random
orders (default 5), and report the F1 spread.

    python bench/label_order.py --model runs/conll04-ft --benchmark conll04 --split test \\
        --permutations 5 --results_md bench/RESULTS.md

A permutation is a random global rank over the dataset's label inventory (entity types, relation types, event
types, roles...; ``trainers.schema_aug.random_label_order``) applied to every record, so label *k* sits at the same
new position in every input; ``--per_record`` instead draws a fresh order per record (seeded). The processor keeps
the field order (cls, ent, discontinuous ent, rel, hyper rel, event); only positions inside fields move.
Output: ``bench/results/label_order[_<name>].json`` (per-order metrics, mean / sample std / max-min spread of the
main metric over the permutations) and, with ``--results_md``, a Markdown block.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from modeling_ldnet.schema import normalize_record
from trainers.cli import parse_options
from trainers.fewshot import (
    append_results_md,
    evaluate_records,
    load_checkpoint,
    load_data_split,
)
from trainers.schema_aug import (
    SchemaAugConfig,
    SchemaAugmenter,
    permute_schema,
    random_label_order,
)
from trainers.trainer import default_metric_for


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="saved LDNet folder (model + processor)")
    p.add_argument("--benchmark", default=None)
    p.add_argument("--data_dir", default=None)
    p.add_argument("--benchmark_options", default=None)
    p.add_argument("--data", default=None, help="converted folder or unified .jsonl instead of --benchmark")
    p.add_argument("--split", default="test")
    p.add_argument("--max_samples", type=int, default=None)
    p.add_argument("--permutations", type=int, default=5)
    p.add_argument("--seed", type=int, default=0, help="permutation k uses seed + k (k = 1..N); 0-th = original")
    p.add_argument("--per_record", action="store_true", help="a fresh order per record instead of a global one")
    p.add_argument("--metric", default=None, help="metric to summarise (default: the dataset's main metric)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_length", type=int, default=None)
    p.add_argument("--name", default=None, help="suffix of the results file")
    p.add_argument("--out_dir", default=None, help="results folder (default: bench/results)")
    p.add_argument("--results_md", default=None)
    return p


def permuted(records: list[dict], k: int, seed: int, per_record: bool) -> list[dict]:
    if k == 0:
        return [normalize_record(r) for r in records]
    if per_record:
        aug = SchemaAugmenter(SchemaAugConfig(shuffle=True, shuffle_inner=True), seed=seed + k)
        return [aug(r, epoch=0) for r in records]
    order = random_label_order(records, seed + k)
    return [permute_schema(r, order) for r in records]


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    _common.quiet_transformers()
    ds = load_data_split(args.split, args.benchmark, args.data_dir, args.data, parse_options(args.benchmark_options))
    if args.max_samples is not None and len(ds) > args.max_samples:
        ds = ds.select(range(args.max_samples))
    records = [normalize_record(dict(r)) for r in ds]
    metric = "test_" + (args.metric or default_metric_for(records)).removeprefix("test_")
    model, processor = load_checkpoint(args.model, args.max_length)
    orders = []
    for k in range(args.permutations + 1):
        recs = permuted(records, k, args.seed, args.per_record)
        metrics, _ = evaluate_records(model, processor, recs, batch_size=args.batch_size)
        first = recs[0]["schema"] if recs else {}
        orders.append({"permutation": k, "original": k == 0, "first_record_schema": first, "metrics": metrics})
        print(f"order {k}{' (original)' if k == 0 else ''}: {metric} = {metrics.get(metric, float('nan')):.4f}",
              flush=True)
    vals = [o["metrics"].get(metric, float("nan")) for o in orders[1:]]
    base = orders[0]["metrics"].get(metric, float("nan"))
    allv = [base, *vals]
    summary = {
        "metric": metric,
        "original": base,
        "permuted_mean": statistics.fmean(vals) if vals else float("nan"),
        "permuted_std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "spread_max_minus_min_incl_original": max(allv) - min(allv),
        "max_abs_delta_vs_original": max((abs(v - base) for v in vals), default=0.0),
    }
    data = {
        "model": args.model,
        "data": args.benchmark or args.data,
        "split": args.split,
        "records": len(records),
        "per_record": args.per_record,
        "permutations": args.permutations,
        "summary": summary,
        "orders": orders,
    }
    name = "label_order" + (f"_{args.name}" if args.name else "")
    path = _common.write_json(name, data, Path(args.out_dir) if args.out_dir else None)
    print(f"{metric}: original {100 * base:.2f}, permuted {100 * summary['permuted_mean']:.2f} "
          f"± {100 * summary['permuted_std']:.2f}, spread {100 * summary['spread_max_minus_min_incl_original']:.2f} "
          f"-> {path}")
    if args.results_md:
        append_results_md(
            args.results_md,
            f"Label-order robustness: {data['data']} ({args.split}, {len(records)} records)",
            [
                f"command: `python bench/label_order.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
                "",
                "| model | metric | original | permuted mean ± std | max-min spread | per-permutation |",
                "|---|---|---|---|---|---|",
                f"| `{args.model}` | {metric.removeprefix('test_')} | {100 * base:.2f} | "
                f"{100 * summary['permuted_mean']:.2f} ± {100 * summary['permuted_std']:.2f} | "
                f"{100 * summary['spread_max_minus_min_incl_original']:.2f} | "
                + ", ".join(f"{100 * v:.2f}" for v in vals) + " |",
            ],
        )
    return data


if __name__ == "__main__":
    main()
