"""SQuAD v1.1 / v2.0 converter (fixture only: the data is not staged)."""

from __future__ import annotations

import pytest
from fixtures_formats import SQUAD_V2, write_squad

from processing import convert_benchmark, to_spec_record
from processing.registry import SourceFormatError

CTX = "Paris is the capital of France . Paris is large ."


def test_squad_v2_fixture_exact(tmp_path):
    dd, rep = convert_benchmark("squad_v2", write_squad(tmp_path), progress=False, instruction="ignored")
    assert [to_spec_record(r) for r in dd["dev"]] == [
        # identical annotator answers merged; the misaligned start (30) re-anchored to the nearest "Paris" (33)
        {"id": "squad_v2.dev.0", "instruction": "What is the capital of France?", "schema": {}, "text": CTX, "bg": "",
         "ans": {"span": [{"text": "Paris", "span": [0, 5]}, {"text": "Paris", "span": [33, 38]}]}},
        # unanswerable: no answer even though plausible_answers exist
        {"id": "squad_v2.dev.1", "instruction": "Who is the king?", "schema": {}, "text": CTX, "bg": "", "ans": {}},
        # the answer text does not occur in the context: dropped with a reason, the question kept
        {"id": "squad_v2.dev.2", "instruction": "Which river?", "schema": {}, "text": CTX, "bg": "", "ans": {}},
    ]
    assert rep.drops == {"dev": {"answer text not in context": 1}}
    assert rep.notes == {"dev": {"answer_start re-anchored": 1}}
    assert rep.splits["dev"].empty == 2 and rep.splits["dev"].items["span"] == 2
    assert rep.missing_splits == {"train": str(tmp_path / "train-v2.0.json")}


def test_squad_v1_file_names(tmp_path):
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": "Tom ate .", "qas": [{"id": "a", "question": "Who ate?", "answers": [
            {"text": "Tom", "answer_start": 0}]}]}]}]}
    write_squad(tmp_path, "train-v1.1.json", data)
    write_squad(tmp_path, "dev.json", data)  # the generic name is accepted too
    dd, _ = convert_benchmark("squad_v1", tmp_path, progress=False)
    assert {s: dd[s].num_rows for s in dd} == {"train": 1, "dev": 1}
    assert to_spec_record(dd["train"][0]) == {"id": "squad_v1.train.0", "instruction": "Who ate?", "schema": {},
                                              "text": "Tom ate .", "bg": "",
                                              "ans": {"span": [{"text": "Tom", "span": [0, 3]}]}}


def test_malformed(tmp_path):
    write_squad(tmp_path, raw='{"version": "v2.0",\n "data": [\n {]}')
    with pytest.raises(SourceFormatError, match=r"dev-v2\.0\.json:3: invalid JSON"):
        convert_benchmark("squad_v2", tmp_path, progress=False)
    bad = {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": "x", "qas": [{"id": "q"}]}]}]}
    write_squad(tmp_path, data=bad)
    with pytest.raises(SourceFormatError, match=r"data\[0\]\.paragraphs\[0\]: malformed \(KeyError"):
        convert_benchmark("squad_v2", tmp_path, progress=False)
    assert SQUAD_V2["version"] == "v2.0"
