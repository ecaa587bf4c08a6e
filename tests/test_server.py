"""ldnet-serve: answers == direct pipeline calls, dynamic batching (windows per pass, round-robin fairness,
cancellation, queue stats), limits and validation, API key, model card, offline /docs, OpenAPI contract
(schemathesis), and the real console script on a loopback port (incl. client disconnects, graceful shutdown)."""

from __future__ import annotations

import asyncio
import json
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

from serving import backends, server
from serving.backends import load_pipeline
from serving.batching import DynamicBatcher, request_cost
from serving.server import Limits, ServerSettings, build_parser, create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

CONTRACT_KEY = "contract-key"
SMALL_LIMITS = Limits(max_text_chars=300, max_texts=4, max_schema_labels=6, max_label_chars=40)
# a text of many windows for the tiny model (max_length 64, stride 8): ~14 windows
LONG = " ".join(f"word{i}" if i % 9 else "Alice Brown works for Globex in Boston ." for i in range(300))


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
        audit = client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA, "return_rejected": 2}).json()
    assert single["backend"] == "torch" and len(single["results"]) == 1
    expected = ie(TEXTS[0], schema=SCHEMA)
    assert expected["ent"] and expected["rel"], "the tiny model must predict something for the test to bite"
    assert_same_answers(single["results"], [expected])
    assert_same_answers(many["results"], ie(TEXTS, schema=SCHEMA, threshold=0.9))
    direct = ie([dict(records[0]), {**records[1], "schema": {"ent": ["location"]}}])
    assert_same_answers(recs["results"], direct)
    assert bare["results"] == [ie(TEXTS[0], schema=SCHEMA, return_scores=False)]
    assert audit["results"] == [ie(TEXTS[0], schema=SCHEMA, return_rejected=2)]
    assert len(audit["results"][0]["rejected"]) == 2, "the tiny model has candidates below the threshold"
    # a long text's windows spread over 3-window passes: the same answer as one direct call
    with TestClient(create_app(ie, ServerSettings(max_wait_ms=1, max_batch_size=3))) as client:
        long = client.post("/extract", json={"texts": [LONG, TEXTS[1]], "schema": SCHEMA}).json()
        assert client.app.state.batcher.stats.largest_batch == 3
    assert_same_answers(long["results"], ie([LONG, TEXTS[1]], schema=SCHEMA))
    assert long["results"][0]["ent"], "the long text must yield answers for the test to bite"


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


class FlakyPipe:
    """``ie`` whose forward pass raises when a pass holds a row of record id ``"bad"``."""

    def __init__(self, ie) -> None:
        self.ie = ie

    def __getattr__(self, name):
        return getattr(self.ie, name)

    def forward(self, model_inputs):
        if any(m.record_id == "bad" for m in model_inputs["meta"]):
            raise ValueError("record 'bad', field 'text': bad input")
        return self.ie.forward(model_inputs)


def test_batcher_windows_per_pass_round_robin_and_errors(ie):
    """Passes never exceed max_batch_size rows: a long text's windows are spread over passes (and other requests'
    rows share them), options differ per request, answers == direct calls; a failing pass hurts only its culprit."""
    long_records = [{"id": "long", "text": LONG, "schema": SCHEMA}]
    n_windows = len(ie.preprocess(long_records)["meta"])
    assert n_windows > 6, "the long text must need several passes for the test to bite"
    counter = ForwardCounter(ie.model)
    batcher = DynamicBatcher(FlakyPipe(ie), max_wait_ms=200, max_batch_size=3)
    try:
        blocker = batcher.submit([{"text": TEXTS[3], "schema": SCHEMA}])
        futs = {
            "bad": batcher.submit([{"id": "bad", "text": TEXTS[0], "schema": SCHEMA}]),  # shares the first pass
            "long": batcher.submit(long_records, threshold=0.6),
            "a": batcher.submit([{"text": t, "schema": SCHEMA} for t in TEXTS[:2]], threshold=0.9),
            "b": batcher.submit([{"text": TEXTS[2], "schema": SCHEMA}], return_scores=False),
        }
        got = {k: f.result(30) for k, f in {"blocker": blocker, **futs}.items() if k != "bad"}
        with pytest.raises(ValueError, match="record 'bad'"):
            futs["bad"].result(30)
    finally:
        batcher.close(30)
        counter.close()
    assert_same_answers(got["blocker"], [ie(TEXTS[3], schema=SCHEMA)])
    assert_same_answers(got["long"], ie(long_records, threshold=0.6))
    assert_same_answers(got["a"], ie(TEXTS[:2], schema=SCHEMA, threshold=0.9))
    assert got["b"] == [ie(TEXTS[2], schema=SCHEMA, return_scores=False)]
    assert not batcher._worker.is_alive()
    assert max(counter.batch_sizes) <= 3 and batcher.stats.largest_batch == 3
    # the long record's windows went through 3-row passes; the small requests rode along (round-robin)
    windows = n_windows + 1 + 2 + 1  # long + blocker + a + b ("bad" never ran)
    assert batcher.stats.windows == windows + 1  # + bad's row in the pass that failed
    assert batcher.stats.requests == 5 and batcher.stats.records == 1 + 1 + 2 + 1


