#!/usr/bin/env python
"""Load test of ``ldnet-serve`` on loopback: 1 / 8 / 32 concurrent clients, with and without dynamic batching.

    python bench/serve_load.py --model runs/demo/model --out runs/bench/serve_load.json --threads 1 --instruction ""

1. Inputs: CoNLL04 test sentences as unified records (schema + instruction inside), one record per request.
2. Offline baseline in this process: ``pipeline("universal-ie")`` over the same records at batch 32 and batch 1
   (interleaved, median), and the reference answers: one direct pipeline call per record.
3. For each server mode (dynamic batching ``--max-wait-ms``; ``--no-batching``): start ``ldnet-serve`` as a real
   process on a free loopback port (same ``--threads``), then for each client count send the records (async
   clients, each with one request in flight), timing each request. Reported: p50 / p99 latency, records/s, and
   that every answer equals the direct call (same structures; scores within 1e-5: batch padding moves float sums).
4. Ratio: served records/s at the highest client count / offline records/s at batch 32 (goal >= 0.8 with batching).

Bounded: ``--requests`` per level and ``--level-seconds`` per level (no new requests after it). Loopback only.

``--fairness``: the issue-#24 test instead. One server (dynamic batching); one client sends a HUGE request (64 texts
of 20,000 characters: CoNLL04 test sentences joined, within every default limit and the default work budget), and
once it is running another client sends a one-sentence request every ``--short-every`` seconds until the huge one is
answered, or, with ``--short-count N``, N of them, after which the huge request's client disconnects (and the
server must drop its remaining windows: ``/info`` ``cancelled_requests`` / ``dropped_windows``). Reported: each
short request's latency (goal: < 5 s), the huge request's time, windows and passes (from ``/info``), and
``/health`` sampled every second (queue length and queue time).

    python bench/serve_load.py --model runs/demo/model --fairness --out runs/bench/serve_fairness.json --threads 1 \
        --instruction "" --short-count 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# _common sets the offline environment and puts the repository on sys.path before anything imports transformers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
import httpx  # noqa: E402

from processing import convert_benchmark  # noqa: E402
from processing.paths import shared_data_dir  # noqa: E402
from serving.backends import BACKENDS, load_pipeline  # noqa: E402

SCORE_TOL = 1e-5


def conll04_records(n: int, instruction: str | None) -> list[dict]:
    dd, _ = convert_benchmark("conll04", shared_data_dir() / "conll04", progress=False, with_entities=True,
                              **({"instruction": instruction} if instruction is not None else {}))
    test = dd["test"]
    return [{k: test[i][k] for k in ("id", "instruction", "schema", "text", "bg")} for i in range(min(n, len(test)))]


def _strip(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k != "score"}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _scores(x: Any, out: list[float]) -> list[float]:
    if isinstance(x, dict):
        if "score" in x:
            out.append(float(x["score"]))
        for v in x.values():
            _scores(v, out)
    elif isinstance(x, list):
        for v in x:
            _scores(v, out)
    return out


def compare(got: dict, ref: dict) -> tuple[bool, float]:
    """(same structures, largest score difference)."""
    if _strip(got) != _strip(ref):
        return False, float("inf")
    a, b = _scores(got, []), _scores(ref, [])
    return True, max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(a: argparse.Namespace, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("ldnet-serve")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "serving.server"]
    cmd += [a.model, "--port", str(port), "--backend", a.backend, "--log-level", "warning",
            "--max-batch-size", str(a.max_batch_size), "--max-texts", "64", *extra]
    if a.window_stride is not None:
        cmd += ["--window-stride", str(a.window_stride)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads or ""), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"ldnet-serve exited ({proc.returncode}): {proc.stderr.read()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("ldnet-serve did not come up in 300 s")


async def run_level(url: str, records: list[dict], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent clients, each sending one record per request until all are sent (or time is up)."""
    answers: dict[int, dict] = {}
    latencies: list[float] = []
    errors: list[str] = []
    next_index = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        t_start = time.perf_counter()

        async def worker() -> None:
            nonlocal next_index
            while next_index < len(records) and time.perf_counter() - t_start < seconds:
                i = next_index
                next_index += 1
                t0 = time.perf_counter()
                r = await client.post("/extract", json={"records": [records[i]]})
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                else:
                    answers[i] = r.json()["results"][0]

        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t_start
    lat = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(lat),
        "errors": errors[:5],
        "wall_s": round(wall, 3),
        "records_per_s": round(len(answers) / wall, 2),
        "p50_ms": round(1000 * statistics.median(lat), 1),
        "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
        "_answers": answers,
    }


