"""GLUE-style TSV converter: real SST-2 (INDEX.md counts), pair tasks -> bg, headerless CoLA, generic TSV, errors."""

from __future__ import annotations

from collections import Counter

import pytest
from fixtures_formats import COLA_TEST, COLA_TRAIN, MRPC_TEST, MRPC_TRAIN, write_glue

from processing import convert_benchmark, to_spec_record
from processing.glue import parse_labels
from processing.registry import SourceFormatError
from processing.roundtrip_table import read_records

SST_INST = "Please classify the sentiment of the text."


@pytest.fixture(scope="module")
def real(shared_data):
    return read_records("sst2", shared_data)


def test_sst2_real_counts(real):
    splits, rep = real
    assert {s: len(r) for s, r in splits.items()} == {"train": 67349, "dev": 872, "test": 1821}  # INDEX.md
    assert Counter(r["ans"]["cls"][0] for r in splits["train"]) == {"positive": 37569, "negative": 29780}
    assert Counter(r["ans"]["cls"][0] for r in splits["dev"]) == {"positive": 444, "negative": 428}
    assert all(r["ans"] == {} for r in splits["test"])  # unlabeled GLUE test split
    assert rep.dropped() == 0


def test_sst2_real_records(real):
    splits, _ = real
    assert splits["train"][0] == {"id": "sst2.train.0", "instruction": SST_INST,
                                  "schema": {"cls": ["negative", "positive"]},
                                  "text": "hide new secretions from the parental units", "bg": "",
                                  "ans": {"cls": ["negative"]}}
    assert splits["dev"][0]["text"] == "it 's a charming and often affecting journey ."
    assert splits["dev"][0]["ans"] == {"cls": ["positive"]}
    assert splits["test"][1]["id"] == "sst2.test.1"
    assert splits["test"][0]["text"] == "uneasy mishmash of styles and genres ."
    assert all(r["text"] and r["text"] == r["text"].strip() for recs in splits.values() for r in recs)


def test_pair_task_goes_to_bg(tmp_path):
    dd, rep = convert_benchmark("glue-mrpc", write_glue(tmp_path, {"train.tsv": MRPC_TRAIN, "test.tsv": MRPC_TEST}),
                                progress=False)
    inst = "Please determine whether the two sentences are semantically equivalent."
    schema = {"cls": ["not equivalent", "equivalent"]}
    assert [to_spec_record(r) for r in dd["train"]] == [
        {"id": "glue-mrpc.train.0", "instruction": inst, "schema": schema, "text": "Amrozi accused his brother .",
         "bg": "Referring to him , Amrozi accused his brother .", "ans": {"cls": ["equivalent"]}},
        {"id": "glue-mrpc.train.1", "instruction": inst, "schema": schema, "text": "Yucaipa owned Dominick 's .",
         "bg": "Yucaipa bought Dominick 's in 1995 .", "ans": {"cls": ["not equivalent"]}},
    ]
    assert to_spec_record(dd["test"][0]) == {"id": "glue-mrpc.test.0", "instruction": inst, "schema": schema,
                                             "text": "PCCW 's chief .", "bg": "Current chief .", "ans": {}}
    assert set(rep.missing_splits) == {"dev"}


def test_headerless_cola(tmp_path):
    dd, _ = convert_benchmark("glue-cola", write_glue(tmp_path, {"train.tsv": COLA_TRAIN, "test.tsv": COLA_TEST}),
                              progress=False)
    assert [(r["text"], r["ans"]["cls"]) for r in dd["train"]] == [
        ("Our friends won't buy this analysis .", ["acceptable"]), ("One more pseudo generalization .", ["unacceptable"])]
    assert dd["test"][0]["text"] == "Bill whistled past the house ." and dd["test"][0]["ans"]["cls"] == []


def test_generic_tsv(tmp_path):
    src = write_glue(tmp_path, {"a.tsv": "q\tp\ty\nis it ?\tit is .\tyes\n", "b.tsv": "q\tp\nwhy ?\tbecause .\n"})
    dd, _ = convert_benchmark("glue-tsv", src, progress=False, text_col="q", bg_col="p", label_col="y",
                              labels="no,yes", dataset="toy", instruction="Answer.")
    assert to_spec_record(dd["a"][0]) == {"id": "toy.a.0", "instruction": "Answer.", "schema": {"cls": ["no", "yes"]},
                                          "text": "is it ?", "bg": "it is .", "ans": {"cls": ["yes"]}}
    assert to_spec_record(dd["b"][0])["ans"] == {}
    assert parse_labels("0:negative, 1:positive") == {"0": "negative", "1": "positive"}
    with pytest.raises(ValueError, match="needs labels"):
        convert_benchmark("glue-tsv", src, progress=False)


def test_malformed_rows(tmp_path):
    write_glue(tmp_path, {"dev.tsv": "sentence\tlabel\ngood .\t1\nbad .\t0\textra\n"})
    with pytest.raises(SourceFormatError) as exc:
        convert_benchmark("sst2", tmp_path, progress=False)
    assert exc.value.path == str(tmp_path / "dev.tsv") and exc.value.line == 3
    assert "expected 2 tab-separated columns, got 3" in str(exc.value)
    write_glue(tmp_path, {"dev.tsv": "sentence\tlabel\ngood .\t2\n"})
    with pytest.raises(SourceFormatError, match=r"dev\.tsv:2: unknown label '2'"):
        convert_benchmark("sst2", tmp_path, progress=False)
    write_glue(tmp_path, {"dev.tsv": "text\tlabel\ngood .\t1\n"})
    with pytest.raises(SourceFormatError, match=r"dev\.tsv:1: header .* has no column 'sentence'"):
        convert_benchmark("sst2", tmp_path, progress=False)
