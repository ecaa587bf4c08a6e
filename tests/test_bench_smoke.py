"""Smoke test of the bench/ scripts: each core function runs on a tiny configuration and returns the expected keys.

No timing assertions (the benches report ratios measured interleaved; see bench/RESULTS.md).
"""

import logging
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_result_files(tmp_path, monkeypatch):
    """The core functions return dicts; keep any file they might write out of the repository."""
    import _common

    monkeypatch.setattr(_common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(_common, "PLOTS_DIR", tmp_path / "plots")
    # the bench scripts quieten the package logger (setLevel ERROR): restore it for the tests that follow
    pkg_logger = logging.getLogger("modeling_ldnet")
    level = pkg_logger.level
    yield
    pkg_logger.setLevel(level)


def ner_records(n, seed=0):
    from speed_inference import fallback_source

    return fallback_source(n, seed)


def test_speed_inference_core():
    import speed_inference as si
    import torch

    threads = torch.get_num_threads()
    res = si.run(configs=[(2, 40)], records_per_config={2: 2}, repeats=1, decoder_repeats=1,
                 decoder_records=4, noise=[(8.0, 1.0)], finetune_steps=0, with_untrained=False, skip_memory=True,
                 source=ner_records(40), reference_timeout_s=10)
    torch.set_num_threads(threads)
    assert {"throughput", "decoder", "goals"} <= set(res)
    t = res["throughput"][0]
    assert {"records_per_s", "ratio_ldnet_path_vs_encoder", "split_fraction", "mean_tokens"} <= set(t)
    assert set(t["split_fraction"]) == {"encode", "forward", "decode"}
    d = res["decoder"][0]
    assert d["identical_to_plain"] is True and d["speedup_vs_plain"] > 0 and "speedup_vs_mirror" in d
    paths = si.plot(res, "smoke_speed_inference")
    assert all(p.is_file() for p in paths)


def test_speed_inference_memory_child():
    import speed_inference as si
    import torch

    threads = torch.get_num_threads()
    row = si.memory_child("ldnet_forward", 32, 1, 1)
    torch.set_num_threads(threads)
    assert {"peak_delta_mib", "rss_before_mib", "length", "mode"} <= set(row)
    assert row["peak_delta_mib"] >= 0


def test_speed_train_core():
    import speed_train as st
    import torch

    threads = torch.get_num_threads()
    res = st.run(batch_size=2, total_tokens=40, repeats=1, warmup=0, source=ner_records(40))
    torch.set_num_threads(threads)
    assert {"ratio_ldnet_vs_token_cls", "split_median_s", "seconds", "batch_shape"} <= set(res)
    assert set(res["split_median_s"]) == {"ldnet", "token_cls"}
    assert st.plot(res, "smoke_speed_train").is_file()


def test_bio_roundtrip_and_accuracy_core():
    import accuracy_conll03 as ac
    import torch

    rec = ner_records(1)[0]
    words, tags = ac.record_to_bio(rec, ac.ENT_TYPES)
    assert " ".join(words) == rec["text"]
    assert ac.bio_to_ans(words, tags)["ent"] == sorted(rec["ans"]["ent"], key=lambda e: e["span"])
    threads = torch.get_num_threads()
    recs = ner_records(6)
    res = ac.run(recs[:4], recs[4:], max_minutes=None, max_steps=1, batch_size=2, warmup_steps=0)
    torch.set_num_threads(threads)
    s = res["summary"]
    assert {"ldnet_entity_strict_f1", "token_cls_seqeval_f1", "token_cls_uie_ent_f1"} <= set(s)
    assert s["ldnet_steps"] == 1 and s["token_cls_steps"] == 1
    # seqeval entity F1 and the UIE entity F1 of the same BIO predictions count the same unit
    assert s["token_cls_seqeval_f1"] == pytest.approx(s["token_cls_uie_ent_f1"], abs=1e-9)


def test_accuracy_halves_side_by_side_and_merge_seeds(tmp_path):
    """--only runs one model (the other runs beside it in a second process); --merge_seeds averages the halves."""
    import json

    import accuracy_conll03 as ac
    import torch

    threads = torch.get_num_threads()
    recs = ner_records(14)  # 10 test sentences of different lengths: a length-grouping eval sampler reorders them
    assert len({len(r["text"]) for r in recs[4:]}) > 5
    paths = []
    for seed, only in [(1, "ldnet"), (1, "token_cls"), (2, "ldnet")]:
        res = ac.run(recs[:4], recs[4:], max_minutes=None, max_steps=1, batch_size=2, warmup_steps=0, seed=seed,
                     only=only, scheduler="linear", group_by_length=True)
        torch.set_num_threads(threads)
        assert set(res) == {only, "summary"} and res["summary"]["seed"] == seed
        assert "delta_f1_ldnet_minus_token_cls" not in res["summary"]
        p = tmp_path / f"{only}-{seed}.json"
        p.write_text(json.dumps({"summary": res["summary"]}))
        paths.append(str(p))
    f1 = {n: json.loads(open(p).read())["summary"] for n, p in zip(("l1", "t1", "l2"), paths)}
    m = ac.merge_seeds(paths)
    want_l = [100 * f1["l1"]["ldnet_entity_strict_f1"], 100 * f1["l2"]["ldnet_entity_strict_f1"]]
    assert m["ldnet"]["seeds"] == [1, 2] and m["ldnet"]["f1"] == pytest.approx(want_l)
    assert m["ldnet"]["mean"] == pytest.approx(sum(want_l) / 2)
    assert m["ldnet"]["std"] == pytest.approx(abs(want_l[0] - want_l[1]) / 2)
    assert m["token_cls"]["seeds"] == [1] and m["token_cls"]["std"] == 0.0
    assert m["delta_mean"] == pytest.approx(m["ldnet"]["mean"] - 100 * f1["t1"]["token_cls_seqeval_f1"])


def test_ablation_core():
    import random

    import ablation_label_drop as ab
    import torch
    from ldnet_tiny import make_record

    rng = random.Random(0)
    recs = [make_record(i, rng) for i in range(5)]
    threads = torch.get_num_threads()
    res = ab.run({"tiny": (recs[:3], recs[3:])}, settings=["off", "prob"], max_minutes=None, max_steps=1,
                 batch_size=2, warmup_steps=0)
    torch.set_num_threads(threads)
    rows = res["results"]["tiny"]
    assert set(rows) == {"off", "prob"}
    assert all({"rel_strict_f1", "ent_f1", "steps"} <= set(r) for r in rows.values())
    assert rows["off"]["config"] == {"use_label_drop": False}
    assert ab.plot(res, "smoke_ablation").is_file()
    # runs made in separate processes (one per dataset) merge into one table; unlike budgets refuse to merge
    other = {"results": {"tiny2": rows}, "summary": dict(res["summary"], records={"tiny2": {"train": 3, "test": 2}})}
    merged = ab.merge_results([res, other])
    assert list(merged["results"]) == ["tiny", "tiny2"] and merged["results"]["tiny2"] is rows
    assert set(merged["summary"]["records"]) == {"tiny", "tiny2"} and merged["summary"]["max_steps"] == 1
    with pytest.raises(ValueError, match="max_steps differs"):
        ab.merge_results([res, {"results": {"tiny3": rows}, "summary": dict(res["summary"], max_steps=2)}])
    with pytest.raises(ValueError, match="appears twice"):
        ab.merge_results([res, res])


def test_pretrain_protocol_collects_run_folders(tmp_path):
    import json

    import pretrain_protocol as pp

    def write(path, obj):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj))

    hist = [{"loss": 5.0, "step": 25, "epoch": 0.1}, {"loss": 2.5, "step": 50, "epoch": 0.2}]
    write(tmp_path / "pt/pretrain_info.json", {"recipe_file": "r.json", "corpora": [{"name": "conll03", "used": 7}],
                                                "metrics": {"train_records": 7, "train_runtime": 120.0,
                                                            "stopped_by_time_limit_at_step": 50}})
    write(tmp_path / "pt/checkpoint-50/trainer_state.json", {"log_history": hist})  # no root copy: read the last
    for name, f1 in (("ft_pt", 0.5), ("ft_raw", 0.25)):
        write(tmp_path / name / "all_results.json", {"test_rel_strict_f1": f1, "test_rel_strict_precision": f1,
                                                     "test_rel_strict_recall": f1, "epoch": 2.0,
                                                     "train_runtime": 60.0})
        write(tmp_path / name / "trainer_state.json", {"log_history": [
            {"eval_rel_strict_f1": f1 / 2, "epoch": 1.0}, {"eval_rel_strict_f1": f1, "epoch": 2.0}]})
    write(tmp_path / "fs/summary.json", {"metric": "test_rel_strict_f1", "seeds": [1, 2],
                                         "summary": {"5": {"test_rel_strict_f1": {"mean": 0.2, "std": 0.1}}},
                                         "runs": [{"k": 5, "seed": s, "train_records": 9, "epochs_run": 3.0,
                                                   "test": {"test_rel_strict_f1": v}} for s, v in ((1, .1), (2, .3))]})
    write(tmp_path / "zs/zeroshot_results.json", {"model": "pt", "data": "twitter2017", "split": "test", "records": 3,
                                                  "in_pretraining_mix": False, "seen_labels": ["person"],
                                                  "unseen_labels": [], "metrics": {"test_ent_f1": 0.4}})
    args = ["--pretrain", str(tmp_path / "pt"), "--ft_pt", str(tmp_path / "ft_pt"), "--ft_raw",
            str(tmp_path / "ft_raw"), "--fewshot", str(tmp_path / "fs"), "--zeroshot", str(tmp_path / "zs")]
    res = pp.main(args)
    assert res["pretrain"]["loss_curve"] == [(25, 5.0), (50, 2.5)] and res["pretrain"]["steps"] == 50
    assert res["ft_pt"]["dev_best"] == 0.5 and res["ft_raw"]["test"]["test_rel_strict_f1"] == 0.25
    assert [r["test"] for r in res["fewshot"]["per_seed"]] == [0.1, 0.3]
    table = "\n".join(pp.markdown(res))
    assert "**50.00**" in table and "**25.00**" in table and "**20.00 ± 10.00**" in table and "**40.00**" in table
    with pytest.raises(FileNotFoundError, match="label_order.json"):
        pp.main(args + ["--label_order", str(tmp_path / "label_order.json")])