def test_short_request_not_queued_behind_a_long_one(ie):
    """A one-sentence request that arrives while a 4 x long-text request runs is answered within two passes,
    while the long one still has most of its windows to go (round-robin across requests)."""
    records = [{"id": f"long{i}", "text": LONG, "schema": SCHEMA} for i in range(4)]
    passes: list[float] = []
    sizes: list[int] = []

    def slow(module, args, kwargs_or_out, *rest):  # a slower model, so the long request takes a while
        passes.append(time.monotonic())
        sizes.append(int(kwargs_or_out.logits.shape[0]))
        time.sleep(0.03)

    handle = ie.model.register_forward_hook(slow)
    batcher = DynamicBatcher(ie, max_wait_ms=0, max_batch_size=4)
    try:
        long_req = batcher.encode(records)
        long_future = batcher.enqueue(long_req)
        while len(passes) < 3:
            time.sleep(0.005)
        health = batcher.queue_stats()
        t0 = time.monotonic()
        n0 = len(passes)
        short = batcher.submit([{"text": TEXTS[1], "schema": SCHEMA}])
        answered_at: list[int] = []  # passes run when the answer was set (the worker goes on at once)
        short.add_done_callback(lambda f: answered_at.append(len(passes)))
        answer = short.result(10)
        elapsed = time.monotonic() - t0
        while not answered_at:
            time.sleep(0.001)
        n_short = answered_at[0] - n0
        assert not long_future.done()
        assert_same_answers(answer, [ie(TEXTS[1], schema=SCHEMA)])
        assert_same_answers(long_future.result(120), ie(records))
    finally:
        handle.remove()
        batcher.close(30)
    assert n_short <= 2, n_short  # the pass in flight, then the next one (which holds the short row)
    assert sizes[n0 + n_short - 1] == 1  # the newcomer's quick pass: a quarter of max_batch_size=4
    assert elapsed < 2.0, elapsed  # bound: 2 passes of 4 tiny rows + 30 ms sleeps, generously
    assert long_req.windows == 4 * len(ie.preprocess(records[:1])["meta"]) and len(passes) >= long_req.windows // 4
    assert health["pending_requests"] == 1 and 0 < health["pending_windows"] < long_req.windows
    assert health["oldest_pending_s"] > 0 and health["wait_p50_s"] is not None
    stats = batcher.queue_stats()
    assert stats["pending_requests"] == 0 and stats["waits_counted"] == 2


