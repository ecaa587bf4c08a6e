"""CoNLL-2003 converter: real data (counts from INDEX.md / the official statistics), IOB1 decoding, fixture, errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fixtures_formats import CONLL03_TRAIN, write_conll03

from processing import convert_benchmark, to_spec_record
from processing.conll03 import decode_tags
from processing.convert import ConversionReport
from processing.registry import SourceFormatError
from processing.roundtrip_table import read_records

INST = "Please identify possible entities from the given text and determine their types."
SCHEMA = {"ent": ["person", "location", "organization", "miscellaneous"]}


@pytest.fixture(scope="module")
def real(shared_data):
    return read_records("conll03", shared_data)


def test_real_split_sizes_and_entity_counts(real):
    splits, report = real
    assert {s: len(r) for s, r in splits.items()} == {"train": 14041, "dev": 3250, "test": 3453}  # INDEX.md
    # the official CoNLL-2003 entity statistics (Tjong Kim Sang & De Meulder 2003, table 2): IOB1 decoded right
    counts = {s: Counter(e["type"] for r in recs for e in r["ans"].get("ent", [])) for s, recs in splits.items()}
    assert counts["train"] == {"location": 7140, "person": 6600, "organization": 6321, "miscellaneous": 3438}
    assert counts["dev"] == {"person": 1842, "location": 1837, "organization": 1341, "miscellaneous": 922}
    assert counts["test"] == {"location": 1668, "organization": 1661, "person": 1617, "miscellaneous": 702}
    assert report.dropped() == 0 and report.missing_splits == {}


def test_real_spans_are_exact(real):
    splits, _ = real
    for recs in splits.values():
        for r in recs:
            assert "  " not in r["text"] and r["text"] == r["text"].strip()
            for e in r["ans"].get("ent", []):
                s, t = e["span"]
                assert r["text"][s:t] == e["text"]
                assert (s == 0 or r["text"][s - 1] == " ") and (t == len(r["text"]) or r["text"][t] == " ")


def test_real_first_records(real):
    splits, _ = real
    assert splits["train"][0] == {
        "id": "conll03.train.0", "instruction": INST, "schema": SCHEMA, "bg": "",
        "text": "EU rejects German call to boycott British lamb .",
        "ans": {"ent": [{"type": "organization", "text": "EU", "span": [0, 2]},
                        {"type": "miscellaneous", "text": "German", "span": [11, 17]},
                        {"type": "miscellaneous", "text": "British", "span": [34, 41]}]},
    }
    assert splits["test"][0]["text"] == "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT ."
    assert splits["test"][0]["ans"]["ent"] == [{"type": "location", "text": "JAPAN", "span": [9, 14]},
                                                {"type": "person", "text": "CHINA", "span": [31, 36]}]
    assert splits["dev"][-1]["id"] == "conll03.dev.3249"


def test_fixture_records_exact(tmp_path):
    dd, report = convert_benchmark("conll03", write_conll03(tmp_path), progress=False)
    assert [to_spec_record(r) for r in dd["train"]] == [
        {"id": "conll03.train.0", "instruction": INST, "schema": SCHEMA, "text": "EU rejects German call .", "bg": "",
         "ans": {"ent": [{"type": "organization", "text": "EU", "span": [0, 2]},
                         {"type": "miscellaneous", "text": "German", "span": [11, 17]}]}},
        {"id": "conll03.train.1", "instruction": INST, "schema": SCHEMA, "text": "Peter Blackburn Paul met in New York",
         "bg": "",
         "ans": {"ent": [{"type": "person", "text": "Peter Blackburn", "span": [0, 15]},  # I-PER I-PER
                         {"type": "person", "text": "Paul", "span": [16, 20]},  # B-PER right after a PER: new one
                         {"type": "location", "text": "New York", "span": [28, 36]}]}},
        {"id": "conll03.train.2", "instruction": INST, "schema": SCHEMA, "text": "Nothing", "bg": "", "ans": {}},
    ]
    assert dd["dev"][0]["text"] == "Rome" and list(dd) == ["train", "dev"]
    assert report.missing_splits == {"test": str(tmp_path / "eng.testb")}


def test_decode_tags_iob1_and_iob2(tmp_path):
    p = Path("f")
    lines = list(range(1, 9))
    assert decode_tags(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG", "O"], "iob1", p, lines) == [
        (0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC"), (5, 7, "ORG")]
    rep = ConversionReport("x")
    assert decode_tags(["B-A", "I-A", "B-A", "I-B", "O", "I-A"], "iob2", p, lines, rep, "train") == [
        (0, 2, "A"), (2, 3, "A"), (3, 4, "B"), (5, 6, "A")]
    assert rep.notes["train"]["I- tag without B- (treated as entity start)"] == 2
    with pytest.raises(SourceFormatError, match=r"^f:3: invalid tag 'X-PER'"):
        decode_tags(["O", "O", "X-PER"], "iob1", p, lines)


def test_malformed_lines_name_file_and_line(tmp_path):
    bad = CONLL03_TRAIN.replace("call NN I-NP O", "call NN O")  # line 6 has 3 columns
    write_conll03(tmp_path, bad)
    with pytest.raises(SourceFormatError) as exc:
        convert_benchmark("conll03", tmp_path, progress=False)
    assert exc.value.path == str(tmp_path / "eng.train") and exc.value.line == 6
    assert "expected 4 columns, got 3" in str(exc.value)
    write_conll03(tmp_path, CONLL03_TRAIN.replace("York NNP I-NP I-LOC", "York NNP I-NP I-LOCATION"))
    with pytest.raises(SourceFormatError, match=r"eng\.train:15: unknown entity type 'LOCATION'"):
        convert_benchmark("conll03", tmp_path, progress=False)


def test_jsonl_output_is_spec_form(tmp_path):
    out = tmp_path / "out"
    convert_benchmark("conll03", write_conll03(tmp_path / "src"), out, progress=False)
    first = json.loads((out / "dev.jsonl").read_text().splitlines()[0])
    assert first == {"id": "conll03.dev.0", "instruction": INST, "schema": SCHEMA, "text": "Rome", "bg": "",
                     "ans": {"ent": [{"type": "location", "text": "Rome", "span": [0, 4]}]}}