def huge_texts(records: list[dict], n: int, chars: int) -> list[str]:
    """``n`` texts of at most ``chars`` characters: the records' sentences joined, each text starting elsewhere."""
    sentences = [r["text"] for r in records]
    out = []
    for k in range(n):
        parts, size, i = [], 0, k
        while True:
            s = sentences[i % len(sentences)]
            if size + len(s) + 1 > chars:
                break
            parts.append(s)
            size += len(s) + 1
            i += 1
        out.append(" ".join(parts))
    return out


async def run_fairness(url: str, records: list[dict], a: argparse.Namespace) -> dict[str, Any]:
    """The huge request, short requests while it runs, and /health samples (see the module docstring)."""
    schema, instruction = records[0]["schema"], records[0]["instruction"]
    texts = huge_texts(records, a.huge_texts, a.huge_chars)
    short_records = records[: max(1, a.requests)]
    shorts: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, timeout=a.level_seconds * 10) as client:
        before = (await client.get("/info")).json()["batching"]
        t0 = time.perf_counter()
        huge = asyncio.create_task(
            client.post("/extract", json={"texts": texts, "schema": schema, "instruction": instruction}))
        # wait until the huge request is queued and its first pass ran (encoding 64 x 20,000 characters takes a while)
        while not huge.done():
            h = (await client.get("/health")).json()
            if h["pending"] and h["queue"]["pending_windows"] and h["queue"]["wait_p50_s"] is not None:
                break
            await asyncio.sleep(0.2)
        t_running = time.perf_counter() - t0

        async def sample() -> None:
            while not huge.done():
                h = (await client.get("/health")).json()
                health.append({"t_s": round(time.perf_counter() - t0, 2), "pending": h["pending"], **h["queue"]})
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        i = 0
        while not huge.done() and not (a.short_count and i >= a.short_count):
            rec = short_records[i % len(short_records)]
            i += 1
            ts = time.perf_counter()
            r = await client.post("/extract", json={"records": [rec]})
            shorts.append({"t_s": round(ts - t0, 2), "latency_s": round(time.perf_counter() - ts, 3),
                           "status": r.status_code, "huge_still_running": not huge.done()})
            await asyncio.sleep(max(0.0, a.short_every - (time.perf_counter() - ts)))
        cancelled = None
        if huge.done():
            resp = await huge
            status: int | str = resp.status_code
        else:  # --short-count reached: the huge request's client gives up (its connection closes)
            huge.cancel()
            status = "client disconnected"
            t_cancel = time.perf_counter()
            while True:
                b = (await client.get("/info")).json()["batching"]
                if b["cancelled_requests"] > before["cancelled_requests"] or time.perf_counter() - t_cancel > 120:
                    break
                await asyncio.sleep(0.2)
            h = (await client.get("/health")).json()
            cancelled = {"dropped_after_s": round(time.perf_counter() - t_cancel, 2),
                         "cancelled_requests": b["cancelled_requests"] - before["cancelled_requests"],
                         "dropped_windows": b["dropped_windows"] - before["dropped_windows"],
                         "pending_after": h["pending"], "pending_windows_after": h["queue"]["pending_windows"]}
        huge_s = time.perf_counter() - t0
        await asyncio.gather(sampler, return_exceptions=True)
        after = (await client.get("/info")).json()["batching"]
    during = [x["latency_s"] for x in shorts if x["huge_still_running"] and x["status"] == 200]
    return {
        "huge": {"texts": len(texts), "chars_each": [min(map(len, texts)), max(map(len, texts))],
                 "status": status, "seconds": round(huge_s, 1), "running_after_s": round(t_running, 1),
                 "cancelled": cancelled,
                 "windows": after["windows"] - before["windows"], "passes": after["batches"] - before["batches"],
                 "largest_pass": after["largest_batch"]},
        "short": {"sent": len(shorts), "answered_during_huge": len(during),
                  "p50_s": round(statistics.median(during), 3) if during else None,
                  "max_s": round(max(during), 3) if during else None,
                  "all_under_5s": bool(during) and max(during) < 5.0, "requests": shorts},
        "health_samples": health,
        "max_oldest_pending_s": max((h["oldest_pending_s"] for h in health), default=None),
    }