def test_cancelled_request_is_dropped_and_counted(ie):
    records = [{"id": f"long{i}", "text": LONG, "schema": SCHEMA} for i in range(3)]
    counter = ForwardCounter(ie.model)
    started = threading.Event()

    def slow(module, args, kwargs_or_out, *rest):
        started.set()
        time.sleep(0.02)

    handle = ie.model.register_forward_hook(slow)
    batcher = DynamicBatcher(ie, max_wait_ms=0, max_batch_size=2)
    try:
        req = batcher.encode(records)
        future = batcher.enqueue(req)
        assert started.wait(10)
        assert batcher.cancel(future) and future.cancelled()
        after = batcher.submit([{"text": TEXTS[0], "schema": SCHEMA}])  # the worker goes on with others
        got = after.result(10)
    finally:
        handle.remove()
        batcher.close(30)
        counter.close()
    assert_same_answers(got, [ie(TEXTS[0], schema=SCHEMA)])
    stats = batcher.stats
    assert stats.cancelled_requests == 1
    ran = sum(counter.batch_sizes) - 1  # rows of the cancelled request that ran (minus the short request's)
    assert stats.dropped_windows == req.windows - ran and stats.dropped_windows > 0
    assert stats.requests == 1 and batcher.pending() == 0


def test_request_cost_counts_tokens_times_labels(ie):
    tok = ie.processor.tokenizer
    records = [{"id": 0, "text": TEXTS[0], "schema": SCHEMA}, {"id": 1, "text": LONG, "schema": {"ent": ["person"]}},
               {"id": 2, "text": TEXTS[1], "schema": {}, "instruction": "Who?"}]
    n = [len(tok(r["text"], add_special_tokens=False)["input_ids"]) for r in records]
    meta = ie.preprocess(records)["meta"]
    assert request_cost(meta) == n[0] * 5 + n[1] * 1 + n[2] * 1  # QA: labels count as 1


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
        # an empty label list that asks for nothing, duplicates, tag-like labels, strict types
        ({"text": "a", "schema": {"ent": []}}, 422, ["body", "schema", "ent"], "`ent` is an empty label list"),
        ({"text": "a", "schema": {"event": {}, "rel": []}}, 422, ["body", "schema", "rel"], "empty label list"),
        ({"text": "a", "schema": {"ent": ["person", "place", "person"]}}, 422, ["body", "schema", "ent"],
         "duplicate label 'person' at ent[2] (also ent[0])"),
        ({"text": "a", "schema": {"event": {"attack": ["place", "place"]}}}, 422, ["body", "schema", "event"],
         "duplicate label 'place' at event.attack[1]"),
        ({"text": "a", "schema": {"ent": ["[LM]"]}}, 422, ["body", "schema", "ent"], "special token [LM]"),
        ({"text": "a", "schema": {"rel": ["work [sep] for"]}}, 422, ["body", "schema", "rel"], "special token [SEP]"),
        ({"text": "a", "schema": {"ent": {"person": "  "}}}, 422, ["body", "schema", "ent"], "empty description"),
        ({"text": "a", "schema": SCHEMA, "return_scores": "yes"}, 422, ["body", "return_scores"], "valid boolean"),
        ({"text": "a", "schema": SCHEMA, "threshold": "0.5"}, 422, ["body", "threshold"], "valid number"),
        ({"texts": ["a", 3], "schema": SCHEMA}, 422, ["body", "texts", 1], "valid string"),
    ]
    with TestClient(app) as client:
        for body, status, loc, msg in cases:
            r = client.post("/extract", json=body)
            assert r.status_code == status, (body, r.text)
            detail = r.json()["detail"][0]
            assert detail["loc"] == loc, (body, detail)
            assert msg in detail["msg"], (body, detail)
        assert client.post("/extract", json={"texts": ["a"] * 4, "schema": SCHEMA}).status_code == 200
        # processing's records hold [] for the tasks they lack: fine beside real labels
        ok = client.post("/extract", json={"text": TEXTS[0], "schema": {**SCHEMA, "cls": [], "event": [],
                                                                          "descriptions": []}})
        assert ok.status_code == 200
        assert_same_answers(ok.json()["results"], [ie(TEXTS[0], schema=SCHEMA)])
        bad = client.post("/extract", content=b'{"text": "caf\xe9", "schema": {"ent": ["x"]}}',
                          headers={"content-type": "application/json"})
        assert bad.status_code == 400
        assert bad.json()["detail"] == [{"loc": ["body"], "type": "body_encoding", "msg": "the request body is not "
                                         "UTF-8 (byte 0xe9 at position 13); send JSON encoded as UTF-8"}]