def test_threshold_topk_bench_compares_identical_links(tmp_path, shared_data, monkeypatch):
    import ldnet_tiny
    import threshold_topk

    monkeypatch.setenv("LDNET_SHARED_DATA", str(shared_data))
    ckpt = ldnet_tiny.save_tiny_checkpoint(tmp_path / "ckpt", max_length=256)
    res = threshold_topk.main(["--model", str(ckpt), "--records", "6", "--batch_size", "3", "--repeats", "1"])
    assert res["identical"] and res["records"] == 6 and len(res["shapes"]) == 2
    assert res["max_nnw_positives_per_row"] > 16  # an untrained model: the top-k path itself is exercised
    assert set(res["ms_per_record"]) == {"current", "always_topk"}


def test_fast_start_merge_groups_by_effective_config(tmp_path):
    """bench/fast_start.py --merge: one row per (dataset, effective config), mean ± population std over seeds."""
    import json

    import fast_start
    runs = []
    for name, eff, f1s in (("ld", {"use_label_drop": True, "label_drop_mode": "log_odds"}, (0.5, 0.7)),
                           ("off", {"use_label_drop": False, "label_drop_mode": "log_odds"}, (0.4,))):
        for seed, f1 in enumerate(f1s, 1):
            d = tmp_path / f"{name}-{seed}"
            d.mkdir()
            (d / "result.json").write_text(json.dumps({"dataset": "conll04", "config": {}, "effective": eff,
                                                       "seed": seed, "eval_ent_f1": f1, "eval_rel_strict_f1": f1}))
            runs.append(str(d))
    table = fast_start.main(["--merge", *runs, "--out", str(tmp_path / "t.md")])["table"]
    rows = table.splitlines()[2:]
    assert len(rows) == 2
    assert '"label_drop_mode": "log_odds"' in rows[0] and "| 1,2 | 60.0 ± 10.0 | 60.0 ± 10.0 |" in rows[0]
    # without a gate its settings are dropped from the key
    assert "label_drop_mode" not in rows[1] and "| 1 | 40.0 ± 0.0 |" in rows[1]


