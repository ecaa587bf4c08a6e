"""The console scripts as a user runs them (real subprocesses): exit status 0 on success, non-zero with a one-line
error on failure; nothing machine-specific in what they save (issue #15 item 5)."""

from __future__ import annotations

import ast
import configparser
import json
import logging
import os
import subprocess
import sys
import textwrap
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


# ---------------------------------------------------------------------------------------------------------------
# start-up: --help of every script, cheap imports, quiet logs (issue #24 items 7 and 9)
# ---------------------------------------------------------------------------------------------------------------

#: every console script of setup.cfg (+ `python -m processing`) and flags its --help must show
HELP_FLAGS = {
    "ldnet-train": ("--model_name_or_path", "--data_dir", "--train_file", "--output_dir", "--max_minutes", "--verbose"),
    "ldnet-teacher-scores": ("--model", "--data", "--split", "--out", "--verbose"),
    "ldnet-pretrain": ("--model_name_or_path", "--recipe", "--output_dir", "--verbose"),
    "ldnet-fewshot": ("--model_name_or_path", "--data", "--shots", "--seeds", "--verbose"),
    "ldnet-serve": ("--host", "--port", "--backend"),
    "ldnet-extract": ("--model", "--input", "--output", "--instruction", "--schema", "--verbose"),
}


