"""SciERC converter: doc-level inclusive offsets -> sentence records; real counts (SOURCE.md), fixture, errors."""

from __future__ import annotations

import json

import pytest
from fixtures_formats import SCIERC_DOC, write_scierc

from processing import convert_benchmark, to_spec_record
from processing.registry import SourceFormatError

INST = ("Please identify possible entities from the given text and determine their types, "
        "then determine the relationships between them.")
SCHEMA = {"ent": ["task", "method", "metric", "material", "other scientific term", "generic"],
          "rel": ["used for", "feature of", "hyponym of", "part of", "compare", "conjunction", "evaluate for"]}


@pytest.fixture(scope="module")
def real(shared_data):
    return convert_benchmark("scierc", shared_data / "scierc", progress=False)


def test_real_counts(real):
    dd, rep = real
    assert {s: dd[s].num_rows for s in dd} == {"train": 1861, "dev": 275, "test": 551}  # INDEX.md sentences
    assert {s: rep.splits[s].items["ent"] for s in dd} == {"train": 5598, "dev": 811, "test": 1685}  # SOURCE.md
    # SOURCE.md counts 3219 train relations; 4 of them repeat verbatim and are dropped with a reason
    assert {s: rep.splits[s].items["rel"] for s in dd} == {"train": 3215, "dev": 455, "test": 974}
    assert rep.drops == {"train": {"duplicate relation": 4}}


def test_real_spans_exact(real):
    dd, _ = real
    for ds in dd.values():
        for r in ds:
            for e in r["ans"]["ent"]:
                assert r["text"][e["span"][0]:e["span"][1]] == e["text"]
            for x in r["ans"]["rel"]:
                for a in (x["head"], x["tail"]):
                    assert r["text"][a["span"][0]:a["span"][1]] == a["text"]


def test_real_record(real):
    r = to_spec_record(real[0]["test"][0])
    assert r["id"] == "scierc.test.0" and r["schema"] == SCHEMA and r["instruction"] == INST
    assert r["text"].startswith("Recognition of proper nouns in Japanese text has been studied")
    assert r["ans"]["ent"][:2] == [{"type": "task", "text": "Recognition of proper nouns", "span": [0, 27]},
                                   {"type": "other scientific term", "text": "proper nouns", "span": [15, 27]}]
    assert r["ans"]["rel"][0] == {"relation": "part of",
                                  "head": {"text": "Recognition of proper nouns", "span": [0, 27]},
                                  "tail": {"text": "morphological analysis", "span": [103, 125]}}


def test_fixture_exact(tmp_path):
    dd, rep = convert_benchmark("scierc", write_scierc(tmp_path), progress=False)
    assert [to_spec_record(r) for r in dd["train"]] == [
        {"id": "scierc.train.0", "instruction": INST, "schema": SCHEMA, "text": "We propose a parser .", "bg": "",
         "ans": {"ent": [{"type": "method", "text": "parser", "span": [13, 19]}]}},
        {"id": "scierc.train.1", "instruction": INST, "schema": SCHEMA, "text": "The parser uses neural networks .",
         "bg": "",
         "ans": {"ent": [{"type": "method", "text": "The parser", "span": [0, 10]},
                         {"type": "method", "text": "neural networks", "span": [16, 31]}],
                 "rel": [{"relation": "used for", "head": {"text": "neural networks", "span": [16, 31]},
                          "tail": {"text": "The parser", "span": [0, 10]}}]}},
    ]
    assert rep.drops == {"train": {"duplicate relation": 1}}
    assert set(rep.missing_splits) == {"dev", "test"}


def test_span_outside_sentence_is_dropped_with_reason(tmp_path):
    doc = dict(SCIERC_DOC, ner=[[[3, 5, "Method"]], []], relations=[[], []])  # 3..5 crosses into sentence 2
    dd, rep = convert_benchmark("scierc", write_scierc(tmp_path, [json.dumps(doc)]), progress=False)
    assert rep.drops == {"train": {"span outside sentence": 1}}
    assert dd["train"][0]["ans"]["ent"] == []


def test_malformed_line(tmp_path):
    write_scierc(tmp_path, [json.dumps(SCIERC_DOC), '{"doc_key": "x", "sentences": [["a"]], "ner": [[["0"]]]}'])
    with pytest.raises(SourceFormatError) as exc:
        convert_benchmark("scierc", tmp_path, progress=False)
    assert exc.value.path == str(tmp_path / "train.json") and exc.value.line == 2
    write_scierc(tmp_path, [json.dumps(SCIERC_DOC), "{oops"])
    with pytest.raises(SourceFormatError, match=r"train\.json:2: invalid JSON"):
        convert_benchmark("scierc", tmp_path, progress=False)
