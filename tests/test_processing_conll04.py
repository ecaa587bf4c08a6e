"""CoNLL04 converter: real counts from INDEX.md (sentences, entities, relations), spans, fixture, errors."""

from __future__ import annotations

import json

import pytest
from fixtures_formats import CONLL04_SENT, write_spert

from processing import convert_benchmark, to_spec_record
from processing.registry import SourceFormatError

RE_INST = "Please determine the two entities mentioned in the text and specify the nature of their relationship."
RELS = ["kill", "live in", "located in", "organization in", "work for"]
ENTS = ["location", "organization", "people", "other"]


@pytest.fixture(scope="module")
def real(shared_data):
    return convert_benchmark("conll04", shared_data / "conll04", progress=False)


@pytest.fixture(scope="module")
def real_joint(shared_data):
    return convert_benchmark("conll04", shared_data / "conll04", progress=False, with_entities=True)


def _spans_ok(dd):
    n = 0
    for ds in dd.values():
        for r in ds:
            text = r["text"]
            for e in r["ans"]["ent"]:
                assert text[e["span"][0]:e["span"][1]] == e["text"]
                n += 1
            for x in r["ans"]["rel"]:
                for arg in (x["head"], x["tail"]):
                    assert text[arg["span"][0]:arg["span"][1]] == arg["text"]
                    n += 1
    return n


def test_real_counts_match_index(real, real_joint):
    dd, rep = real
    assert {s: dd[s].num_rows for s in dd} == {"train": 922, "dev": 231, "test": 288}
    assert {s: rep.splits[s].items["rel"] for s in dd} == {"train": 1283, "dev": 343, "test": 422}
    assert {s: rep.splits[s].items["ent"] for s in dd} == {"train": 0, "dev": 0, "test": 0}  # RE only by default
    assert rep.dropped() == 0
    ddj, repj = real_joint
    assert {s: repj.splits[s].items["ent"] for s in ddj} == {"train": 3377, "dev": 893, "test": 1079}
    assert {s: repj.splits[s].items["rel"] for s in ddj} == {"train": 1283, "dev": 343, "test": 422}


def test_real_spans_exact(real, real_joint):
    assert _spans_ok(real[0]) == 2 * (1283 + 343 + 422)
    assert _spans_ok(real_joint[0]) == 3377 + 893 + 1079 + 2 * (1283 + 343 + 422)


def test_real_records(real, real_joint):
    dd, _ = real
    assert to_spec_record(dd["test"][0]) == {
        "id": "conll04.test.0", "instruction": RE_INST, "schema": {"rel": RELS}, "bg": "",
        "text": "An art exhibit at the Hakawati Theatre in Arab east Jerusalem was a series of portraits of "
                "Palestinians killed in the rebellion .",
        "ans": {"rel": [{"relation": "organization in", "head": {"text": "Hakawati Theatre", "span": [22, 38]},
                         "tail": {"text": "Jerusalem", "span": [52, 61]}}]},
    }
    joint = to_spec_record(real_joint[0]["train"][0])
    assert joint["schema"] == {"ent": ENTS, "rel": RELS}
    assert joint["ans"]["ent"][:2] == [{"type": "location", "text": "U.S.", "span": [23, 27]},
                                       {"type": "location", "text": "Havana", "span": [66, 72]}]
    assert joint["ans"]["rel"] == [{"relation": "organization in",
                                    "head": {"text": "Radio Reloj Network", "span": [73, 92]},
                                    "tail": {"text": "Havana", "span": [66, 72]}}]


def test_fixture_exact_and_duplicate_dropped(tmp_path):
    dd, rep = convert_benchmark("conll04", write_spert(tmp_path), progress=False, with_entities="true")
    assert to_spec_record(dd["train"][0]) == {
        "id": "conll04.train.0",
        "instruction": "Please identify possible entities from the given text and determine their types, "
                       "then determine the relationships between them.",
        "schema": {"ent": ENTS, "rel": RELS},
        "text": "John Smith works for Acme Corp in Boston .",
        "bg": "",
        "ans": {
            "ent": [{"type": "people", "text": "John Smith", "span": [0, 10]},
                    {"type": "organization", "text": "Acme Corp", "span": [21, 30]},
                    {"type": "location", "text": "Boston", "span": [34, 40]}],
            "rel": [{"relation": "work for", "head": {"text": "John Smith", "span": [0, 10]},
                     "tail": {"text": "Acme Corp", "span": [21, 30]}},
                    {"relation": "organization in", "head": {"text": "Acme Corp", "span": [21, 30]},
                     "tail": {"text": "Boston", "span": [34, 40]}}],
        },
    }
    assert rep.drops == {"train": {"duplicate relation": 1}}
    assert {s: dd[s].num_rows for s in dd} == {"train": 1, "dev": 0, "test": 0}


def test_malformed_sources(tmp_path):
    bad = dict(CONLL04_SENT, relations=[{"type": "Work_For", "head": 0, "tail": 5}])
    write_spert(tmp_path, data={"train": [CONLL04_SENT, bad]})
    with pytest.raises(SourceFormatError) as exc:
        convert_benchmark("conll04", tmp_path, progress=False)
    assert exc.value.path == str(tmp_path / "conll04.json") and exc.value.line == 2
    assert "train[1]: malformed sentence (IndexError" in str(exc.value)
    (tmp_path / "conll04.json").write_text('{"train": [\n{"tokens": [}\n]}')
    with pytest.raises(SourceFormatError, match=r"conll04\.json:2: invalid JSON"):
        convert_benchmark("conll04", tmp_path, progress=False)
    write_spert(tmp_path, data={"train": [dict(CONLL04_SENT, relations=[{"type": "Married", "head": 0, "tail": 1}])]})
    with pytest.raises(SourceFormatError, match=r"conll04\.json:1: train\[0\]: unknown relation type 'Married'"):
        convert_benchmark("conll04", tmp_path, progress=False)


def test_jsonl_written(tmp_path, real):
    from processing.convert import write_unified

    write_unified(real[0], tmp_path)
    lines = (tmp_path / "dev.jsonl").read_text().splitlines()
    assert len(lines) == 231 and json.loads(lines[0])["id"] == "conll04.dev.0"
