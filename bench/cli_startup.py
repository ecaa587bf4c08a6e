#!/usr/bin/env python
"""Issue #24 item 7: how long the command-line programs take to start (each run = a new process, i.e. cold).

Every command is run ``--runs`` times in a fresh ``python`` process; we report the median wall time and the median
CPU time (user + sys of the child: less sensitive to a busy machine). With ``--before DIR`` (a checkout of an older
commit, e.g. ``git worktree add /tmp/before <commit>``) the same commands run against that tree too, interleaved
with this one (ABAB..., so a load change hits both), and the table gives the ratio. ``--help`` pages are measured
twice on this tree: without the page cache (``LDNET_HELP_CACHE=0``, a first run) and from it (every later run).
Nothing asserts on time.

    python bench/cli_startup.py --before /tmp/before --runs 3 --out runs/bench/results/cli_startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: label -> python arguments (a console script runs as its setup.cfg entry point does)
COMMANDS = {
    "import processing": ["-c", "import processing"],
    "python -m processing list": ["-m", "processing", "list"],
    "ldnet-extract --help": ["-c", "import sys; sys.argv = ['ldnet-extract', '--help']; "
                                   "from serving.extract import main; sys.exit(main())"],
    "ldnet-train --help": ["-c", "import sys; sys.argv = ['ldnet-train', '--help']; "
                                 "from trainers.cli import train_cli; sys.exit(train_cli())"],
    "ldnet-pretrain --help": ["-c", "import sys; sys.argv = ['ldnet-pretrain', '--help']; "
                                    "from trainers.pretrain import pretrain_cli; sys.exit(pretrain_cli())"],
    "ldnet-fewshot --help": ["-c", "import sys; sys.argv = ['ldnet-fewshot', '--help']; "
                                   "from trainers.fewshot import fewshot_cli; sys.exit(fewshot_cli())"],
}
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", "COLUMNS": "120"}


def run_once(tree: Path, args: list[str], extra_env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one fresh process running ``args`` with ``tree`` first on the path."""
    env = dict(os.environ, **ENV, **extra_env, PYTHONPATH=str(tree))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(args)[:80]} exited {proc.returncode}: {proc.stderr[-1500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, default=None, help="a checkout of the commit to compare with")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--slow_runs", type=int, default=None,
                    help="runs of the slow variants (the --before tree, uncached --help pages); default: --runs")
    ap.add_argument("--uncached", nargs="*", default=None,
                    help="--help labels also measured without the page cache (default: all)")
    ap.add_argument("--only", nargs="*", default=None, help="labels of COMMANDS to run (default: all)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "results" / "cli_startup.json")
    a = ap.parse_args()
    labels = a.only or list(COMMANDS)
    with tempfile.TemporaryDirectory(prefix="ldnet-help-cache-") as cache:
        slow_runs = a.runs if a.slow_runs is None else a.slow_runs
        cached = (REPO, {"LDNET_CACHE_DIR": cache})
        times: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for label in labels:
            args = COMMANDS[label]
            helps = label.endswith("--help")
            # name -> (tree, env, runs)
            todo: dict[str, tuple[Path, dict[str, str], int]] = {}
            if helps:
                todo["after, cached page"] = (*cached, a.runs)
                run_once(cached[0], args, cached[1])  # fills the cache (not timed)
                if a.uncached is None or label in a.uncached:
                    todo["after, no cache"] = (REPO, {"LDNET_HELP_CACHE": "0"}, slow_runs)
            else:
                todo["after"] = (REPO, {}, a.runs)
            if a.before is not None:
                todo["before"] = (a.before.resolve(), {}, slow_runs)
            for r in range(max(n for *_, n in todo.values())):
                order = list(todo) if r % 2 == 0 else list(reversed(todo))
                for name in order:
                    tree, env, n = todo[name]
                    if r < n:
                        times.setdefault(label, {}).setdefault(name, []).append(run_once(tree, args, env))
            row = {n: statistics.median(w for w, _ in ts) for n, ts in times[label].items()}
            print(f"{label:28s} " + "  ".join(f"{n} {s:6.2f} s" for n, s in row.items()), flush=True)
            write(a, times)  # after every command: a long run that is stopped keeps what it measured


def write(a: argparse.Namespace, times: dict[str, dict[str, list[tuple[float, float]]]]) -> None:
    table = {
        label: {
            name: {"wall_median_s": statistics.median(w for w, _ in ts), "cpu_median_s": statistics.median(c for _, c in ts),
                   "wall_s": [round(w, 3) for w, _ in ts], "cpu_s": [round(c, 3) for _, c in ts]}
            for name, ts in per.items()
        }
        for label, per in times.items()
    }
    for per in table.values():
        if "before" in per:
            for name in [n for n in per if n != "before"]:
                per[name]["speedup_wall"] = per["before"]["wall_median_s"] / per[name]["wall_median_s"]
                per[name]["speedup_cpu"] = per["before"]["cpu_median_s"] / per[name]["cpu_median_s"]
    load = os.getloadavg()
    result = {"runs": a.runs, "before": str(a.before) if a.before else None, "python": sys.version.split()[0],
              "machine": platform.platform(), "cpus": os.cpu_count(), "loadavg_at_write": load, "commands": table}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
