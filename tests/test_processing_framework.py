"""The conversion framework: registry completeness, driver (validation, errors, report), writers/readers, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

import processing
from modeling_ldnet.schema import RecordError
from processing import (
    BENCHMARKS,
    UNIFIED_FEATURES,
    Benchmark,
    convert_benchmark,
    load_unified,
)
from processing.__main__ import main as cli_main
from processing.convert import ConversionReport, TokenText, write_unified
from processing.registry import SourceFormatError, register

REPO = Path(__file__).resolve().parents[1]

MINE = {
    "conll03", "conll04", "scierc", "nyt", "nyt-star", "ace04-ner", "ace05-ner", "ace05-rel", "ace05-evt",
    "crossner-ai", "crossner-literature", "crossner-music", "crossner-politics", "crossner-science", "mit-movie",
    "mit-restaurant", "hyperred", "sst2", "glue-cola", "glue-mrpc", "glue-qqp", "glue-qnli", "glue-rte", "glue-wnli",
    "glue-mnli", "glue-tsv", "squad_v1", "squad_v2",
}
OTHERS = {
    "casie", "cadec", "twitter2015", "twitter2017", "mnre",
    *(f"aste-{d}" for d in ("14res", "14lap", "15res", "16res")),
    *(f"aste-pengb-{d}" for d in ("14res", "14lap", "15res", "16res")),
}


def test_registry_is_complete_and_consistent():
    assert MINE | OTHERS <= set(BENCHMARKS)
    assert processing.BENCHMARKS is BENCHMARKS
    for b in BENCHMARKS.values():
        assert isinstance(b, Benchmark)
        assert b.status in ("real", "fixture")
        assert b.task in ("ner", "re", "ee", "absa", "discontinuous_ner", "hyper_re", "cls", "mrc", "mner", "mre")
        assert b.source
        assert (b.shared_subdir is not None) == (b.status == "real"), b.name
        if b.status == "fixture":
            assert b.how_to_obtain, b.name
    for name in ("conll03", "conll04", "scierc", "nyt", "nyt-star", "sst2"):
        assert BENCHMARKS[name].status == "real"
    assert BENCHMARKS["nyt"].how_to_obtain  # train split must be downloaded by the user


def test_token_text_offsets_are_exact():
    tt = TokenText(["EU", "rejects", "German", "call", "."])
    assert tt.text == "EU rejects German call ."
    assert tt.char_span(0, 1) == [0, 2]
    assert tt.mention(2, 4) == {"text": "German call", "span": [11, 22]}
    assert tt.mention(4, 5) == {"text": ".", "span": [23, 24]}
    with pytest.raises(IndexError):
        tt.char_span(3, 3)
    with pytest.raises(IndexError):
        tt.char_span(4, 6)


# --------------------------------------------------------------------------------------------- a toy benchmark


def _toy_reader(src_dir, instruction="toy", report=None, bad=None):
    def gen(split):
        yield {"id": f"toy.{split}.0", "instruction": instruction, "schema": {"ent": ["person"]}, "text": "Tom runs",
               "bg": "", "ans": {"ent": [{"type": "person", "text": "Tom", "span": [0, 3]}]}}
        report.drop(split, "not convertible", "item 7")
        report.drop(split, "not convertible", "item 9")
        report.note(split, "repaired", "item 8")
        if bad == "record":
            yield {"id": f"toy.{split}.1", "instruction": "", "schema": {"ent": ["person"]}, "text": "Tom runs",
                   "bg": "", "ans": {"ent": [{"type": "person", "text": "Tim", "span": [0, 3]}]}}
        if bad == "source":
            raise SourceFormatError(Path(src_dir) / "toy.txt", 12, "broken line")

    report.missing("test", Path(src_dir) / "test.txt")
    return {"train": gen("train"), "dev": gen("dev")}


@pytest.fixture()
def toy():
    register(Benchmark(name="toy", task="ner", read_splits=_toy_reader, instruction="toy inst", source="toy",
                       status="fixture", how_to_obtain="-", options={"bad": "inject an error"}))
    yield "toy"
    del BENCHMARKS["toy"]


def test_driver_counts_reports_and_writes(toy, tmp_path):
    dd, rep = convert_benchmark(toy, tmp_path, tmp_path / "out", progress=False)
    assert list(dd) == ["train", "dev"]
    assert dd["train"].features == UNIFIED_FEATURES
    assert dd["train"][0]["instruction"] == "toy inst"
    assert rep.splits["train"].records == 1 and rep.splits["train"].items["ent"] == 1
    assert rep.dropped() == 4 and rep.dropped("dev", "not convertible") == 2
    assert rep.notes == {"train": {"repaired": 1}, "dev": {"repaired": 1}}
    assert rep.missing_splits == {"test": str(tmp_path / "test.txt")}
    assert rep.summary().splitlines() == [
        "## toy",
        "",
        "| split | records | no answer | ent |",
        "|---|---|---|---|",
        "| train | 1 | 0 | 1 |",
        "| dev | 1 | 0 | 1 |",
        "",
        "dropped items:",
        "",
        "| split | reason | count | first example |",
        "|---|---|---|---|",
        "| train | not convertible | 2 | item 7 |",
        "| dev | not convertible | 2 | item 7 |",
        "",
        "notes (nothing lost):",
        "",
        "| split | reason | count | first example |",
        "|---|---|---|---|",
        "| train | repaired | 1 | item 8 |",
        "| dev | repaired | 1 | item 8 |",
        "",
        f"MISSING split 'test': {tmp_path / 'test.txt'} does not exist (left out)",
    ]
    lines = (tmp_path / "out" / "train.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"id": "toy.train.0", "instruction": "toy inst", "schema": {"ent": ["person"]}, "text": "Tom runs", "bg": "",
         "ans": {"ent": [{"type": "person", "text": "Tom", "span": [0, 3]}]}}
    ]
    # the instruction override, including "" (w/o Inst.)
    dd2, _ = convert_benchmark(toy, tmp_path, instruction="", progress=False)
    assert dd2["dev"][0]["instruction"] == ""


def test_invalid_record_raises_with_id_and_field(toy, tmp_path):
    with pytest.raises(RecordError) as exc:
        convert_benchmark(toy, tmp_path, progress=False, bad="record")
    assert exc.value.record_id == "toy.train.1"
    assert exc.value.field == "ans.ent[0].text"
    assert "'toy.train.1'" in str(exc.value) and "ans.ent[0].text" in str(exc.value)


def test_source_error_propagates_unwrapped(toy, tmp_path):
    with pytest.raises(SourceFormatError) as exc:
        convert_benchmark(toy, tmp_path, progress=False, bad="source")
    assert exc.value.path == str(tmp_path / "toy.txt") and exc.value.line == 12
    assert str(exc.value) == f"{tmp_path / 'toy.txt'}:12: broken line"


def test_driver_rejects_bad_arguments(toy, tmp_path):
    with pytest.raises(KeyError, match="unknown benchmark 'nope'"):
        convert_benchmark("nope", tmp_path)
    with pytest.raises(ValueError, match="fmt must be one of"):
        convert_benchmark(toy, tmp_path, fmt="csv")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['colour'\]"):
        convert_benchmark(toy, tmp_path, colour="red")
    with pytest.raises(FileNotFoundError):
        convert_benchmark(toy, tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no split found"):
        convert_benchmark("conll03", tmp_path)  # empty folder: every split missing


# --------------------------------------------------------------------------------------------- writers / readers

RECORDS = [
    {"id": "x.train.0", "instruction": "", "schema": {"event": {"attack": ["attacker", "target"]}},
     "text": "Troops attacked the city .", "bg": "",
     "ans": {"event": [{"event_type": "attack", "trigger": {"text": "attacked", "span": [7, 15]},
                        "args": [{"role": "attacker", "text": "Troops", "span": [0, 6]}]}]}},
    {"id": "x.train.1", "instruction": "q?", "schema": {"cls": ["a", "b"]}, "text": "t", "bg": "u",
     "ans": {"cls": ["b"]}, "image": "img/1.jpg"},
    {"id": "x.train.2", "instruction": "", "schema": {"hyper_rel": {"r": ["q1", "q2"]}}, "text": "A r B at C", "bg": "",
     "ans": {}},
]


def test_write_and_load_unified_roundtrip(tmp_path):
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(
        [processing.to_arrow_record(r) for r in RECORDS], features=UNIFIED_FEATURES)})
    write_unified(dd, tmp_path / "j", "jsonl")
    write_unified(dd, tmp_path / "p", "parquet")
    assert [json.loads(x) for x in (tmp_path / "j" / "train.jsonl").read_text().splitlines()] == RECORDS
    for sub in ("j", "p"):
        back = load_unified(tmp_path / sub)
        assert list(back) == ["train"] and back["train"].features == UNIFIED_FEATURES
        assert [processing.to_spec_record(r) for r in back["train"]] == RECORDS
    single = load_unified(tmp_path / "j" / "train.jsonl")
    assert single["train"].num_rows == 3


def test_load_unified_errors(tmp_path):
    (tmp_path / "train.jsonl").write_text(json.dumps(RECORDS[1]) + "\n{not json\n")
    with pytest.raises(SourceFormatError, match=r"train\.jsonl:2: invalid JSON"):
        load_unified(tmp_path)
    bad = dict(RECORDS[1], ans={"cls": ["c"]})
    (tmp_path / "train.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(RecordError, match=r"'x\.train\.1'.*ans\.cls\[0\]"):
        load_unified(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError):
        load_unified(empty)


# --------------------------------------------------------------------------------------------- CLI

def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "processing", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def test_cli_convert_jsonl_subprocess(shared_data, tmp_path):
    out = tmp_path / "conll04"
    proc = _run_cli("convert", "conll04", str(shared_data / "conll04"), str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "| train | 922 | 0 | 1283 |" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["dev.jsonl", "test.jsonl", "train.jsonl"]
    dd = load_unified(out)
    assert {s: dd[s].num_rows for s in dd} == {"train": 922, "dev": 231, "test": 288}
    assert all(dd[s].features == UNIFIED_FEATURES for s in dd)
    hf = datasets.load_dataset("json", data_files={s: str(out / f"{s}.jsonl") for s in ("train", "dev", "test")},
                               cache_dir=str(tmp_path / "hf"))
    assert {s: hf[s].num_rows for s in hf} == {"train": 922, "dev": 231, "test": 288}
    row = hf["test"][0]
    assert row["id"] == "conll04.test.0" and row["schema"]["rel"][0] == "kill"
    assert sum(len(r["ans"]["rel"]) for r in hf["test"]) == 422


def test_cli_convert_parquet_and_options(shared_data, tmp_path, capsys):
    out = tmp_path / "pq"
    assert cli_main(["convert", "conll04", str(shared_data / "conll04"), str(out), "--format", "parquet",
                     "--with-entities", "--instruction", "", "--no-progress"]) == 0
    assert "| train | 922 | 0 | 3377 | 1283 |" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["dev.parquet", "test.parquet", "train.parquet"]
    dd = load_unified(out)
    assert dd["dev"].num_rows == 231 and dd["dev"].features == UNIFIED_FEATURES
    assert dd["dev"][0]["instruction"] == "" and dd["dev"][0]["schema"]["ent"] == [
        "location", "organization", "people", "other"]
    hf = datasets.load_dataset("parquet", data_files=str(out / "dev.parquet"), cache_dir=str(tmp_path / "hf"))
    assert hf["train"].num_rows == 231
    assert cli_main(["convert", "conll04", str(shared_data / "conll04"), str(out), "--colour", "red"]) == 1
    assert "unknown option(s) ['colour']" in capsys.readouterr().err


def test_cli_list(capsys):
    assert cli_main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "task", "status", "source"]
    rows = {ln.split()[0]: ln.split()[1:3] for ln in lines[1:]}
    assert rows["conll04"] == ["re", "real"] and rows["squad_v2"] == ["mrc", "fixture"]
    assert set(rows) == set(BENCHMARKS)
    assert cli_main(["list", "--options"]) == 0
    assert "--with-entities: " in capsys.readouterr().out


def test_cli_list_subprocess():
    proc = _run_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert any(ln.split()[:3] == ["nyt", "re", "real"] for ln in proc.stdout.splitlines())


def test_report_class_alone():
    rep = ConversionReport("x")
    rep.drop("dev", "a", "first")
    rep.drop("dev", "a", "second")
    rep.drop("train", "b")
    assert rep.dropped() == 3 and rep.dropped("dev") == 2 and rep.dropped(reason="b") == 1
    assert rep.examples[("drop", "dev", "a")] == "first"