def test_work_budget_413_names_budget_and_cost(ie):
    n_tokens = len(ie.processor.tokenizer(TEXTS[0], add_special_tokens=False)["input_ids"])
    cost = 2 * n_tokens * 5  # two records x tokens x 5 labels
    budget = cost - 7
    app = create_app(ie, ServerSettings(limits=Limits(max_request_cost=budget)))
    with TestClient(app) as client:
        r = client.post("/extract", json={"texts": TEXTS[:1] * 2, "schema": SCHEMA})
        assert r.status_code == 413
        assert r.json()["detail"][0]["loc"] == ["body"]
        msg = r.json()["detail"][0]["msg"]
        assert f"costs {cost:,} token-labels" in msg and f"7 past the budget of {budget:,} (--max-request-cost)" in msg
        assert client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA}).status_code == 200
        assert app.state.batcher.stats.requests == 1  # the refused request never reached the queue


def test_label_descriptions_pass_through(ie):
    described = {"ent": {"person": "a human being", "location": None, "organization": "a company"},
                 "rel": ["live in", "work for"]}
    listed = {**SCHEMA, "hyper_rel": [], "descriptions": [{"task": "ent", "label": "person", "description": "a human"}]}
    with TestClient(create_app(ie, ServerSettings(max_wait_ms=0))) as client:
        r = client.post("/extract", json={"text": TEXTS[0], "schema": described})
        r_listed = client.post("/extract", json={"records": [{"text": TEXTS[0], "schema": listed}]})
    assert r.status_code == 200, r.text
    assert_same_answers(r.json()["results"], [ie(TEXTS[0], schema=described)])
    assert r_listed.status_code == 200, r_listed.text
    assert_same_answers(r_listed.json()["results"], [ie({"text": TEXTS[0], "schema": listed})])
    assert isinstance(r.json()["warnings"], list)


def test_pipeline_warnings_reach_the_response(ie, monkeypatch):
    monkeypatch.setattr(ie.model.config, "trained_labels", {"ent": ["person", "organization"]}, raising=False)
    with TestClient(create_app(ie, ServerSettings(max_wait_ms=0))) as client:
        r = client.post("/extract", json={"text": TEXTS[0], "schema": {"ent": ["person", "location"]}})
        seen = client.post("/extract", json={"text": TEXTS[0], "schema": {"ent": ["person"]}})
    assert r.status_code == 200 and seen.status_code == 200
    assert r.json()["warnings"] == ["labels the model never saw in training (expect weaker answers): "
                                    "ent: ['location']"]
    assert seen.json()["warnings"] == []


def test_docs_served_offline(ie):
    with TestClient(create_app(ie)) as client:
        page = client.get("/docs").text
        redoc = client.get("/redoc").text
        js = client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert "/static-offline-docs/swagger-ui-bundle.js" in page and "/static-offline-docs/swagger-ui.css" in page
    assert "/static-offline-docs/redoc.standalone.js" in redoc
    assert "cdn" not in (page + redoc).lower() and "http" not in page.split("<body>")[1].split("openapi.json")[0]
    assert js.status_code == 200 and len(js.content) > 500_000  # the Swagger UI bundle itself


def test_help_shows_defaults_and_loads_no_model_stack():
    text = build_parser().format_help().split("\noptions:", 1)[1]
    for flag, default in [("--max-text-chars", 20000), ("--max-texts", 64), ("--max-schema-labels", 200),
                          ("--max-label-chars", 200), ("--max-request-cost", 4000000), ("--max-batch-size", 8),
                          ("--max-wait-ms", 5.0)]:
        after = text.split(f"\n  {flag} ", 1)[1].split("\n  -", 1)[0]
        assert f"(default: {default})" in " ".join(after.split()), (flag, after)
    assert server.BACKENDS == backends.BACKENDS
    code = "import sys, serving.server; sys.exit(sorted({'torch', 'transformers'} & set(sys.modules)) or 0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


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
        health = client.get("/health").json()
        assert health == {"status": "ok", "backend": "torch", "pending": 0, "queue": {
            "pending_requests": 0, "pending_windows": 0, "oldest_pending_s": 0.0, "wait_p50_s": None,
            "wait_p95_s": None, "waits_counted": 0}}
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


