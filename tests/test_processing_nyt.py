"""NYT / NYT* converter: string matching policy, missing train split, real counts from SOURCE.md."""

from __future__ import annotations

import pytest
from fixtures_formats import write_nyt

from processing import BENCHMARKS, convert_benchmark, to_spec_record
from processing.convert import ConversionReport
from processing.nyt import RELATIONS, locate, relation_label, token_occurrences
from processing.registry import SourceFormatError

INST = "Please determine the two entities mentioned in the text and specify the nature of their relationship."


@pytest.fixture(scope="module")
def real(shared_data):
    return convert_benchmark("nyt", shared_data / "nyt", progress=False)


@pytest.fixture(scope="module")
def real_star(shared_data):
    return convert_benchmark("nyt-star", shared_data / "nyt" / "NYT-star", progress=False)


def test_real_counts_and_missing_train(real, real_star, shared_data):
    dd, rep = real
    assert {s: dd[s].num_rows for s in dd} == {"dev": 5000, "test": 5000}  # INDEX.md; train missing
    assert rep.missing_splits == {"train": str(shared_data / "nyt" / "NYT" / "train_triples.json")}
    # SOURCE.md triples 8489 / 8616: every triple is either converted or dropped as a verbatim duplicate
    assert {s: rep.splits[s].items["rel"] for s in dd} == {"dev": 7985, "test": 8120}
    assert rep.drops == {"dev": {"duplicate triple": 504}, "test": {"duplicate triple": 496}}
    assert rep.notes["dev"]["matched after accent folding"] == 42
    dds, reps = real_star
    assert {s: dds[s].num_rows for s in dds} == {"dev": 4999, "test": 5000}
    assert {s: reps.splits[s].items["rel"] for s in dds} == {"dev": 7976, "test": 8110}
    assert reps.dropped() == 0 and set(reps.missing_splits) == {"train"}


def test_real_spans_exact_and_on_token_boundaries(real, real_star):
    for dd in (real[0], real_star[0]):
        for ds in dd.values():
            for r in ds:
                t = r["text"]
                for x in r["ans"]["rel"]:
                    assert x["head"]["span"] != x["tail"]["span"]
                    for a in (x["head"], x["tail"]):
                        s, e = a["span"]
                        assert t[s:e] == a["text"]
                        assert (s == 0 or t[s - 1] == " ") and (e == len(t) or t[e] == " ")


def test_real_record(real):
    assert to_spec_record(real[0]["dev"][0]) == {
        "id": "nyt.dev.0", "instruction": INST, "schema": {"rel": RELATIONS}, "bg": "",
        "text": "In Queens , North Shore Towers , near the Nassau border , supplanted a golf course , and housing "
                "replaced a gravel quarry in Douglaston .",
        "ans": {"rel": [
            {"relation": "neighborhood of", "head": {"text": "Douglaston", "span": [125, 135]},
             "tail": {"text": "Queens", "span": [3, 9]}},
            {"relation": "contains", "head": {"text": "Queens", "span": [3, 9]},
             "tail": {"text": "Douglaston", "span": [125, 135]}},
        ]},
    }


def test_relation_labels():
    assert relation_label("/people/person/place_lived") == "place lived"
    assert relation_label("/business/company_shareholder/major_shareholder_of") == "major shareholder of"
    assert len(RELATIONS) == 24 and RELATIONS[0] == "advisors" and RELATIONS[-1] == "teams"


def test_matching_policy_fixture(tmp_path):
    dd, rep = convert_benchmark("nyt", write_nyt(tmp_path), progress=False)
    assert list(dd) == ["dev"]
    assert to_spec_record(dd["dev"][0]) == {
        "id": "nyt.dev.0", "instruction": INST, "schema": {"rel": RELATIONS}, "bg": "",
        "text": "Mayor of New York visited New York Yankees fans in York , Medellin .",
        "ans": {"rel": [
            # "York" skips the occurrences inside "New York" / "New York Yankees"
            {"relation": "contains", "head": {"text": "New York", "span": [9, 17]},
             "tail": {"text": "York", "span": [51, 55]}},
            {"relation": "location", "head": {"text": "New York Yankees", "span": [26, 42]},
             "tail": {"text": "New York", "span": [9, 17]}},
            # "Medellín" found as "Medellin" after accent folding: the mention text is the text's form
            {"relation": "neighborhood of", "head": {"text": "York", "span": [51, 55]},
             "tail": {"text": "Medellin", "span": [58, 66]}},
        ]},
    }
    assert rep.drops == {"dev": {"duplicate triple": 1, "entity not found in text": 1}}
    assert rep.notes["dev"]["matched after accent folding"] == 2
    assert set(rep.missing_splits) == {"train", "test"}


def test_locate_unit():
    rep = ConversionReport("x")
    text = "Graham said Graham ."
    assert token_occurrences(text, "Graham") == [0, 12]
    assert token_occurrences("Grahams Graham", "Graham") == [8]
    assert locate(text, "Graham", "dev", "w", rep) == {"text": "Graham", "span": [0, 6]}
    assert rep.notes["dev"]["ambiguous mention (first occurrence used)"] == 1
    assert locate(text, "Graham", "dev", "w", rep, avoid=0) == {"text": "Graham", "span": [12, 18]}
    assert locate(text, "Smith", "dev", "w", rep) is None


def test_malformed_source(tmp_path):
    write_nyt(tmp_path, [{"text": "a b", "triple_list": [["a", "/no/such/rel", "b"]]}])
    with pytest.raises(SourceFormatError, match=r"val_triples\.json:1: dev\[0\]: unknown relation '/no/such/rel'"):
        convert_benchmark("nyt", tmp_path, progress=False)
    write_nyt(tmp_path, [{"text": "a b", "triple_list": []}, {"text": "a b", "triple_list": [["a", "b"]]}])
    with pytest.raises(SourceFormatError, match=r"val_triples\.json:2: dev\[1\]: malformed item"):
        convert_benchmark("nyt", tmp_path, progress=False)
    write_nyt(tmp_path, raw='[\n  {"text": "a",\n   "triple_list": [}\n]')
    with pytest.raises(SourceFormatError, match=r"val_triples\.json:3: invalid JSON"):
        convert_benchmark("nyt", tmp_path, progress=False)


def test_how_to_obtain_train_is_documented():
    assert "train_triples.json" in BENCHMARKS["nyt"].how_to_obtain