def fairness_main(a: argparse.Namespace) -> dict:
    records = conll04_records(max(a.requests, 288), a.instruction)
    proc, url = start_server(a, ["--max-wait-ms", str(a.max_wait_ms)])
    try:
        asyncio.run(run_level(url, records[:4], 2, 60))  # warm-up
        res = asyncio.run(run_fairness(url, records, a))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    result = {"model": a.model, "backend": a.backend, "threads": a.threads, "max_batch_size": a.max_batch_size,
              "max_wait_ms": a.max_wait_ms, "command": "python " + " ".join(sys.argv), "machine": C.machine_info(),
              **res}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"huge": res["huge"], "short": {k: v for k, v in res["short"].items() if k != "requests"},
                      "max_oldest_pending_s": res["max_oldest_pending_s"]}, indent=2))
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--out", default="runs/bench/serve_load.json")
    p.add_argument("--backend", choices=BACKENDS, default="torch")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads, offline pipeline and server alike")
    p.add_argument("--requests", type=int, default=96, help="records (= requests) per client level")
    p.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--level-seconds", type=float, default=120.0, help="no new requests after this, per level")
    p.add_argument("--max-wait-ms", type=float, default=10.0)
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="offline timing passes (interleaved, median)")
    p.add_argument("--window-stride", type=int, default=None,
                   help="long-text window overlap (default: the saved processor's)")
    p.add_argument("--instruction", default=None, help="records' instruction ('' for w/o-Inst. models)")
    p.add_argument("--fairness", action="store_true", help="the huge-request + short-requests test (see above)")
    p.add_argument("--huge-texts", type=int, default=64, help="--fairness: texts in the huge request")
    p.add_argument("--huge-chars", type=int, default=20_000, help="--fairness: characters per huge text (at most)")
    p.add_argument("--short-every", type=float, default=2.0, help="--fairness: seconds between short requests")
    p.add_argument("--short-count", type=int, default=0,
                   help="--fairness: stop after this many short requests and disconnect the huge one (0: wait for it)")
    a = p.parse_args(argv)
    if a.fairness:
        return fairness_main(a)

    import torch

    records = conll04_records(a.requests, a.instruction)
    ie = load_pipeline(a.model, a.backend, threads=a.threads, window_stride=a.window_stride)
    refs = [ie(r) for r in records]  # the direct pipeline call, one per input
    times = C.interleaved({"batch32": lambda: ie(records, batch_size=32), "batch1": lambda: ie(records, batch_size=1)},
                          repeats=a.repeats, warmup=0)
    offline = {k: round(len(records) / C.med(v), 2) for k, v in times.items()}
    print(json.dumps({"offline_records_per_s": offline}), flush=True)

    modes = {"dynamic batching": ["--max-wait-ms", str(a.max_wait_ms)], "no batching": ["--no-batching"]}
    served: dict[str, list[dict]] = {}
    for mode, extra in modes.items():
        proc, url = start_server(a, extra)
        try:
            asyncio.run(run_level(url, records[:4], 2, 60))  # warm-up
            served[mode] = []
            for clients in a.levels:
                res = asyncio.run(run_level(url, records, clients, a.level_seconds))
                checks = [compare(ans, refs[i]) for i, ans in res.pop("_answers").items()]
                res["answers_checked"] = len(checks)
                res["identical_structures"] = sum(ok for ok, _ in checks)
                res["max_score_diff"] = max((d for ok, d in checks if ok), default=0.0)
                res["all_equal"] = (len(checks) == res["requests"] and all(ok and d <= SCORE_TOL for ok, d in checks))
                res["vs_offline_batch32"] = round(res["records_per_s"] / offline["batch32"], 2)
                served[mode].append(res)
                print(json.dumps({mode: res}), flush=True)
            info = httpx.get(url + "/info", timeout=10).json()["batching"]
            served[mode + " (server stats)"] = [info]  # type: ignore[list-item]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    top = max(a.levels)
    result = {
        "model": a.model,
        "backend": a.backend,
        "threads": a.threads,
        "torch_threads": torch.get_num_threads(),
        "records": len(records),
        "max_wait_ms": a.max_wait_ms,
        "command": "python " + " ".join(sys.argv),
        "machine": C.machine_info(),
        "offline_records_per_s": offline,
        "served": served,
        f"ratio_at_{top}_clients": {
            mode: next(r["vs_offline_batch32"] for r in served[mode] if r["clients"] == top) for mode in modes
        },
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("offline_records_per_s", f"ratio_at_{top}_clients")}, indent=2))
    return result


if __name__ == "__main__":
    main()
