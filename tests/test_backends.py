"""Serving backends: the same pipeline with an onnxruntime forward pass (fp32 export, dynamic int8 quantization)."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest
import torch
from _serving import SCHEMA, TEXTS, save_tiny_model
from fastapi.testclient import TestClient
from ldnet_tiny import assert_same_answers

from serving.backends import FP32_NAME, INT8_NAME, OnnxLDNetModel, load_pipeline
from serving.server import create_app

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

LONG = " ".join(f"word{i}" if i % 9 else "Alice Brown" for i in range(70))  # > max_length: windows


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, minilm):
    return save_tiny_model(tmp_path_factory.mktemp("backends") / "tiny", minilm)


@pytest.fixture(scope="module")
def torch_ie(model_dir):
    return load_pipeline(model_dir, "torch")


@pytest.fixture(scope="module")
def onnx_ie(model_dir):
    return load_pipeline(model_dir, "onnx", threads=1)


def test_onnx_backend_equals_torch(torch_ie, onnx_ie, model_dir):
    assert isinstance(onnx_ie.model, OnnxLDNetModel) and onnx_ie.backend == "onnx"
    assert onnx_ie.model.path == model_dir / "onnx" / FP32_NAME
    inputs = [*TEXTS, LONG]
    expected = torch_ie(inputs, schema=SCHEMA, batch_size=3)
    assert expected[0]["ent"] and expected[0]["rel"]
    assert_same_answers(onnx_ie(inputs, schema=SCHEMA, batch_size=3), expected)
    assert_same_answers(onnx_ie(TEXTS[0], schema=SCHEMA, threshold=0.9), torch_ie(TEXTS[0], schema=SCHEMA, threshold=0.9))


def test_int8_backend_quantized_and_close(torch_ie, model_dir):
    ie8 = load_pipeline(model_dir, "onnx-int8", threads=1)
    path = model_dir / "onnx" / INT8_NAME
    assert ie8.model.path == path
    graph = onnx.load(str(path)).graph
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 8, "encoder and head MatMul weights are stored as int8"
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {n.op_type for n in graph.node}
    got, expected = ie8(TEXTS, schema=SCHEMA), torch_ie(TEXTS, schema=SCHEMA)
    # int8 moves link probabilities a little (this random model's logits are spread x40, so a few boundary links
    # flip); most items must stay, with close scores (the F1 cost on a trained model: bench/onnx_backend.py)
    g, e = items(got), items(expected)
    assert len(g & e) >= 0.8 * len(g | e), (len(g & e), len(g | e))
    gs, es = item_scores(got), item_scores(expected)
    assert all(abs(gs[k] - es[k]) < 0.05 for k in g & e)


def _key(i: int, task: str, item: dict) -> tuple:
    return (i, task, json.dumps({k: v for k, v in item.items() if k != "score"}, sort_keys=True))


def items(answers: list[dict]) -> set:
    return {_key(i, t, x) for i, a in enumerate(answers) for t, xs in a.items() for x in xs}


def item_scores(answers: list[dict]) -> dict:
    return {_key(i, t, x): x["score"] for i, a in enumerate(answers) for t, xs in a.items() for x in xs}


def test_export_cached_and_refreshed(model_dir, onnx_ie):
    fp32 = model_dir / "onnx" / FP32_NAME
    first = fp32.stat().st_mtime_ns
    load_pipeline(model_dir, "onnx")
    assert fp32.stat().st_mtime_ns == first  # reused
    weights = model_dir / "model.safetensors"
    before = weights.stat()
    later = time.time() + 5
    os.utime(weights, (later, later))  # newer weights: the export is stale
    try:
        load_pipeline(model_dir, "onnx")
    finally:  # a weights file dated in the future would make every later export in this module stale
        os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert fp32.stat().st_mtime_ns > first


def test_onnx_refuses_images_and_bad_backend(onnx_ie, model_dir):
    ids = torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="text-only"):
        onnx_ie.model(input_ids=ids, attention_mask=ids, pixel_values=torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="backend must be one of"):
        load_pipeline(model_dir, "tensorrt")


def test_server_on_onnx_backend(onnx_ie, torch_ie):
    with TestClient(create_app(onnx_ie)) as client:
        r = client.post("/extract", json={"texts": TEXTS, "schema": SCHEMA})
        assert client.get("/health").json()["backend"] == "onnx"
    assert r.status_code == 200 and r.json()["backend"] == "onnx"
    assert_same_answers(r.json()["results"], torch_ie(TEXTS, schema=SCHEMA))


def test_window_stride_override(model_dir, torch_ie):
    ie = load_pipeline(model_dir, window_stride=4)
    assert ie.processor.window_stride == 4 and torch_ie.processor.window_stride == 8  # a fresh processor each load
    assert_same_answers(ie(LONG, schema=SCHEMA), torch_ie(LONG, schema=SCHEMA, window_stride=4))
    with pytest.raises(ValueError, match=r"window_stride must be in \[0, 64\)"):
        load_pipeline(model_dir, window_stride=64)


def test_package_class_whatever_is_registered(model_dir, torch_ie):
    """A trust_remote_code load registers the folder's copy under ``universal-ie``; the library's loaders
    (server, extraction, spaCy, Ray) must still build this package's class on this package's code."""
    from transformers.pipelines import PIPELINE_REGISTRY

    from modeling_ldnet import UniversalIEPipeline
    from serving.extract import load_pipeline as extract_pipeline

    class Foreign(UniversalIEPipeline):
        pass

    PIPELINE_REGISTRY.register_pipeline("universal-ie", pipeline_class=Foreign, pt_model=type(torch_ie.model))
    for ie in (load_pipeline(model_dir), extract_pipeline(model_dir)):
        assert type(ie) is UniversalIEPipeline
        assert_same_answers(ie(TEXTS, schema=SCHEMA), torch_ie(TEXTS, schema=SCHEMA))


def test_exports_log_one_line_and_onnxruntime_stays_quiet(model_dir, tmp_path, caplog):
    out = tmp_path / "exports"
    with caplog.at_level(logging.INFO):
        load_pipeline(model_dir, "onnx-int8", threads=1, onnx_dir=out)
    ort_records = [r for r in caplog.records if f"{os.sep}onnxruntime{os.sep}" in r.pathname]
    ours = [r for r in caplog.records if r.name == "serving.backends"]
    assert ort_records == []
    assert len(ours) == 1
    total = sum(p.stat().st_size for p in out.iterdir())
    msg = ours[0].getMessage()
    assert str(out) in msg and f"{FP32_NAME} ({(out / FP32_NAME).stat().st_size:,} bytes)" in msg
    assert f"{INT8_NAME} ({(out / INT8_NAME).stat().st_size:,} bytes)" in msg and f"({total:,} bytes in all" in msg
    caplog.clear()
    with caplog.at_level(logging.INFO):
        load_pipeline(model_dir, "onnx-int8", threads=1, onnx_dir=out)  # cached: nothing written, nothing said
    assert [r for r in caplog.records if r.name == "serving.backends"] == []
    # verbose: onnxruntime's quantizer logs as it did (the filter is what keeps it quiet)
    (out / INT8_NAME).unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        load_pipeline(model_dir, "onnx-int8", threads=1, onnx_dir=out, verbose_onnxruntime=True)
    assert any(f"{os.sep}onnxruntime{os.sep}" in r.pathname for r in caplog.records)
