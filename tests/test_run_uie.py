"""examples/run_uie.py (= ldnet-train): outputs, resume, teacher -> student, and 1 vs 2 processes (gloo)."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import ldnet_tiny as T
import pytest

from trainers.cli import teacher_scores_main, train_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_uie")
    ckpt = T.save_tiny_checkpoint(root / "ckpt")
    proc = T.processor()
    data = root / "data"
    T.write_jsonl(data / "train.jsonl", T.equal_length_records(proc, 16, seed=31))
    T.write_jsonl(data / "dev.jsonl", T.make_records(6, seed=32, split="dev"))
    T.write_jsonl(data / "test.jsonl", T.make_records(5, seed=33, split="test"))
    return root, ckpt, data


COMMON = [
    "--learning_rate", "1e-3", "--head_learning_rate", "1e-2", "--logging_steps", "1", "--disable_tqdm", "true",
    "--report_to", "none", "--dataloader_pin_memory", "false",
]


def test_outputs_resume_and_student(setup):
    root, ckpt, data = setup
    out = root / "teacher"
    base = ["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--output_dir", str(out), "--use_cpu",
            "--per_device_train_batch_size", "4", "--eval_strategy", "steps", "--eval_steps", "2",
            "--save_strategy", "steps", "--save_steps", "2", *COMMON]
    res = train_main([*base, "--max_steps", "4", "--load_best_model_at_end"])
    for key in ("train_loss", "eval_rel_strict_f1", "eval_ent_f1", "eval_loss", "test_rel_strict_f1", "test_ent_f1"):
        assert key in res, key
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and state["best_model_checkpoint"] is not None
    ckpt_state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    stopper = ckpt_state["stateful_callbacks"]["EarlyStoppingCallback"]  # patience-3 early stopping is active
    assert stopper["args"]["early_stopping_patience"] == 3
    preds = [json.loads(line) for line in (out / "test_predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [f"tiny.test.{i}" for i in range(5)] and all("ans" in p for p in preds)
    for name in ("train_results.json", "eval_results.json", "test_results.json", "all_results.json"):
        assert (out / name).is_file(), name
    # the saved folder is a complete LDNet checkpoint (model + processor) and has the F1 as selection metric
    assert (out / "processor_config.json").is_file() and (out / "model.safetensors").is_file()
    assert ckpt_state["best_metric"] is not None
    assert json.loads((out / "eval_results.json").read_text())["eval_rel_strict_f1"] == res["eval_rel_strict_f1"]

    # resume the same run to 6 steps from the last checkpoint
    res2 = train_main([*base, "--max_steps", "6", "--resume_from_checkpoint", "auto", "--do_train"])
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 6
    assert "eval_rel_strict_f1" not in res2  # --do_train only

    # teacher scores of the trained model, then a distilled student started from the initial checkpoint
    teacher_scores_main(["--model", str(out), "--data", str(data), "--split", "train", "--out", str(root / "ts")])
    res3 = train_main(["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--output_dir", str(root / "st"),
                       "--use_cpu", "--max_steps", "2", "--per_device_train_batch_size", "4", "--save_strategy", "no",
                       "--teacher_scores", str(root / "ts"), "--distill_weight", "0.5", "--do_train", *COMMON])
    assert res3["train_distill_features"] == 8 and res3["train_distill_missing"] == 0
    assert res3["train_distill_hash_mismatch"] == 0
    log = json.loads((root / "st" / "trainer_state.json").read_text())["log_history"][0]
    assert log["distill_loss"] > 0 and "span_graph_loss" in log and "label_drop_loss" in log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_one_and_two_processes_give_the_same_eval_metric(setup):
    """`accelerate launch --cpu --num_processes 2 examples/run_uie.py` runs 2 gloo ranks and, with the same global
    batch (2 x 2 vs 1 x 4, equal-length records, no dropout), ends with the same dev metrics as 1 process."""
    root, ckpt, data = setup
    args = ["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--max_steps", "3", "--save_strategy", "no",
            "--eval_strategy", "no", "--do_train", "--do_eval", *COMMON]
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    env.pop("LDNET_NO_RELAUNCH", None)
    cmd = [accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()), str(REPO / "examples" / "run_uie.py"),
           *args, "--output_dir", str(root / "p2"), "--per_device_train_batch_size", "2"]
    log = root / "p2.log"
    with open(log, "w") as fh:  # the 2-process job runs while this process does the 1-process run
        job = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        try:
            one = train_main([*args, "--output_dir", str(root / "p1"), "--per_device_train_batch_size", "4", "--use_cpu"])
            rc = job.wait(timeout=300)
        finally:
            if job.poll() is None:
                job.kill()
    assert rc == 0, log.read_text()[-5000:]
    two = json.loads((root / "p2" / "all_results.json").read_text())
    assert one["train_world_size"] == 1 and two["train_world_size"] == 2
    for key in ("eval_rel_strict_f1", "eval_ent_f1", "eval_general_f1", "eval_rel_strict_tp", "eval_ent_fp"):
        assert two[key] == pytest.approx(one[key], abs=1e-9), key
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-4)
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)


def test_benchmark_defaults_to_the_staged_copy(shared_data, monkeypatch):
    """`--benchmark conll04` without --data_dir converts ../shared/data/conll04 (as ldnet-fewshot / zeroshot do);
    with no staged copy the error names the folder it looked in."""
    from trainers.cli import DataArguments, load_splits

    monkeypatch.setenv("LDNET_SHARED_DATA", str(shared_data))
    splits = load_splits(DataArguments(benchmark="conll04", max_eval_samples=5))
    assert {k: len(v) for k, v in splits.items()} == {"train": 922, "dev": 5, "test": 288}
    monkeypatch.setenv("LDNET_SHARED_DATA", str(shared_data / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere/conll04"):
        load_splits(DataArguments(benchmark="conll04"))


def test_schema_shuffle_fine_tuning(setup):
    """--schema_shuffle trains on per-epoch re-drawn label orders (answers unchanged) and refuses teacher scores."""
    from trainers.pretrain import AugmentedRecordDataset

    root, ckpt, data = setup
    seen = []
    orig = AugmentedRecordDataset.__getitem__

    def spy(self, i):
        seen.append((self.epoch, tuple(self.record(i)["schema"]["ent"])))
        return orig(self, i)

    AugmentedRecordDataset.__getitem__ = spy
    try:
        res = train_main(["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--output_dir",
                          str(root / "shuffled"), "--use_cpu", "--num_train_epochs", "2",
                          "--per_device_train_batch_size", "8", "--save_strategy", "no", "--schema_shuffle", "true",
                          "--do_train", *COMMON])
    finally:
        AugmentedRecordDataset.__getitem__ = orig
    assert res["train_samples"] == 16 and res["epoch"] == 2.0
    assert {e for e, _ in seen} == {0, 1} and len(seen) == 32
    assert len({order for _, order in seen}) > 1  # label orders differ between records / epochs
    with pytest.raises(ValueError, match="schema_shuffle"):
        train_main(["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--output_dir", str(root / "x"),
                    "--use_cpu", "--max_steps", "1", "--schema_shuffle", "true", "--teacher_scores", str(root / "ts"),
                    "--do_train", *COMMON])


def _count_augmented(monkeypatch) -> list:
    from trainers.augmented import AugmentedRecordDataset

    calls: list = []
    orig = AugmentedRecordDataset.__getitem__
    monkeypatch.setattr(AugmentedRecordDataset, "__getitem__", lambda self, i: calls.append(i) or orig(self, i))
    return calls


def test_schema_shuffle_is_the_default_and_steps_aside_for_teacher_scores(setup, tmp_path, monkeypatch):
    """Without --schema_shuffle the label order is shuffled (issue #14: spread 28.45 -> 2.48 at equal F1); with
    --teacher_scores it is off by itself (their input hashes need the unshuffled schema), and explicit false is off."""
    from trainers.teacher import compute_teacher_scores

    root, ckpt, data = setup
    calls = _count_augmented(monkeypatch)
    base = ["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--use_cpu", "--max_steps", "1",
            "--per_device_train_batch_size", "4", "--save_strategy", "no", "--do_train", *COMMON]
    train_main([*base, "--output_dir", str(tmp_path / "default")])
    assert len(calls) >= 4  # the batch of 4 came from the augmented (shuffling) dataset

    calls.clear()
    train_main([*base, "--output_dir", str(tmp_path / "off"), "--schema_shuffle", "false"])
    assert calls == []

    model, proc = T.tiny_model(T.processor(), seed=0), T.processor()
    compute_teacher_scores(model, proc, T.equal_length_records(proc, 16, seed=31), tmp_path / "ts")
    res = train_main([*base, "--output_dir", str(tmp_path / "st"), "--teacher_scores", str(tmp_path / "ts")])
    assert calls == [] and res["train_distill_features"] == 4 and res["train_distill_hash_mismatch"] == 0


def test_max_minutes_is_a_wall_clock_budget(setup, tmp_path):
    """--max_minutes N stops training after N minutes (0: after the first step), saves, and reports the step."""
    root, ckpt, data = setup
    base = ["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--use_cpu", "--num_train_epochs", "5",
            "--per_device_train_batch_size", "4", "--save_strategy", "no", "--eval_strategy", "no", "--do_train",
            *COMMON]
    res = train_main([*base, "--output_dir", str(tmp_path / "budget"), "--max_minutes", "0"])
    assert res["stopped_by_time_limit_at_step"] == 1 and res["epoch"] < 1.0
    assert json.loads((tmp_path / "budget" / "trainer_state.json").read_text())["global_step"] == 1
    assert (tmp_path / "budget" / "model.safetensors").is_file()
    res = train_main([*base, "--output_dir", str(tmp_path / "nobudget"), "--max_steps", "2"])
    assert "stopped_by_time_limit_at_step" not in res
    with pytest.raises(ValueError, match="max_minutes"):
        train_main([*base, "--output_dir", str(tmp_path / "neg"), "--max_minutes", "-1"])


def test_calibrate_thresholds_saves_per_channel_thresholds(setup, tmp_path):
    """--calibrate_thresholds fits thresholds on dev after training and saves them with the model."""
    from transformers import AutoConfig

    root, ckpt, data = setup
    out = tmp_path / "cal"
    res = train_main(["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--use_cpu", "--max_steps", "2",
                      "--per_device_train_batch_size", "4", "--save_strategy", "no", "--eval_strategy", "no",
                      "--output_dir", str(out), "--calibrate_thresholds", "true", *COMMON])
    th = res["calibration_thresholds"]
    assert len(th) == 3 and all(0 < t < 1 for t in th)
    assert res["calibration_dev_after"] >= res["calibration_dev_before"]
    assert AutoConfig.from_pretrained(out, trust_remote_code=True).decode_channel_thresholds == th
    with pytest.raises(ValueError, match="dev split"):
        train_main(["--model_name_or_path", str(ckpt), "--train_file", str(data / "train.jsonl"), "--use_cpu",
                    "--max_steps", "1", "--output_dir", str(tmp_path / "nodev"), "--calibrate_thresholds", "true",
                    *COMMON])


def test_single_training_instruction_becomes_the_pipeline_default(setup, tmp_path):
    """Every training record has the same instruction -> config.default_instruction, used by the pipeline."""
    from transformers import pipeline

    from modeling_ldnet import LDNetModel, LDNetProcessor

    root, ckpt, data = setup
    one = tmp_path / "data"
    recs = [dict(r, instruction="") for r in T.make_records(8, seed=41)]
    T.write_jsonl(one / "train.jsonl", recs)
    out = tmp_path / "out"
    train_main(["--model_name_or_path", str(ckpt), "--data_dir", str(one), "--use_cpu", "--max_steps", "1",
                "--save_strategy", "no", "--eval_strategy", "no", "--output_dir", str(out), *COMMON])
    # local classes (trust_remote_code would re-register "universal-ie" for the rest of the test session)
    ie = pipeline("universal-ie", model=LDNetModel.from_pretrained(out).eval(),
                  processor=LDNetProcessor.from_pretrained(out), device="cpu")
    assert ie.model.config.default_instruction == ""
    seen = []
    to_record = ie._to_record

    def spy(*args):
        rec, img = to_record(*args)
        seen.append(rec["instruction"])
        return rec, img

    ie._to_record = spy
    ie([{"text": recs[0]["text"], "schema": recs[0]["schema"]}])
    ie([{"text": recs[0]["text"], "schema": recs[0]["schema"]}], instruction="Extract.")
    assert seen == ["", "Extract."]  # the model's instruction unless the call names one
    # a mixed training set keeps the paper-style default
    T.write_jsonl(one / "train.jsonl", [dict(r, instruction=f"find {i % 2}") for i, r in enumerate(recs)])
    train_main(["--model_name_or_path", str(ckpt), "--data_dir", str(one), "--use_cpu", "--max_steps", "1",
                "--save_strategy", "no", "--eval_strategy", "no", "--output_dir", str(tmp_path / "mixed"), *COMMON])
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(tmp_path / "mixed", trust_remote_code=True).default_instruction is None


def test_card_and_config_record_schema_data_and_final_metrics(setup, tmp_path):
    """Every model ldnet-train trains (here: a converted folder via --data_dir) gets a card / config.json with the
    schema it was trained on, its data (path, format, records per split) and the final dev / test metrics."""
    from modeling_ldnet import LDNetModel
    from trainers.data import portable_path

    root, ckpt, data = setup
    out = tmp_path / "out"
    res = train_main(["--model_name_or_path", str(ckpt), "--data_dir", str(data), "--use_cpu", "--max_steps", "2",
                      "--per_device_train_batch_size", "4", "--save_strategy", "no", "--eval_strategy", "no",
                      "--max_eval_samples", "4", "--output_dir", str(out), *COMMON])
    info = json.loads((out / "config.json").read_text())["model_card_info"]
    assert info["schema"] == {"ent": ["location", "organization", "person"], "rel": ["live in", "work for"]}
    where = portable_path(data)
    assert info["training_data"] == [
        {"path": where, "split": "train", "format": "unified", "records": 16, "flag": "--data_dir", "part": "train"},
        {"path": where, "split": "dev", "format": "unified", "records": 4, "flag": "--data_dir", "part": "dev"},
        {"path": where, "split": "test", "format": "unified", "records": 5, "flag": "--data_dir", "part": "test"}]
    assert info["instruction"] == T.INSTRUCTION

    def quality(prefix: str) -> dict:
        return {k[len(prefix):]: round(v, 4) for k, v in res.items()
                if k.startswith(prefix) and k.endswith(("_f1", "_precision", "_recall"))}

    assert info["metrics"] == {"train": {"loss": round(res["train_loss"], 4)}, "dev": quality("eval_"),
                               "test": quality("test_")}
    assert info["metrics"]["test"]["rel_strict_f1"] == round(res["test_rel_strict_f1"], 4)
    # what /info and the app's schema editor read: the reloaded model's config
    assert LDNetModel.from_pretrained(out).config.model_card_info == info
    card = (out / "README.md").read_text().splitlines()
    assert "- **ent**: `location`, `organization`, `person`" in card and "- **rel**: `live in`, `work for`" in card
    assert f"- `{where}` (split: test, format: unified, records: 5, flag: --data_dir, part: test)" in card
    assert not any("Not recorded" in line for line in card)
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["conversions"] == {} and report["label_differences"] == {}
    assert {s: (v["records"], v["encoding"]["gold_items"], v["encoding"]["encoded"])
            for s, v in report["splits"].items()} == {"train": (16, 48, 48), "dev": (4, 12, 12), "test": (5, 15, 15)}


def test_card_falls_back_to_the_trained_labels_and_caps_long_label_lists():
    """A model saved without card information (e.g. LDNetTrainer used directly) shows config.trained_labels; a
    generalist's thousands of labels are counted past the first 40 (config.json keeps them all)."""
    from modeling_ldnet.modelcard_ldnet import MAX_SHOWN_LABELS, render_model_card

    config = T.tiny_model(T.processor()).config
    config.trained_labels = {"ent": ["person", "location"], "rel": [f"r{i}" for i in range(MAX_SHOWN_LABELS + 3)]}
    lines = render_model_card(config).splitlines()
    assert "- **ent**: `person`, `location`" in lines
    shown = ", ".join(f"`r{i}`" for i in range(MAX_SHOWN_LABELS))
    assert f"- **rel**: {shown}, ... and 3 more (config.json)" in lines
    # an explicit schema wins over the trained labels
    assert "- **ent**: `org`" in render_model_card(config, schema={"ent": ["org"]}).splitlines()
