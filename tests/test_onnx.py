"""ONNX export (encoder + span-graph heads + label drop) with dynamic batch / sequence axes vs PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ldnet_tiny import assert_same_answers, tiny_processor
from ldnet_tiny import decoding_model as tiny_model

from modeling_ldnet.onnx_ldnet import INPUT_NAMES, OUTPUT_NAMES, export_onnx

ort = pytest.importorskip("onnxruntime")

SCHEMA = {"ent": ["person", "location", "organization"], "rel": ["live in", "work for"]}


@pytest.fixture(scope="module")
def proc(minilm):
    return tiny_processor(minilm)


@pytest.fixture(scope="module")
def model(proc):
    return tiny_model(len(proc.tokenizer))


def run_both(model, session, ids, mask):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    logits, lhat = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    return out, logits, lhat


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_onnx_matches_pytorch(model, tmp_path, dynamo):
    path = export_onnx(model, tmp_path / "ldnet.onnx", dynamo=dynamo)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(INPUT_NAMES)
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    for inp in session.get_inputs():  # batch and sequence are symbolic
        assert all(isinstance(d, str) for d in inp.shape), inp.shape
    assert not model.training
    gen = torch.Generator().manual_seed(0)
    for batch, length in ((1, 7), (3, 29)):  # neither is the export example shape (2, 16)
        ids = torch.randint(5, 30000, (batch, length), generator=gen)
        mask = torch.ones_like(ids)
        mask[-1, length - 4 :] = 0  # padding in the last record
        out, logits, lhat = run_both(model, session, ids, mask)
        assert logits.shape == (batch, 3, length, length) and lhat.shape == (batch, length)
        np.testing.assert_allclose(logits, out.logits.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(lhat, out.label_drop_probs.numpy(), atol=1e-4, rtol=0)


def test_onnx_logits_decode_like_pytorch(model, proc, tmp_path):
    path = export_onnx(model, tmp_path / "ldnet.onnx", dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    texts = ["Jerry Smith lives in New York and works for Acme Corp .", "Tom visited Paris ."]
    enc = proc(text=texts, schema=SCHEMA, instruction="Find entities and relations.", return_tensors="pt")
    out, logits, _ = run_both(model, session, enc["input_ids"], enc["attention_mask"])
    from_torch = proc.post_process_extraction(out.logits, enc, return_scores=True)
    from_onnx = proc.post_process_extraction(torch.from_numpy(logits), enc, return_scores=True)
    assert from_torch[0]
    assert_same_answers(from_onnx, from_torch)
