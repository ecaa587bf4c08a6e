"""ldnet-serve: answers == direct pipeline calls, dynamic batching, limits, API key, model card, OpenAPI contract
(schemathesis), and the real console script on a loopback port (incl. graceful shutdown)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from _serving import SCHEMA, TEXTS, save_tiny_model
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from ldnet_tiny import assert_same_answers

from serving.backends import load_pipeline
from serving.batching import DynamicBatcher
from serving.server import Limits, ServerSettings, create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

CONTRACT_KEY = "contract-key"
SMALL_LIMITS = Limits(max_text_chars=300, max_texts=4, max_schema_labels=6, max_label_chars=40)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, minilm) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("serve") / "tiny", minilm)


@pytest.fixture(scope="module")
def ie(model_dir):
    return load_pipeline(model_dir)


class ForwardCounter:
    """Counts forward passes of the pipeline's model (a forward hook: one call per pass)."""

    def __init__(self, model) -> None:
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.handle = model.register_forward_hook(self)

    def __call__(self, module, args, kwargs_or_out, *rest) -> None:
        self.calls += 1
        self.batch_sizes.append(int(kwargs_or_out.logits.shape[0]))

    def close(self) -> None:
        self.handle.remove()


def post_all(app, bodies: list[dict], headers: dict | None = None) -> list[httpx.Response]:
    """Send ``bodies`` concurrently to ``app`` (in-process ASGI)."""

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(client.post("/extract", json=b, headers=headers) for b in bodies))

    return asyncio.run(run())


def test_extract_equals_pipeline(ie):
    app = create_app(ie, ServerSettings(max_wait_ms=1))
    records = [
        {"id": "a", "text": TEXTS[0], "schema": {"ent": ["person", "organization"], "rel": ["work for"]}},
        {"text": TEXTS[1], "instruction": "Find entities."},  # request-level schema
    ]
    with TestClient(app) as client:
        single = client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA}).json()
        many = client.post("/extract", json={"texts": TEXTS, "schema": SCHEMA, "threshold": 0.9}).json()
        recs = client.post("/extract", json={"records": records, "schema": {"ent": ["location"]}}).json()
        bare = client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA, "return_scores": False}).json()
    assert single["backend"] == "torch" and len(single["results"]) == 1
    expected = ie(TEXTS[0], schema=SCHEMA)
    assert expected["ent"] and expected["rel"], "the tiny model must predict something for the test to bite"
    assert_same_answers(single["results"], [expected])
    assert_same_answers(many["results"], ie(TEXTS, schema=SCHEMA, threshold=0.9))
    direct = ie([dict(records[0]), {**records[1], "schema": {"ent": ["location"]}}])
    assert_same_answers(recs["results"], direct)
    assert bare["results"] == [ie(TEXTS[0], schema=SCHEMA, return_scores=False)]


def test_list_form_schema_as_processing_stores_it(ie):
    listed = {"ent": ["person"], "rel": [], "event": [{"name": "attack", "labels": ["attacker", "place"]}],
              "hyper_rel": []}
    as_dict = {"ent": ["person"], "event": {"attack": ["attacker", "place"]}}
    with TestClient(create_app(ie, ServerSettings(max_wait_ms=0))) as client:
        r = client.post("/extract", json={"records": [{"text": TEXTS[0], "schema": listed}]})
        dup = client.post("/extract", json={"text": "a", "schema": {"event": [{"name": "x"}, {"name": "x"}]}})
    assert r.status_code == 200
    assert_same_answers(r.json()["results"], [ie(TEXTS[0], schema=as_dict)])
    assert dup.status_code == 422 and dup.json()["detail"][0]["loc"] == ["body", "schema", "event"]


def test_dynamic_batching_fewer_passes_exact_answers(ie):
    bodies = [{"text": t, "schema": SCHEMA} for t in TEXTS * 2]
    expected = [ie(b["text"], schema=SCHEMA) for b in bodies]  # one direct call per input
    counter = ForwardCounter(ie.model)
    try:
        batched = create_app(ie, ServerSettings(max_wait_ms=300, max_batch_size=32))
        responses = post_all(batched, bodies)
        batched_passes = counter.calls
        counter.calls = 0
        unbatched = create_app(ie, ServerSettings(batching=False))
        responses_unbatched = post_all(unbatched, bodies)
        unbatched_passes = counter.calls
    finally:
        counter.close()
    assert [r.status_code for r in responses] == [200] * len(bodies)
    for resp, exp in zip(responses + responses_unbatched, expected * 2):
        assert_same_answers(resp.json()["results"], [exp])
    # 8 concurrent requests within the 300 ms window: one forward pass of 8 (2 if a request straggles)
    assert batched_passes <= 2 and unbatched_passes == len(bodies)
    stats = batched.state.batcher.stats
    assert stats.requests == len(bodies) and stats.records == len(bodies) and stats.batches == batched_passes
    assert stats.largest_batch >= len(bodies) // 2