def test_generalist_zeroshot_scoring_and_seen_types(tmp_path):
    import json

    import generalist

    gold = [{"ent": [{"type": "person", "span": [0, 4]}, {"type": "disease", "span": [9, 14]}]}, {"ent": []}]
    pred = [{"ent": [{"type": "person", "span": [0, 4]}, {"type": "disease", "span": [9, 13]}]},
            {"ent": [{"type": "person", "span": [2, 5]}]}]
    assert generalist.score_entities(gold, pred) == {"p": 0.3333, "r": 0.5, "f1": 0.4, "tp": 1, "pred": 3, "gold": 2}
    assert generalist.score_entities(gold, pred, {"disease"})["f1"] == 0.0
    assert generalist.score_entities(gold, pred, {"person"})["r"] == 1.0
    # seen types: config.trained_labels first, else pretrain_info.json's label pool, else unknown
    (tmp_path / "config.json").write_text(json.dumps({"trained_labels": {"ent": ["person"], "rel": ["work for"]}}))
    assert generalist.trained_labels(tmp_path) == {"person", "work for"}
    (tmp_path / "config.json").write_text("{}")
    assert generalist.trained_labels(tmp_path) is None
    (tmp_path / "pretrain_info.json").write_text(json.dumps({"label_pool": {"lists": {"ner": {"ent": ["gene"]}}}}))
    assert generalist.trained_labels(tmp_path) == {"gene"}
    assert set(generalist.DESCRIPTIONS) >= {"person", "location", "corporation", "product", "creative work", "group",
                                            "disease", "organization", "miscellaneous"}