def test_ldnet_serve_process_drops_work_of_a_disconnected_client(model_dir):
    # one window per pass: the long request takes many passes; its client gives up after 1.5 s
    proc, url = start_server(model_dir, "--max-batch-size", "1", "--max-wait-ms", "0")
    try:
        body = {"texts": [LONG * 3] * 16, "schema": SCHEMA}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/extract", json=body, timeout=1.5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stats = httpx.get(url + "/info", timeout=5).json()["batching"]
            if stats["cancelled_requests"]:
                break
            time.sleep(0.2)
        health = httpx.get(url + "/health", timeout=5).json()
        assert stats["cancelled_requests"] == 1 and stats["dropped_windows"] > 0, stats
        assert stats["requests"] == 0 and health["pending"] == 0 and health["queue"]["pending_windows"] == 0
        # the server goes on answering
        r = httpx.post(url + "/extract", json={"text": TEXTS[0], "schema": SCHEMA}, timeout=30)
        assert r.status_code == 200
    finally:
        proc.kill()
        proc.wait(30)


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


def test_gliner2_schemas_and_output(ie):
    """A GLiNER2 schema / output_format over HTTP answers exactly what the pipeline answers (docs/gliner2.md)."""
    g2 = {"entities": {"person": "a human being", "location": {"threshold": 0.3}, "organization": None},
          "relations": {"work for": {"threshold": 0.7}, "live in": None},
          "classifications": [{"task": "kind", "labels": ["news", "chat"], "multi_label": True, "cls_threshold": 0.2}]}
    with TestClient(create_app(ie, ServerSettings(max_wait_ms=0))) as client:
        shaped = client.post("/extract", json={"texts": TEXTS[:2], "schema": g2, "output_format": "gliner2",
                                               "include_confidence": True, "include_spans": True})
        unified = client.post("/extract", json={"records": [{"text": TEXTS[0], "schema": g2}]})
        ours = client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA, "output_format": "gliner2"})
        bad = client.post("/extract", json={"text": TEXTS[0], "schema": {"entities": {"person": {"threshold": 2}}}})
        bad_key = client.post("/extract", json={"text": TEXTS[0], "schema": {"entities": ["person"], "structures":
                                                                                {"p": {"fields": []}}}})
        stray = client.post("/extract", json={"text": TEXTS[0], "schema": SCHEMA, "include_spans": True})
    assert shaped.status_code == 200, shaped.text
    expected = ie(TEXTS[:2], schema=g2, output_format="gliner2", include_confidence=True, include_spans=True)
    assert json.loads(json.dumps(expected)) == shaped.json()["results"]
    assert any(shaped.json()["results"][0]["entities"].values()), "the tiny model must find something to bite"
    assert unified.json()["results"] == json.loads(json.dumps([ie({"text": TEXTS[0], "schema": g2})]))
    assert ours.json()["results"] == json.loads(json.dumps([ie(TEXTS[0], schema=SCHEMA, output_format="gliner2")]))
    assert bad.status_code == 422 and "threshold" in bad.text
    assert bad_key.status_code == 422 and "structures: GLiNER2 JSON structures are not supported" in bad_key.text
    assert stray.status_code == 422 and "include_spans" in stray.text


def test_typed_relation_arguments(ie):
    typed = {"ent": ["person", "location", "organization"],
             "rel": {"work for": {"head": ["person"], "tail": ["organization"]}, "live in": None}}
    with TestClient(create_app(ie, ServerSettings(max_wait_ms=0))) as client:
        r = client.post("/extract", json={"texts": TEXTS, "schema": typed})
        bad = client.post("/extract", json={"text": TEXTS[0], "schema": {"ent": ["person"],
                                                                         "rel": {"work for": {"tail": ["org"]}}}})
    assert r.status_code == 200, r.text
    assert r.json()["results"] == json.loads(json.dumps(ie(TEXTS, schema=typed)))
    assert bad.status_code == 422 and "argument type 'org' of relation 'work for'" in bad.text
