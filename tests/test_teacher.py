"""Teacher scores: per-record storage (SPEC §8.3/8.4 regressions), store lookups, windows, shards, CLI."""

import json

import ldnet_tiny as T
import pytest
import torch

from trainers import (
    TEACHER_HASH_MISMATCH,
    TEACHER_MISSING,
    TEACHER_OK,
    LDNetDataCollator,
    TeacherScoreStore,
    compute_teacher_scores,
    input_hash,
    tokenize_dataset,
)
from trainers.cli import teacher_scores_main


@pytest.fixture(scope="module")
def proc():
    return T.processor()


def _varied_records(n):
    recs = T.make_records(n, seed=21)
    for i, r in enumerate(recs):  # make lengths differ so batches are padded
        if i % 2:
            r["text"] = r["text"][:-1] + "and that is all we know ."
    return recs


def test_each_record_stored_under_its_own_id_with_its_own_scores(tmp_path, proc):
    """Reference bug (SPEC §8.3): all records of a batch were stored under the first id. Here every record gets its
    own key and exactly the scores a forward pass of that record alone produces (cropped, no padding: §8.4)."""
    model = T.tiny_model(proc, seed=1).eval()
    records = _varied_records(7)
    manifest = compute_teacher_scores(model, proc, records, tmp_path / "t", batch_size=4)
    store = TeacherScoreStore(tmp_path / "t")
    assert len(store) == manifest["num_entries"] == 7
    assert set(store.keys()) == {r["id"] for r in records}
    lengths = set()
    stored = {}
    for r in records:
        enc = proc(r, return_tensors="pt")
        n = int(enc["input_ids"].shape[1])
        with torch.no_grad():
            alone = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0]
        t = store.get(r["id"])
        assert t.dtype == torch.float16 and tuple(t.shape) == (3, n, n)
        torch.testing.assert_close(t.float(), alone, rtol=2e-3, atol=2e-3)
        entry = store.entries[r["id"]]
        assert entry["length"] == n and entry["input_hash"] == input_hash(enc["input_ids"][0].tolist())
        assert entry["record_id"] == r["id"]
        status, t2 = store.lookup(r["id"], enc["input_ids"][0].tolist())
        assert status == TEACHER_OK and torch.equal(t2, t)
        lengths.add(n)
        stored[r["id"]] = t
    assert len(lengths) > 1  # the batches really were padded
    ids = list(stored)
    for a in ids:  # no two records share one tensor (the reference's symptom)
        for b in ids:
            if a != b and stored[a].shape == stored[b].shape:
                assert not torch.equal(stored[a], stored[b])


def test_batch_composition_does_not_change_scores(tmp_path, proc):
    model = T.tiny_model(proc, seed=2).eval()
    records = _varied_records(5)
    compute_teacher_scores(model, proc, records, tmp_path / "b1", batch_size=1)
    compute_teacher_scores(model, proc, records, tmp_path / "b5", batch_size=5)
    s1, s5 = TeacherScoreStore(tmp_path / "b1"), TeacherScoreStore(tmp_path / "b5")
    for r in records:
        torch.testing.assert_close(s1.get(r["id"]).float(), s5.get(r["id"]).float(), rtol=2e-3, atol=2e-3)


def test_missing_and_hash_mismatch_are_counted(tmp_path, proc):
    model = T.tiny_model(proc, seed=3).eval()
    records = T.make_records(4, seed=22)
    teacher_view = [dict(r) for r in records[:3]]
    teacher_view[2]["schema"] = {"ent": ["person", "location", "organization"], "rel": ["work for", "live in"]}
    compute_teacher_scores(model, proc, teacher_view, tmp_path / "t")
    store = TeacherScoreStore(tmp_path / "t")
    ds = tokenize_dataset(proc, records)
    batch = LDNetDataCollator(proc, teacher_store=store)([ds[i] for i in range(4)])
    assert batch["teacher_status"].tolist() == [TEACHER_OK, TEACHER_OK, TEACHER_HASH_MISMATCH, TEACHER_MISSING]
    assert batch["teacher_mask"].tolist() == [True, True, False, False]
    assert (batch["teacher_logits"][2:] == 0).all()
    assert store.counts == {"ok": 2, "hash_mismatch": 1, "missing": 1}
    assert store.lookup("nope")[0] == TEACHER_MISSING
    assert store.lookup(records[0]["id"], [1, 2, 3])[0] == TEACHER_HASH_MISMATCH


def test_windowed_records_and_shards(tmp_path):
    proc = T.processor(max_length=32, window_stride=4)
    model = T.tiny_model(proc, seed=4).eval()
    long = T.make_records(1, seed=23)[0]
    long = dict(long, id="long", text=long["text"] + " " + " ".join(["filler words here ."] * 8))
    records = [long] + T.make_records(3, seed=24)
    manifest = compute_teacher_scores(model, proc, records, tmp_path / "t", batch_size=2, max_shard_bytes=1)
    assert len(manifest["shards"]) == manifest["num_entries"] > 4  # one tensor per shard here
    store = TeacherScoreStore(tmp_path / "t", max_cached_shards=2)
    assert "long" in store and "long#1" in store
    ds = tokenize_dataset(proc, records)
    assert [k for k in ds["teacher_key"] if k.startswith("long")][:2] == ["long", "long#1"]
    batch = LDNetDataCollator(proc, teacher_store=store)([ds[i] for i in range(len(ds))])
    assert batch["teacher_mask"].all()
    for b in range(len(ds)):
        n = len(ds[b]["input_ids"])
        torch.testing.assert_close(batch["teacher_logits"][b, :, :n, :n], store.get(ds[b]["teacher_key"]).float())


def test_duplicate_ids_are_refused(tmp_path, proc):
    recs = T.make_records(2, seed=25)
    recs[1]["id"] = recs[0]["id"]
    with pytest.raises(ValueError, match="duplicate key"):
        compute_teacher_scores(T.tiny_model(proc), proc, recs, tmp_path / "t")


def test_teacher_scores_cli(tmp_path):
    ckpt = T.save_tiny_checkpoint(tmp_path / "ckpt")
    data = tmp_path / "data"
    T.write_jsonl(data / "train.jsonl", T.make_records(5, seed=26))
    T.write_jsonl(data / "dev.jsonl", T.make_records(2, seed=27, split="dev"))
    manifest = teacher_scores_main(
        ["--model", str(ckpt), "--data", str(data), "--split", "train", "--out", str(tmp_path / "t"), "--device", "cpu"]
    )
    assert manifest["num_entries"] == 5 and manifest["split"] == "train"
    on_disk = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert set(on_disk["entries"]) == {f"tiny.train.{i}" for i in range(5)}
    store = TeacherScoreStore(tmp_path / "t")
    assert all(store.get(k).shape[0] == 3 for k in store.entries)
    # a single file works too
    m2 = teacher_scores_main(["--model", str(ckpt), "--data", str(data / "dev.jsonl"), "--out", str(tmp_path / "t2")])
    assert m2["num_entries"] == 2
