"""Per-channel decode thresholds fitted on dev data (issue #14): exact search, stored in the config, used by the
pipeline and the trainer."""

import ldnet_tiny as t
import pytest
import torch
from transformers import pipeline

from modeling_ldnet import LDNetModel, LDNetProcessor
from trainers.calibration import cache_logits, calibrate_thresholds, decode_cached
from trainers.data import task_fields
from trainers.scoring import compute_uie_metrics, flatten


@pytest.fixture(scope="module")
def setup():
    proc = t.processor(max_length=64)
    model = t.tiny_model(proc, seed=3, spread=40.0).eval()
    records = t.make_records(12, seed=5, split="dev")
    return proc, model, records


def _score(proc, cached, records, th, metric):
    preds = decode_cached(proc, cached, len(records), th)
    refs = [r["ans"] for r in records]
    return flatten(compute_uie_metrics(preds, refs, tasks=task_fields(records)))[metric]


def test_calibration_is_an_exact_coordinate_ascent(setup):
    proc, model, records = setup
    model.config.decode_channel_thresholds = None
    grid = (0.05, 0.2, 0.5, 0.8, 0.95)
    res = calibrate_thresholds(model, proc, records, grid=grid, rounds=1, apply=False, metric="general_f1")
    cached = cache_logits(model, proc, records)
    # replay the search by hand: channel 0, then 1, then 2, first strict improvement kept
    best = [0.5, 0.5, 0.5]
    best_s = _score(proc, cached, records, tuple(best), res.metric)
    assert res.before == pytest.approx(best_s)
    for c in range(3):
        for v in grid:
            if v == best[c]:
                continue
            cand = list(best)
            cand[c] = v
            s = _score(proc, cached, records, tuple(cand), res.metric)
            if s > best_s:
                best, best_s = cand, s
    assert res.thresholds == best and res.after == pytest.approx(best_s)
    assert res.thresholds == [0.95, 0.95, 0.2] and res.after > res.before  # this grid moves every channel
    assert model.config.decode_channel_thresholds is None  # apply=False changes nothing


def test_calibrated_thresholds_are_saved_and_used_by_the_pipeline(setup, tmp_path):
    proc, model, records = setup
    proc.save_pretrained(tmp_path)  # saved before calibration: threshold 0.5 in processor_config.json
    res = calibrate_thresholds(model, proc, records, grid=(0.05, 0.5, 0.8), rounds=1, metric="ent_f1")
    assert model.config.decode_channel_thresholds == res.thresholds and proc.threshold == tuple(res.thresholds)
    assert res.thresholds != [0.5, 0.5, 0.5]  # else the pipeline check below proves nothing
    model.save_pretrained(tmp_path)
    loaded = LDNetModel.from_pretrained(tmp_path)
    assert loaded.config.decode_channel_thresholds == res.thresholds
    saved_proc = LDNetProcessor.from_pretrained(tmp_path)
    assert saved_proc.threshold == 0.5
    # local classes (trust_remote_code would re-register "universal-ie" for the rest of the test session)
    ie = pipeline("universal-ie", model=loaded.eval(), processor=saved_proc, device="cpu")
    assert ie.processor.threshold == tuple(res.thresholds)
    rec = dict(records[0], ans={})
    got = ie([rec], return_scores=False)[0]
    enc = proc([rec], return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    want = proc.post_process_extraction(logits, enc, threshold=tuple(res.thresholds))[0]
    assert {k: v for k, v in got.items() if v and not k.startswith("_")} == {k: v for k, v in want.items() if v}


def test_calibration_needs_gold(setup):
    proc, model, records = setup
    with pytest.raises(ValueError, match="gold"):
        calibrate_thresholds(model, proc, [dict(r, ans={}) for r in records])
