"""The converters' shared helpers (processing.convert), the path look-ups (processing.paths) and the one home of
the task vocabulary (modeling_ldnet.vocabulary_ldnet)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from modeling_ldnet.pipeline_ldnet import DEFAULT_INSTRUCTIONS as PIPELINE_INSTRUCTIONS
from modeling_ldnet.vocabulary_ldnet import ANS_FIELDS, DEFAULT_INSTRUCTIONS, TASK_FIELDS
from processing import BENCHMARKS, SourceFormatError
from processing.convert import ConversionReport, as_bool, iter_json_lines, read_json_file, register_split_files
from processing.paths import minilm_path, pretrain_data_dir, shared_data_dir
from processing.registry import BENCHMARKS as REGISTRY
from trainers.instructions import INSTRUCTION_POOLS

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text", ["1", "true", "TRUE", " yes ", "y", "on"])
def test_as_bool_true(text):
    assert as_bool(text) is True


@pytest.mark.parametrize("text", ["0", "false", "No", "n", "off", ""])
def test_as_bool_false(text):
    assert as_bool(text) is False


@pytest.mark.parametrize("text", ["ture", "2", "maybe", "enabled"])
def test_as_bool_rejects_unknown_strings(text):
    with pytest.raises(ValueError, match=rf"with_entities: expected a boolean .*{text!r}"):
        as_bool(text, "with_entities")


def test_as_bool_non_strings():
    assert (as_bool(True), as_bool(False), as_bool(0), as_bool(1), as_bool(None)) == (True, False, False, True, False)


def test_converter_options_are_strict(tmp_path):
    """A misspelt boolean option is an error (it used to mean False in conll04/ace and True in casie/mmie)."""
    (tmp_path / "conll04.json").write_text(json.dumps({"train": [], "dev": [], "test": []}))
    with pytest.raises(ValueError, match="with_entities"):
        BENCHMARKS["conll04"].read_splits(tmp_path, with_entities="ture")
    assert BENCHMARKS["conll04"].read_splits(tmp_path, with_entities="false").keys() == {"train", "dev", "test"}


def test_read_json_file(tmp_path):
    good, bad, wrong = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    good.write_text('[1, 2]')
    bad.write_text('[1,\n 2,,]')
    wrong.write_text('{"x": 1}')
    assert read_json_file(good, list, "a list") == [1, 2]
    with pytest.raises(SourceFormatError, match=r"b\.json:2: invalid JSON"):
        read_json_file(bad, list, "a list")
    with pytest.raises(SourceFormatError, match=r"c\.json:1: expected a JSON list of things"):
        read_json_file(wrong, list, "expected a JSON list of things")


def test_iter_json_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n[2]\n{oops\n')
    rows = []
    with pytest.raises(SourceFormatError, match=r"x\.jsonl:4: invalid JSON"):
        for row in iter_json_lines(path):
            rows.append(row)
    assert rows == [(1, {"a": 1}), (3, [2])]


def test_register_split_files(tmp_path):
    def reader(path, split, instruction, report):
        for n, line in enumerate(path.read_text().split()):
            yield {"id": f"{split}.{n}", "instruction": instruction, "text": line}

    bench = register_split_files("_test-split-files", "ner", {"train": "tr.txt", "test": "te.txt"}, reader,
                                 "Find.", "a test source", status="fixture")
    try:
        assert REGISTRY["_test-split-files"] is bench and bench.status == "fixture" and bench.instruction == "Find."
        (tmp_path / "tr.txt").write_text("a b")
        report = ConversionReport("_test-split-files")
        splits = bench.read_splits(tmp_path, report=report)
        assert list(splits) == ["train"] and dict(report.missing_splits) == {"test": str(tmp_path / "te.txt")}
        assert list(splits["train"]) == [{"id": "train.0", "instruction": "Find.", "text": "a"},
                                         {"id": "train.1", "instruction": "Find.", "text": "b"}]
        assert [r["instruction"] for r in bench.read_splits(tmp_path, instruction="Other.")["train"]] == ["Other."] * 2
    finally:
        REGISTRY.pop("_test-split-files")


def test_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("LDNET_SHARED_DATA", str(tmp_path / "sd"))
    monkeypatch.delenv("LDNET_PRETRAIN_DATA", raising=False)
    assert shared_data_dir() == tmp_path / "sd" and pretrain_data_dir() == tmp_path / "sd" / "pretrain"
    monkeypatch.setenv("LDNET_PRETRAIN_DATA", str(tmp_path / "pt"))
    assert pretrain_data_dir() == tmp_path / "pt"
    assert (minilm_path() / "config.json").is_file()


def test_vocabulary_is_shared():
    assert TASK_FIELDS == ("cls", "ent", "discontinuous_ent", "rel", "hyper_rel", "event")
    assert ANS_FIELDS == (*TASK_FIELDS, "span")
    assert PIPELINE_INSTRUCTIONS is DEFAULT_INSTRUCTIONS
    assert INSTRUCTION_POOLS["ner"][0] == DEFAULT_INSTRUCTIONS["ent"] == BENCHMARKS["conll03"].instruction
    assert INSTRUCTION_POOLS["ner_re"][0] == DEFAULT_INSTRUCTIONS["ent+rel"] == BENCHMARKS["scierc"].instruction
    assert INSTRUCTION_POOLS["ee"][0] == DEFAULT_INSTRUCTIONS["event"] == BENCHMARKS["casie"].instruction


def test_task_name_tuple_has_one_home():
    """No module spells the schema-field tuple again: they import it (the ldnet_uie metric script is standalone and
    keeps its own copy)."""
    files = [REPO / "modeling_ldnet" / f for f in ("schema.py", "pipeline_ldnet.py", "modelcard_ldnet.py")]
    files += sorted((REPO / "processing").glob("*.py")) + sorted((REPO / "trainers").glob("*.py"))
    spelled = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if {"cls", "ent", "discontinuous_ent", "rel"} <= set(values):
                    spelled.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert spelled == []
