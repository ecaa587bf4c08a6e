"""The console scripts as a user runs them (real subprocesses): exit status 0 on success, non-zero with a one-line
error on failure; nothing machine-specific in what they save (issue #15 item 5)."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import ldnet_tiny as T
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("ldnet-train", "ldnet-teacher-scores", "ldnet-pretrain", "ldnet-fewshot")
ENV = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1",
           TOKENIZERS_PARALLELISM="false", LDNET_NO_RELAUNCH="1")
ENV.pop("LDNET_TRACEBACK", None)
COMMON = ["--use_cpu", "--report_to", "none", "--disable_tqdm", "true", "--per_device_train_batch_size", "4"]


def script(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{name} is not installed next to {sys.executable}: run `pip install -e .`"
    return str(path)


def start(name: str, *args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([script(name), *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(proc: subprocess.Popen, timeout: int = 240) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def error_lines(stderr: str) -> list[str]:
    """stderr lines that are not library log / warning noise."""
    return [line for line in stderr.splitlines() if line.strip() and ": error:" in line or "Traceback" in line]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("scripts")
    ckpt = T.save_tiny_checkpoint(root / "ckpt")
    data = root / "data"
    T.write_jsonl(data / "train.jsonl", T.make_records(8, seed=1))
    T.write_jsonl(data / "dev.jsonl", T.make_records(4, seed=2, split="dev"))
    T.write_jsonl(data / "test.jsonl", T.make_records(3, seed=3, split="test"))
    recipe = root / "recipe.json"
    recipe.write_text(json.dumps({"name": "tiny", "corpora": [{"name": "tiny", "path": str(data), "task": "ner_re"}]}))
    return root, ckpt, data, recipe


def test_setup_cfg_points_every_script_at_a_cli_wrapper():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    entries = dict(
        line.split(" = ") for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    )
    assert {entries[s] for s in SCRIPTS} == {
        "trainers.cli:train_cli", "trainers.cli:teacher_scores_cli", "trainers.pretrain:pretrain_cli",
        "trainers.fewshot:fewshot_cli",
    }


def test_bad_arguments_exit_non_zero_with_one_line(tmp_path):
    procs = {name: start(name, "--no_such_option", "1", cwd=tmp_path) for name in SCRIPTS}
    for name, proc in procs.items():
        rc, out, err = finish(proc)
        assert rc == 2, (name, rc, err[-2000:])
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{name}: error: "), (name, err)
        assert "usage:" not in err and out == ""


def test_success_exits_zero_and_saves_nothing_machine_specific(work, tmp_path):
    root, ckpt, data, recipe = work
    train = start("ldnet-train", "--model_name_or_path", str(ckpt), "--data_dir", str(data), "--output_dir",
                  "run-train", "--max_steps", "1", "--save_strategy", "no", "--eval_strategy", "no", *COMMON,
                  cwd=tmp_path)
    pretrain = start("ldnet-pretrain", "--model_name_or_path", str(ckpt), "--recipe", str(recipe), "--output_dir",
                     "run-pretrain", "--max_steps", "1", "--save_strategy", "no", "--max_length", "64", *COMMON,
                     cwd=tmp_path)
    fewshot = start("ldnet-fewshot", "--model_name_or_path", str(ckpt), "--data", str(data), "--shots", "1",
                    "--seeds", "1", "--sample_only", "--output_dir", "run-fewshot", cwd=tmp_path)
    failing = start("ldnet-train", "--model_name_or_path", str(ckpt), "--data_dir", str(tmp_path / "nowhere"),
                    "--output_dir", "run-x", "--do_train", *COMMON, cwd=tmp_path)
    for name, proc in (("train", train), ("pretrain", pretrain), ("fewshot", fewshot)):
        rc, _, err = finish(proc)
        assert rc == 0, (name, err[-3000:])
        assert error_lines(err) == [], (name, err[-3000:])
    rc, out, err = finish(failing)
    assert rc == 1
    assert error_lines(err) == [err.strip().splitlines()[-1]]
    assert err.strip().splitlines()[-1].startswith("ldnet-train: error: ") and "nowhere" in err

    teacher = start("ldnet-teacher-scores", "--model", "run-train", "--data", str(data), "--split", "dev", "--out",
                    "run-teacher", "--device", "cpu", cwd=tmp_path)
    rc, _, err = finish(teacher)
    assert rc == 0, err[-3000:]
    manifest = json.loads((tmp_path / "run-teacher" / "manifest.json").read_text())
    assert manifest["num_entries"] == 4 and manifest["model"] == "run-train"

    assert (tmp_path / "run-train" / "model.safetensors").is_file()
    assert (tmp_path / "run-pretrain" / "pretrain_info.json").is_file()
    assert (tmp_path / "run-fewshot" / "1shot" / "seed1" / "train.jsonl").is_file()
    machine = str(tmp_path.parent.parent)  # the tmp root: nothing saved may name it
    for folder in ("run-train", "run-pretrain", "run-teacher", "run-fewshot"):
        for f in (tmp_path / folder).rglob("*"):
            if f.suffix in (".json", ".md", ".jsonl") and f.name != "pretrain_info.json":
                assert machine not in f.read_text(encoding="utf-8"), f
    # pretrain_info.json keeps the resolved recipe (the data locations the mix was built from; bench reads it back)
    info = json.loads((tmp_path / "run-pretrain" / "pretrain_info.json").read_text())
    assert not os.path.isabs(info["base_model"]) and not os.path.isabs(info["recipe_file"])
    assert all(machine not in c["source"] for c in info["corpora"])
    assert machine not in json.dumps({k: v for k, v in info.items() if k != "recipe"})