def console_scripts() -> dict[str, str]:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    lines = cfg["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(line.split(" = ") for line in lines)


def test_help_of_every_console_script_exits_zero_with_its_flags_and_is_cached(tmp_path):
    names = sorted(console_scripts())  # every script of setup.cfg; HELP_FLAGS names the flags of ours
    assert set(HELP_FLAGS) <= set(names)
    env = dict(ENV, LDNET_CACHE_DIR=str(tmp_path / "cache"), COLUMNS="100")
    pages: dict[str, list[str]] = {}
    for round_ in range(2):  # the second round is served from the cache: the same page
        procs = {name: subprocess.Popen([script(name), "--help"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True) for name in names}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, (name, err[-2000:])
            assert out.startswith(f"usage: {name} "), (name, out[:200])
            missing = [flag for flag in HELP_FLAGS.get(name, ()) if flag not in out]
            assert missing == [], (name, missing)
            pages.setdefault(name, []).append(out)
    for name, (first, second) in pages.items():
        assert first == second, name
    cached = sorted(p.name.rsplit("-", 1)[0] for p in (tmp_path / "cache" / "help").glob("*.txt"))
    assert set(cached) >= {"ldnet-train", "ldnet-pretrain", "ldnet-fewshot", "ldnet-extract"}, cached


def test_extract_help_states_the_instruction_default_the_pipeline_uses(tmp_path):
    out = subprocess.run([script("ldnet-extract"), "--help"], cwd=tmp_path, env=dict(ENV, LDNET_HELP_CACHE="0",
                         COLUMNS="200"), capture_output=True, text=True, timeout=120, check=True).stdout
    line = " ".join(out.split("\n  --instruction INSTRUCTION", 1)[1].split("\n  --")[0].split())
    # UniversalIEPipeline: config.default_instruction when the model has one, else default_instruction(schema)
    assert "config.default_instruction" in line and "paper-style instruction of the record's schema" in line, line


def test_processing_list_is_complete_and_imports_stay_light(tmp_path):
    code = textwrap.dedent(
        """
        import json, sys
        import processing, trainers.cli, trainers.pretrain, trainers.fewshot, serving.extract
        heavy = sorted(m for m in ("torch", "transformers", "datasets", "pyarrow", "accelerate") if m in sys.modules)
        names = list(processing.BENCHMARKS)
        after = sorted(m for m in ("torch", "transformers", "datasets") if m in sys.modules)
        mods = sorted(m for m in sys.modules if m.startswith("processing."))
        print(json.dumps({"heavy": heavy, "after": after, "names": names, "mods": mods}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["heavy"] == [] and got["after"] == [], got  # reading BENCHMARKS needs the converters' metadata only
    listed = converter_modules()
    assert {f"processing.{m}" for m in listed} <= set(got["mods"])
    assert {"conll04", "conll03", "ace05-rel", "aste-14res", "bio"} <= set(got["names"])
    listing = subprocess.run([sys.executable, "-m", "processing", "list"], cwd=REPO, env=ENV, capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert [line.split()[0] for line in listing.stdout.splitlines()[1:]] == got["names"]


def converter_modules() -> list[str]:
    """The module names of ``processing._import_converters``' import list."""
    tree = ast.parse((REPO / "processing" / "__init__.py").read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_import_converters")
    return [a.name for node in ast.walk(fn) if isinstance(node, ast.ImportFrom) for a in node.names]


def test_every_module_that_registers_a_benchmark_is_in_the_import_list():
    """A converter module left out of ``_import_converters`` would silently miss from BENCHMARKS."""
    registering = set()
    for path in sorted((REPO / "processing").iterdir()):
        if path.name.startswith("_") or path.name in ("registry.py", "convert.py"):
            continue
        source = path / "__init__.py" if path.is_dir() else path
        if source.suffix != ".py" or not source.is_file():
            continue
        tree = ast.parse(source.read_text(encoding="utf-8"))
        calls = [node.value for node in tree.body if isinstance(node, (ast.Expr, ast.Assign))
                 and isinstance(node.value, ast.Call)]
        calls += [c for node in tree.body if isinstance(node, ast.For) for c in ast.walk(node) if isinstance(c, ast.Call)]
        if any(getattr(c.func, "id", None) in ("register", "register_split_files") for c in calls):
            registering.add(path.stem if path.is_file() else path.name)
    assert registering and registering <= set(converter_modules()), sorted(registering - set(converter_modules()))


def test_help_cache_key_follows_the_source(tmp_path):
    from trainers.console import help_cache_key

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("X = 1\n")
    key = help_cache_key("ldnet-train", ["--help"], roots=[tmp_path / "pkg"])
    assert key == help_cache_key("ldnet-train", ["--help"], roots=[tmp_path / "pkg"])
    assert key != help_cache_key("ldnet-pretrain", ["--help"], roots=[tmp_path / "pkg"])
    assert key != help_cache_key("ldnet-train", ["-h"], roots=[tmp_path / "pkg"])
    (tmp_path / "pkg" / "a.py").write_text("X = 2\n")  # an edited option: a new page
    assert key != help_cache_key("ldnet-train", ["--help"], roots=[tmp_path / "pkg"])


@pytest.fixture
def restore_logging(monkeypatch):
    import transformers

    for var in ("TRANSFORMERS_VERBOSITY", "DATASETS_VERBOSITY"):
        monkeypatch.delenv(var, raising=False)
    before = transformers.utils.logging.get_verbosity()
    from trainers.console import CHATTY_LOGGERS, OWN_LOGGERS

    levels = {name: logging.getLogger(name).level for name in (*CHATTY_LOGGERS, *OWN_LOGGERS)}
    yield
    transformers.utils.logging.set_verbosity(before)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_logs_are_quiet_by_default_and_verbose_on_request(restore_logging):
    import datasets
    import transformers

    from trainers.console import ArgumentsParser
    from trainers.trainer import LDNetTrainingArguments

    parser = ArgumentsParser((LDNetTrainingArguments,), prog="ldnet-train")
    (quiet,) = parser.parse_args_into_dataclasses(args=["--output_dir", "x"])
    assert quiet.log_level == "passive"
    assert transformers.utils.logging.get_verbosity() == logging.WARNING
    assert datasets.utils.logging.get_verbosity() == logging.WARNING
    assert logging.getLogger("ldnet.train").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING

    (loud,) = parser.parse_args_into_dataclasses(args=["--output_dir", "x", "--verbose"])  # no extra namespace back
    assert loud.log_level == "info"  # trainers' setup_logging then sets transformers / datasets to INFO
    assert transformers.utils.logging.get_verbosity() == logging.INFO
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.INFO
    (explicit,) = parser.parse_args_into_dataclasses(args=["--output_dir", "x", "--verbose", "--log_level", "error"])
    assert explicit.log_level == "error"


def test_long_text_does_not_print_the_sequence_length_warning():
    """The processor windows long texts: transformers' "Token indices sequence length is longer than the specified
    maximum sequence length ... indexing errors" warning would be wrong, and is not logged."""
    import transformers

    proc = T.processor(max_length=64, window_stride=8)
    tok = proc.tokenizer
    text = " ".join(f"word{i}" for i in range(tok.model_max_length + 50))
    assert len(tok(text, add_special_tokens=False, verbose=False)["input_ids"]) > tok.model_max_length
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    lib = logging.getLogger("transformers")
    before = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_warning()
    lib.addHandler(handler)
    try:
        enc = proc({"id": "long", "text": text, "schema": {"ent": ["person"]}})
        assert len(enc["input_ids"]) > 1  # windowed
        assert [r.getMessage() for r in records if "indexing errors" in r.getMessage()] == []
        tok(text)  # control: the tokenizer called directly does warn, and the handler sees it
        assert any("indexing errors" in r.getMessage() for r in records)
    finally:
        lib.removeHandler(handler)
        transformers.utils.logging.set_verbosity(before)
