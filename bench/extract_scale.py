#!/usr/bin/env python
"""ldnet-extract throughput: 1 process vs 2 data-parallel processes (accelerate launch, CPU, gloo).

Corpus: the CoNLL04 sentences (train + dev + test, ``$LDNET_SHARED_DATA/conll04``) repeated to ``--records``, with
the CoNLL04 entity + relation schema. Model: ``--model`` (default: an LDNet on
the packaged MiniLM-L6 encoder with random heads, max_length 256, saved in a temporary folder; speed does not depend
on training).

Settings, each run as a fresh ``ldnet-extract`` job (same corpus, same plan, outputs checked byte-identical):

* ``1proc_1thread``: 1 process, 1 intra-op thread;
* ``1proc_Nthreads``: 1 process, ``--threads`` threads (the fair single-process baseline on N cores);
* ``2proc_1thread``: ``accelerate launch --multi_gpu --num_processes 2`` (torchrun; gloo on CPU), 1 thread each.

Reported: records/s over the inference phase (from the first batch to the last shard of the slowest rank, model
loading excluded) and wall seconds of the whole command (interpreter start, model load, merge included). Settings
are interleaved over ``--repeats`` rounds (order rotated); medians. Nothing asserts on time.

    python bench/extract_scale.py --records 2000 --repeats 2 --out runs/bench/extract_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C

REPO = C.REPO
SCHEMA = {"ent": ["location", "organization", "people", "other"],
          "rel": ["kill", "live in", "located in", "organization in", "work for"]}


def conll04_texts(root: Path) -> list[str]:
    data = json.loads((root / "conll04" / "conll04.json").read_text())
    return [" ".join(s["tokens"]) for split in ("train", "dev", "test") for s in data[split]]


def build_model(out: Path) -> Path:
    from modeling_ldnet import LDNetModel  # noqa: F401 - registers the Auto classes

    proc = C.make_processor(max_length=256)
    model = C.make_ldnet(proc)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_setting(name: str, model: Path, corpus: Path, out_dir: Path, threads: int, batch_size: int,
                shard_size: int) -> dict:
    out = out_dir / f"{name}.jsonl"
    for p in (out, out_dir / f"{name}.jsonl.parts"):
        if p.is_dir():
            import shutil

            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    args = ["--model", str(model), "--input", str(corpus), "--output", str(out), "--schema", json.dumps(SCHEMA),
            "--instruction", "", "--batch_size", str(batch_size), "--shard_size", str(shard_size), "--no_progress",
            "--keep_shards"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO),
           "TOKENIZERS_PARALLELISM": "false"}
    if name.startswith("2proc"):
        cmd = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
               "--main_process_port", str(free_port()), "-m", "serving.extract", *args]
    else:
        cmd = [sys.executable, "-m", "serving.extract", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-4000:]}")
    work = out_dir / f"{name}.jsonl.parts"
    stats = [json.loads(p.read_text()) for p in sorted(work.glob("stats-rank*.json"))]
    records = sum(s["records"] for s in stats)
    compute = max(s["seconds"] for s in stats)
    return {"wall_s": wall, "compute_s": compute, "records": records, "records_per_s": records / compute,
            "output": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--shard_size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2, help="threads of the 1-process baseline")
    ap.add_argument("--model", default=None, help="a saved LDNet folder (default: a fresh MiniLM-L6 LDNet)")
    ap.add_argument("--out", default=str(C.RESULTS_DIR / "extract_scale.json"))
    args = ap.parse_args()

    out_path = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="extract_scale-"))
    if args.model:
        model, model_kind = Path(args.model), args.model
    else:
        model, model_kind = build_model(work / "model"), "MiniLM-L6 encoder + random heads, max_length 256"
    data_root = Path(os.environ.get("LDNET_SHARED_DATA", REPO.parent / "shared" / "data"))
    texts = conll04_texts(data_root)
    corpus = work / "corpus.jsonl"
    with open(corpus, "w") as fh:
        for i in range(args.records):
            fh.write(json.dumps({"id": f"r{i}", "text": texts[i % len(texts)]}) + "\n")

    names = ["1proc_1thread", f"1proc_{args.threads}threads", "2proc_1thread"]
    threads = {names[0]: 1, names[1]: args.threads, names[2]: 1}
    results: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            res = run_setting(n, model, corpus, work, threads[n], args.batch_size, args.shard_size)
            results[n].append(res)
            print(f"round {r} {n}: {res['records_per_s']:.1f} records/s (compute {res['compute_s']:.1f} s, "
                  f"wall {res['wall_s']:.1f} s)", flush=True)
    outputs = {n: results[n][-1]["output"].read_bytes() for n in names}
    identical = len(set(outputs.values())) == 1
    med = {n: {"records_per_s": statistics.median(x["records_per_s"] for x in results[n]),
               "compute_s": statistics.median(x["compute_s"] for x in results[n]),
               "wall_s": statistics.median(x["wall_s"] for x in results[n])} for n in names}
    data = {
        "records": args.records, "repeats": args.repeats, "batch_size": args.batch_size,
        "shard_size": args.shard_size, "model": model_kind, "schema": SCHEMA,
        "median": med,
        "speedup_2proc_vs_1proc_1thread": med[names[2]]["records_per_s"] / med[names[0]]["records_per_s"],
        f"speedup_2proc_vs_1proc_{args.threads}threads": med[names[2]]["records_per_s"] / med[names[1]]["records_per_s"],
        "outputs_identical": identical,
        "runs": {n: [{k: v for k, v in x.items() if k != "output"} for x in results[n]] for n in names},
    }
    path = C.write_json(out_path.stem, data, out_path.parent)
    print(json.dumps({k: data[k] for k in data if k != "runs"}, indent=1))
    print(f"-> {path}")
    if not identical:
        raise SystemExit("outputs differ between settings")


if __name__ == "__main__":
    main()