def test_cooccurrence_counts_unrelated_pairs_exactly():
    from cooccurrence import at_threshold, cooccurrence_counts, relation_prf

    def ent(s, e):
        return {"type": "x", "text": "t", "span": [s, e]}

    def rel(h, t, name="r", score=None):
        r = {"relation": name, "head": {"text": "t", "span": list(h)}, "tail": {"text": "t", "span": list(t)}}
        return r if score is None else {**r, "score": score}

    a, b, c = (0, 1), (2, 3), (4, 5)
    gold = [{"ent": [ent(*a), ent(*b)], "rel": [rel(a, b)]},  # 1 unrelated ordered pair: b -> a
            {"ent": [ent(*a), ent(*b), ent(*c)]}]  # hard: 3 entities, no relation: 6 pairs
    pred = [{"rel": [rel(a, b, score=0.9), rel(b, a, score=0.3)]}, {"rel": [rel(a, c, score=0.6)]}]
    counts = cooccurrence_counts(gold, pred)
    assert {k: counts[k] for k in ("pairs", "fp_pairs", "hard_sentences", "hard_pairs", "hard_fp_pairs")} == {
        "pairs": 7, "fp_pairs": 2, "hard_sentences": 1, "hard_pairs": 6, "hard_fp_pairs": 1}
    assert counts["fpr"] == 2 / 7 and counts["hard_fpr"] == 1 / 6
    assert cooccurrence_counts(gold, at_threshold(pred, 0.5))["fp_pairs"] == 1  # b -> a (0.3) filtered
    assert relation_prf(gold, pred) == {"p": 1 / 3, "r": 1.0, "f1": 0.5}


def test_cooccurrence_typed_schema_and_seed_summary():
    import pytest
    from cooccurrence import ARG_TYPES, summarise, typed_schema

    schema = {"ent": ["people", "location"], "rel": ["live in", "kill"]}
    assert typed_schema(schema, ARG_TYPES["conll04"]) == {
        "ent": ["people", "location"],
        "rel": {"live in": {"head": ["people"], "tail": ["location"]}, "kill": {"head": ["people"], "tail": ["people"]}}}
    with pytest.raises(KeyError, match="'born in'"):
        typed_schema({"ent": [], "rel": ["born in"]}, ARG_TYPES["conll04"])
    runs = {"ld": [{"fpr": 0.1, "hard_fpr": 0.0, "rel": {"p": 0.5, "r": 0.5, "f1": 0.5}},
                   {"fpr": 0.3, "hard_fpr": 0.2, "rel": {"p": 0.7, "r": 0.7, "f1": 0.7},
                    "typed": {"fpr": 0.0, "rel": {"p": 1.0, "r": 0.5, "f1": 2 / 3}}}],
            "nold": [{"fpr": 0.4, "hard_fpr": 0.4, "rel": {"p": 0.2, "r": 0.2, "f1": 0.2}}]}
    row = summarise(runs, "ld")
    assert row["fpr"] == pytest.approx(0.2) and row["fpr_std"] == pytest.approx(0.1)
    assert row["rel_f1"] == pytest.approx(0.6) and row["typed_rel_p"] == 1.0 and row["seeds"] == 2
    assert row["fpr_nold"] == 0.4 and row["fpr_std_nold"] == 0.0 and row["seeds_nold"] == 1
    assert "typed_rel_p_nold" not in row and "channel_rel_f1" not in row