def test_batcher_groups_by_options_and_isolates_errors():
    calls: list[tuple[list[str], dict]] = []
    gate = threading.Event()

    def fake_pipe(records, batch_size, **options):
        gate.wait(5)
        calls.append(([r["text"] for r in records], options))
        if any(r["text"] == "bad" for r in records):
            raise ValueError("record 'bad', field 'text': bad input")
        return [{"echo": r["text"], **options} for r in records]

    batcher = DynamicBatcher(fake_pipe, max_wait_ms=200, max_batch_size=8)
    try:
        first = batcher.submit([{"text": "warmup"}])  # holds the worker while the others queue up
        futs = {
            "a": batcher.submit([{"text": "a1"}, {"text": "a2"}], threshold=0.5),
            "b": batcher.submit([{"text": "b"}], threshold=0.9),
            "c": batcher.submit([{"text": "c"}], threshold=0.5),
            "bad": batcher.submit([{"text": "bad"}], threshold=0.5),
        }
        gate.set()
        assert first.result(5) == [{"echo": "warmup"}]
        assert futs["a"].result(5) == [{"echo": "a1", "threshold": 0.5}, {"echo": "a2", "threshold": 0.5}]
        assert futs["b"].result(5) == [{"echo": "b", "threshold": 0.9}]
        assert futs["c"].result(5) == [{"echo": "c", "threshold": 0.5}]
        with pytest.raises(ValueError, match="record 'bad'"):
            futs["bad"].result(5)
    finally:
        batcher.close(5)
    texts = [c[0] for c in calls]
    # a, c and bad share one call (same threshold); it fails, so each is re-run alone; b runs in its own call
    assert texts[0] == ["warmup"]
    assert ["a1", "a2", "c", "bad"] in texts and ["b"] in texts
    assert ["a1", "a2"] in texts and ["c"] in texts and ["bad"] in texts
    assert not batcher._worker.is_alive()


def test_limits_name_the_field(ie):
    app = create_app(ie, ServerSettings(limits=SMALL_LIMITS))
    cases = [
        ({"text": "x" * 301, "schema": SCHEMA}, 413, ["body", "text"], "301 characters"),
        ({"texts": ["a"] * 5, "schema": SCHEMA}, 413, ["body", "texts"], "5 inputs; the limit is 4"),
        ({"texts": ["a", "y" * 400], "schema": SCHEMA}, 413, ["body", "texts", 1], "400 characters"),
        ({"text": "a", "schema": {"ent": [f"t{i}" for i in range(7)]}}, 413, ["body", "schema"], "7 labels"),
        ({"text": "a", "schema": {"event": {"attack": ["a", "b", "c", "d", "e", "f"]}}}, 413, ["body", "schema"],
         "7 labels"),
        ({"text": "a", "schema": {"ent": ["z" * 41]}}, 413, ["body", "schema", "ent"], "ent[0] has 41"),
        ({"records": [{"text": "a", "schema": {"ent": [" "]}}]}, 422, ["body", "records", 0, "schema", "ent"],
         "empty label"),
        ({"text": "a", "schema": SCHEMA, "instruction": "q" * 301}, 413, ["body", "instruction"], "301"),
        ({"text": "a"}, 422, ["body", "schema"], "no schema"),
        ({"text": "a", "schema": {}}, 422, ["body", "schema"], "extractive QA"),
        ({"text": "a", "texts": ["b"], "schema": SCHEMA}, 422, ["body"], "exactly one of"),
        ({"text": "a", "schema": SCHEMA, "threshold": 1.5}, 422, ["body", "threshold"], "less than 1"),
        ({"text": "a", "schema": {"entity": ["x"]}}, 422, ["body", "schema", "entity"], "Extra inputs"),
    ]
    with TestClient(app) as client:
        for body, status, loc, msg in cases:
            r = client.post("/extract", json=body)
            assert r.status_code == status, (body, r.text)
            detail = r.json()["detail"][0]
            assert detail["loc"] == loc, (body, detail)
            assert msg in detail["msg"], (body, detail)
        assert client.post("/extract", json={"texts": ["a"] * 4, "schema": SCHEMA}).status_code == 200


def test_request_changes_nothing_shared(ie):
    before = (ie.processor.threshold, ie.processor.window_stride, ie.processor.overflow, dict(ie._postprocess_params))
    expected = ie(TEXTS[0], schema=SCHEMA)
    app = create_app(ie, ServerSettings(max_wait_ms=1))
    with TestClient(app) as client:
        high = client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA, "threshold": 0.99}).json()
        after = client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA}).json()
    assert high["results"] != after["results"]
    assert_same_answers(after["results"], [expected])
    assert (ie.processor.threshold, ie.processor.window_stride, ie.processor.overflow,
            dict(ie._postprocess_params)) == before


