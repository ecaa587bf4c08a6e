"""Thread safety: concurrent pipeline / processor calls with mixed per-call settings == the same calls made serially.

Per-call settings (``overflow``, ``window_stride``, ``threshold``, schema) never touch the shared processor, and each
call's encoding report belongs to that call (``ie.last_report`` is per thread).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from ldnet_tiny import assert_same_answers, decoding_model, tiny_processor
from transformers import pipeline

from modeling_ldnet.processing_ldnet import EncodingReport

SCHEMAS = [
    {"ent": ["person", "location"]},
    {"ent": ["person"], "rel": ["live in", "work for"]},
    {"ent": [f"kind number {i}" for i in range(14)], "event": {"attack": ["attacker", "target"]}},  # split schema
]
TEXTS = [
    "Jerry Smith lives in New York and works for Acme Corp .",
    " ".join(f"Alice Brown met Bob {i} in Paris ." for i in range(12)),  # several windows
]
SETTINGS = [
    dict(overflow="window", window_stride=8, threshold=0.5),
    dict(overflow="truncate", threshold=0.3),
    dict(overflow="window", window_stride=0, threshold=0.7),
    dict(overflow="window", window_stride=20, threshold=0.5),
]
CALLS = [dict(text=t, schema=s, **kw) for t, s, kw in itertools.product(TEXTS, SCHEMAS, SETTINGS)]  # 24 calls


@pytest.fixture(scope="module")
def ie(minilm):
    proc = tiny_processor(minilm, max_length=64, window_stride=8)
    model = decoding_model(len(proc.tokenizer), max_length=64, window_stride=8)
    return pipeline("universal-ie", model=model, processor=proc, device="cpu")


def report_fields(r: EncodingReport) -> tuple:
    return (r.records, r.features, r.windowed_records, r.schema_passes, r.split_records, r.truncated_bg)


def run_call(ie, call: dict) -> tuple[dict, tuple]:
    kw = dict(call)
    out = ie(kw.pop("text"), **kw)
    return out, report_fields(ie.last_report)


def test_threads_with_mixed_settings_equal_serial_calls(ie):
    proc = ie.processor
    before = (proc.overflow, proc.window_stride, proc.threshold)
    serial = [run_call(ie, c) for c in CALLS]
    # the settings matter (so a leak between calls would show) ...
    assert len({str(ans) for ans, _ in serial}) > len(CALLS) // 2
    assert len({rep for _, rep in serial}) >= 5 and any(rep[4] for _, rep in serial)
    # ... and 8 threads running all calls 3 times in a shuffled order get exactly the serial answers and reports
    jobs = [i for _ in range(3) for i in range(len(CALLS))]
    jobs = jobs[::2] + jobs[1::2]
    start = threading.Barrier(8)

    def work(i: int) -> tuple[int, tuple[dict, tuple]]:
        if not getattr(threading.current_thread(), "_h2_started", False):
            threading.current_thread()._h2_started = True
            start.wait(timeout=60)
        return i, run_call(ie, CALLS[i])

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, jobs))
    assert len(results) == len(jobs)
    for i, (ans, rep) in results:
        assert rep == serial[i][1], CALLS[i]
        assert_same_answers(ans, serial[i][0])
    assert (proc.overflow, proc.window_stride, proc.threshold) == before


def test_last_report_is_per_thread(ie):
    seen = {}

    def work(name: str, text: str, schema: dict) -> None:
        ie(text, schema=schema)
        seen[name] = report_fields(ie.last_report)

    threads = [threading.Thread(target=work, args=("small", TEXTS[0], SCHEMAS[0])),
               threading.Thread(target=work, args=("big", TEXTS[1], SCHEMAS[2]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["small"] == (1, 1, 0, 1, 0, 0)
    assert seen["big"][0] == 1 and seen["big"][4] == 1 and seen["big"][1] > seen["big"][3] > 1
    assert ie.last_report is None or report_fields(ie.last_report) not in ()  # this thread's own (if any)


def test_processor_calls_from_threads_equal_serial(ie):
    proc = ie.processor
    records = [{"id": f"r{i}", "text": TEXTS[i % 2], "schema": SCHEMAS[i % 3], "instruction": "Find."}
               for i in range(6)]
    settings = [dict(overflow=o, window_stride=s) for o in ("window", "truncate") for s in (0, 8, 20)]

    def encode(kw: dict):
        enc = proc(records, **kw)
        return enc["input_ids"], [m.window for m in enc["meta"]], report_fields(enc["encoding_report"])

    serial = [encode(kw) for kw in settings]
    assert len({str(x[1]) for x in serial}) >= 4  # the settings encode differently (truncate ignores most strides)
    total_before = proc.report.records
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda i: (i, encode(settings[i % len(settings)])), range(4 * len(settings))))
    for i, out in got:
        assert out == serial[i % len(settings)]
    # the cumulative report counted every call exactly once
    assert proc.report.records - total_before == 4 * len(settings) * len(records)
