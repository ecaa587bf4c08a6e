"""Command line: ``python -m processing {list,convert}``.

    python -m processing list
    python -m processing convert NAME SRC_DIR OUT_DIR [--format jsonl|parquet] [--instruction TEXT]
                                 [--image-dir DIR] [--OPTION VALUE | --FLAG ...]

Converter-specific options (``Benchmark.options``, shown by ``list --options``) are given as ``--with-entities`` (a
flag = ``True``) or ``--labels 0:neg,1:pos`` (dashes become underscores). ``--instruction ""`` gives the
"w/o Inst." setting. The conversion report (records, items, dropped items with reasons) is printed at the end.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from . import BENCHMARKS
from .convert import FORMATS, convert_benchmark


def _parse_extra(extra: list[str]) -> dict[str, Any]:
    """``["--with-entities", "--labels", "0:a,1:b"]`` -> ``{"with_entities": True, "labels": "0:a,1:b"}``."""
    options: dict[str, Any] = {}
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--") or arg == "--":
            raise SystemExit(f"unexpected argument {arg!r}")
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if eq:
            options[key] = value
        elif i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            options[key] = extra[i + 1]
            i += 1
        else:
            options[key] = True
        i += 1
    return options


def cmd_list(args: argparse.Namespace) -> int:
    rows = [("name", "task", "status", "source")]
    for b in BENCHMARKS.values():
        rows.append((b.name, b.task, b.status, b.source))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
        if args.options and r[0] in BENCHMARKS:
            b = BENCHMARKS[r[0]]
            for key, desc in b.options.items():
                print(" " * (sum(widths) + 6) + f"--{key.replace('_', '-')}: {desc}")
            if b.how_to_obtain:
                print(" " * (sum(widths) + 6) + f"data: {b.how_to_obtain}")
    return 0


def cmd_convert(args: argparse.Namespace, extra: list[str]) -> int:
    options = _parse_extra(extra)
    if args.image_dir is not None:
        options["image_dir"] = args.image_dir
    try:
        dd, report = convert_benchmark(
            args.name, args.src_dir, args.out_dir, fmt=args.format, instruction=args.instruction,
            progress=not args.no_progress, **options,
        )
    except (KeyError, ValueError, FileNotFoundError) as exc:
        # RecordError / SourceFormatError are ValueErrors: their message names record+field / file+line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    print()
    for split, ds in dd.items():
        print(f"wrote {args.out_dir}/{split}.{args.format} ({ds.num_rows} records)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m processing", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="list the registered benchmarks (name, task, status, source)")
    p_list.add_argument("--options", action="store_true", help="also show converter options and how to get the data")
    p_conv = sub.add_parser("convert", help="convert one benchmark to unified records")
    p_conv.add_argument("name", help="benchmark name (see `list`)")
    p_conv.add_argument("src_dir", help="folder with the upstream files")
    p_conv.add_argument("out_dir", help="output folder ({split}.jsonl or {split}.parquet)")
    p_conv.add_argument("--format", choices=FORMATS, default="jsonl")
    p_conv.add_argument("--instruction", default=None, help="override the default instruction ('' = none)")
    p_conv.add_argument("--image-dir", default=None, help="image folder (multimodal benchmarks)")
    p_conv.add_argument("--no-progress", action="store_true", help="no progress bars")
    args, extra = parser.parse_known_args(argv)
    if args.command == "list":
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return cmd_list(args)
    return cmd_convert(args, extra)


if __name__ == "__main__":
    sys.exit(main())