def test_api_key_and_info(ie):
    app = create_app(ie, ServerSettings(api_key="s3cret"))
    body = {"text": TEXTS[0], "schema": SCHEMA}
    with TestClient(app) as client:
        assert client.get("/health").json() == {"status": "ok", "backend": "torch", "pending": 0}
        assert client.post("/extract", json=body).status_code == 401
        assert client.post("/extract", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.get("/info").status_code == 401
        assert client.post("/extract", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        info = client.get("/info", headers={"X-API-Key": "s3cret"}).json()
    assert info["card"]["schema"] == {"conll04": SCHEMA}
    assert info["card"]["metrics"] == {"tiny": {"ent_f1": 0.0}}
    assert info["config"]["hidden size / layers"] == "32 / 1"
    assert info["config"]["decoding threshold"] == 0.5
    assert info["limits"]["max_texts"] == Limits().max_texts
    assert info["batching"]["requests"] == 1
    keyless = create_app(ie).openapi()  # no key configured: no security scheme, every route open
    assert "securitySchemes" not in keyless.get("components", {})
    assert "security" not in keyless["paths"]["/extract"]["post"]


# -- OpenAPI contract (schemathesis, bounded) ------------------------------------------------------------
@pytest.fixture(scope="module")
def contract_app(ie):
    return create_app(ie, ServerSettings(limits=SMALL_LIMITS, max_wait_ms=0, api_key=CONTRACT_KEY))


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_openapi_contract(contract_app, mode):
    # schemathesis' pytest plugin (from_fixture) breaks on pytest 9; its Hypothesis strategy works as is
    # 413 / 422 are documented answers to schema-valid bodies that break a runtime rule (configurable limits; a
    # text without schema or question); positive data must get 2xx or one of those, never a 5xx
    config = schemathesis.Config.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "413", "422"]}}}
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", contract_app, config=config)
    strategy = schema.as_strategy(generation_mode=GenerationMode(mode))

    @given(case=strategy)
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        # no 5xx, documented status codes / content types, responses conform to their schemas, bad input -> 4xx
        case.call_and_validate(headers={"X-API-Key": CONTRACT_KEY})

    check()


def test_openapi_documents_the_api(contract_app):
    spec = contract_app.openapi()
    assert set(spec["paths"]) == {"/extract", "/health", "/info"}
    req = spec["components"]["schemas"]["ExtractRequest"]["properties"]
    assert {"text", "texts", "records", "schema", "instruction", "threshold"} <= set(req)
    assert {"401", "413", "422"} <= set(spec["paths"]["/extract"]["post"]["responses"])
    assert spec["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert spec["paths"]["/extract"]["post"]["security"] == [{"APIKeyHeader": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


# -- the console script as a real process ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).with_name("ldnet-serve")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "serving.server"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([*cmd, str(model_dir), "--port", str(port), "--threads", "1", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ldnet-serve exited early ({proc.returncode}):\n{proc.stdout.read()[-4000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"ldnet-serve did not come up:\n{proc.stdout.read()[-4000:]}")


def test_ldnet_serve_process_answers_and_graceful_shutdown(model_dir, ie):
    # a long gathering window, so a request is certainly in flight when SIGTERM arrives
    proc, url = start_server(model_dir, "--max-wait-ms", "1500")
    try:
        body = {"texts": TEXTS, "schema": SCHEMA}
        r = httpx.post(url + "/extract", json=body, timeout=30)
        assert r.status_code == 200
        assert_same_answers(r.json()["results"], ie(TEXTS, schema=SCHEMA))
        assert httpx.get(url + "/info", timeout=5).json()["card"]["schema"] == {"conll04": SCHEMA}
        with ThreadPoolExecutor(1) as pool:
            t0 = time.monotonic()
            pending = pool.submit(httpx.post, url + "/extract", json={"text": TEXTS[2], "schema": SCHEMA}, timeout=30)
            time.sleep(0.5)  # the request waits in the batcher
            proc.send_signal(signal.SIGTERM)
            late = pending.result()
        assert late.status_code == 200 and time.monotonic() - t0 >= 1.0
        assert_same_answers(late.json()["results"], [ie(TEXTS[2], schema=SCHEMA)])
        # uvicorn re-raises the captured SIGTERM after its clean shutdown (conventional exit status)
        assert proc.wait(30) in (0, -signal.SIGTERM)
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/health", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.stdout.read()
    assert "Application shutdown complete" in out and "Finished server process" in out, out[-3000:]
