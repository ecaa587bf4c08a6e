"""ACE converters (fixture only, LDC data): MRC-NER (nested NER), sincere ACE05-Rel, OneIE ACE05-Evt."""

from __future__ import annotations

import json

import pytest
from fixtures_formats import (
    ACE05_REL_SENT,
    ACE_MRC_NER,
    ONEIE_SENT,
    write_ace_mrc,
    write_oneie,
    write_spert,
)

from processing import convert_benchmark, to_spec_record
from processing.ace import event_label, role_label
from processing.registry import SourceFormatError

NER_INST = "Please identify possible entities from the given text and determine their types."
ACE_ENTS = ["facility", "geographical social political", "location", "organization", "person", "vehicle", "weapon"]


def test_mrc_ner_fixture_exact(tmp_path):
    dd, rep = convert_benchmark("ace04-ner", write_ace_mrc(tmp_path), progress=False)
    assert [to_spec_record(r) for r in dd["train"]] == [
        {"id": "ace04-ner.train.0", "instruction": NER_INST, "schema": {"ent": ACE_ENTS},
         "text": "the CEO of Apple Inc. visited Paris", "bg": "",
         "ans": {"ent": [  # nested entities kept; order = (start, end, schema order)
             {"type": "person", "text": "CEO", "span": [4, 7]},
             {"type": "person", "text": "CEO of Apple Inc.", "span": [4, 21]},
             {"type": "organization", "text": "Apple Inc.", "span": [11, 21]},
             {"type": "geographical social political", "text": "Paris", "span": [30, 35]},
         ]}},
        {"id": "ace04-ner.train.1", "instruction": NER_INST, "schema": {"ent": ACE_ENTS}, "text": "nothing here",
         "bg": "", "ans": {}},
    ]
    assert set(rep.missing_splits) == {"dev", "test"}


def test_mrc_ner_malformed(tmp_path):
    bad = [dict(ACE_MRC_NER[0]), dict(ACE_MRC_NER[1], end_position=[4])]  # 2 starts, 1 end
    write_ace_mrc(tmp_path, bad)
    with pytest.raises(SourceFormatError, match=r"mrc-ner\.train:2: item 1: malformed MRC-NER item"):
        convert_benchmark("ace05-ner", tmp_path, progress=False)
    write_ace_mrc(tmp_path, [dict(ACE_MRC_NER[0], end_position=[9], start_position=[8])])
    with pytest.raises(SourceFormatError, match=r"mrc-ner\.train:1: item 0: span \[8, 9\] outside the context"):
        convert_benchmark("ace05-ner", tmp_path, progress=False)


def test_ace05_rel_fixture_exact(tmp_path):
    write_spert(tmp_path, "ace05.json", {"train": [ACE05_REL_SENT], "dev": [], "test": []})
    dd, _ = convert_benchmark("ace05-rel", tmp_path, progress=False)
    assert to_spec_record(dd["train"][0]) == {
        "id": "ace05-rel.train.0",
        "instruction": "Please determine the two entities mentioned in the text and specify the nature of their "
                       "relationship.",
        "schema": {"rel": ["agent artifact", "general affiliation", "organization affiliation", "part whole",
                           "personal social", "physical"]},
        "text": "The CEO of Apple visited Paris .", "bg": "",
        "ans": {"rel": [{"relation": "organization affiliation", "head": {"text": "CEO", "span": [4, 7]},
                         "tail": {"text": "Apple", "span": [11, 16]}},
                        {"relation": "physical", "head": {"text": "CEO", "span": [4, 7]},
                         "tail": {"text": "Paris", "span": [25, 30]}}]},
    }
    dd2, _ = convert_benchmark("ace05-rel", tmp_path, progress=False, with_entities=True)
    assert dd2["train"][0]["schema"]["ent"] == ACE_ENTS
    assert [e["type"] for e in dd2["train"][0]["ans"]["ent"]] == ["person", "organization",
                                                                   "geographical social political"]


def test_oneie_fixture_exact(tmp_path):
    dd, rep = convert_benchmark("ace05-evt", write_oneie(tmp_path), progress=False)
    assert to_spec_record(dd["train"][0]) == {
        "id": "ace05-evt.train.0",
        "instruction": "Please identify the events and their arguments in the text.",
        "schema": {"event": {"attack": ["attacker", "target"], "die": ["agent", "place", "victim"]}},
        "text": "Troops attacked the city and killed two civilians .", "bg": "",
        "ans": {"event": [
            {"event_type": "attack", "trigger": {"text": "attacked", "span": [7, 15]},
             "args": [{"role": "attacker", "text": "Troops", "span": [0, 6]},
                      {"role": "target", "text": "the city", "span": [16, 24]}]},
            {"event_type": "die", "trigger": {"text": "killed", "span": [29, 35]},
             "args": [{"role": "agent", "text": "Troops", "span": [0, 6]},
                      {"role": "victim", "text": "two civilians", "span": [36, 49]}]},
        ]},
    }
    assert rep.drops == {"train": {"argument entity not found": 1}}
    assert rep.splits["train"].items["event"] == 2 and rep.splits["train"].items["args"] == 4


def test_oneie_labels_and_malformed(tmp_path):
    assert event_label("Personnel:End-Position") == "end position"
    assert event_label("Transaction:Transfer-Ownership") == "transfer ownership"
    assert role_label("Attacker") == "attacker"
    bad = dict(ONEIE_SENT, event_mentions=[{"event_type": "Life:Die", "trigger": {"start": 5}, "arguments": []}])
    write_oneie(tmp_path, [json.dumps(ONEIE_SENT), json.dumps(bad)])
    with pytest.raises(SourceFormatError, match=r"train\.oneie\.json:2: malformed sentence \(KeyError"):
        convert_benchmark("ace05-evt", tmp_path, progress=False)
    write_oneie(tmp_path, [json.dumps(ONEIE_SENT), "not json"])
    with pytest.raises(SourceFormatError, match=r"train\.oneie\.json:2: invalid JSON"):
        convert_benchmark("ace05-evt", tmp_path, progress=False)
