#!/usr/bin/env python
"""CPU backends on the same inputs, in one run: throughput of ``pipeline("universal-ie")`` with the torch forward
pass vs the ONNX export (fp32) vs its onnxruntime dynamic int8 quantization, and their F1 on CoNLL04 test.

    python bench/onnx_backend.py --model runs/demo/model --out runs/bench/onnx_backend.json --threads 1

Every backend is the same pipeline (preprocessing, windows, decoding); only the forward pass differs. Throughput:
records/s over the same CoNLL04 test sentences at ``--batch-size``, median of ``--repeats`` timed passes after a warm-up
pass, interleaved across backends (``bench/_common.py``: the machine is shared). F1: entity F1 and strict relation F1
(``trainers.metrics``) of each backend's answers against the gold ones. Bounded: ``--records`` sentences.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# _common sets the offline environment and puts the repository on sys.path before anything imports transformers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from processing import convert_benchmark  # noqa: E402
from processing.paths import shared_data_dir  # noqa: E402
from serving.backends import BACKENDS, load_pipeline  # noqa: E402
from trainers.metrics import compute_uie_metrics, flatten  # noqa: E402


def conll04_test(n: int, instruction: str | None) -> list[dict]:
    dd, _ = convert_benchmark("conll04", shared_data_dir() / "conll04", progress=False, with_entities=True,
                              **({"instruction": instruction} if instruction is not None else {}))
    test = dd["test"]
    return [test[i] for i in range(min(n, len(test)))]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="saved LDNet folder (e.g. runs/demo/model)")
    p.add_argument("--out", default="runs/bench/onnx_backend.json")
    p.add_argument("--records", type=int, default=288, help="CoNLL04 test sentences (288 = all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for torch and onnxruntime")
    p.add_argument("--window-stride", type=int, default=None,
                   help="long-text window overlap (default: the saved processor's; `make demo`'s 128 is too large "
                        "for its 128-token windows)")
    p.add_argument("--instruction", default=None,
                   help="the records' instruction ('' for models trained w/o Inst., like `make demo`'s); "
                        "default: the converter's")
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--onnx-dir", default=None, help="where exports are cached (default MODEL/onnx)")
    a = p.parse_args(argv)

    records = conll04_test(a.records, a.instruction)
    inputs = [{k: r[k] for k in ("id", "instruction", "schema", "text", "bg")} for r in records]
    gold = [r["ans"] for r in records]
    pipes: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for backend in a.backends:
        t0 = time.perf_counter()
        pipes[backend] = load_pipeline(a.model, backend, threads=a.threads, onnx_dir=a.onnx_dir,
                                        window_stride=a.window_stride)
        results[backend] = {"load_s": round(time.perf_counter() - t0, 2)}
        # warm-up pass; its answers are the ones scored
        answers = pipes[backend](inputs, batch_size=a.batch_size)
        flat = flatten(compute_uie_metrics(answers, gold, tasks=["ent", "rel"]))
        results[backend]["ent_f1"] = round(100 * flat["ent_f1"], 2)
        results[backend]["rel_strict_f1"] = round(100 * flat["rel_strict_f1"], 2)
        path = getattr(pipes[backend].model, "path", None)
        results[backend]["file_mb"] = round(Path(path).stat().st_size / 2**20, 1) if path else None
    # timed passes interleaved across backends (bench/_common.py), so a busy moment of the shared machine hits all
    # of them alike; throughput = records / median pass time
    times = C.interleaved({b: (lambda ie=ie: ie(inputs, batch_size=a.batch_size)) for b, ie in pipes.items()},
                          repeats=a.repeats, warmup=0)
    for backend, r in results.items():
        r["pass_s"] = C.summary(times[backend])
        r["records_per_s"] = round(len(inputs) / C.med(times[backend]), 2)
        print(json.dumps({backend: r}), flush=True)
    base = results.get("torch")
    summary: dict[str, Any] = {
        "model": str(a.model),
        "records": len(inputs),
        "batch_size": a.batch_size,
        "threads": a.threads,
        "command": "python " + " ".join(sys.argv),
        "machine": C.machine_info(),
        "backends": results,
    }
    if base:
        summary["speedup_vs_torch"] = {b: round(r["records_per_s"] / base["records_per_s"], 2) for b, r in results.items()}
    if "onnx-int8" in results:
        ref = results.get("torch") or results.get("onnx")
        summary["int8_f1_loss"] = {
            "ent": round(ref["ent_f1"] - results["onnx-int8"]["ent_f1"], 2),
            "rel_strict": round(ref["rel_strict_f1"] - results["onnx-int8"]["rel_strict_f1"], 2),
        }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
