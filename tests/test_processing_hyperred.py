"""HyperRED converter (fixture only: the data lives on the Hugging Face Hub)."""

from __future__ import annotations

import json

import pytest
from fixtures_formats import HYPERRED_SENT, HYPERRED_SENT2, write_hyperred

from processing import convert_benchmark, to_spec_record
from processing.registry import SourceFormatError

INST = "Please extract hyper relations from the text with the given schema."
QUALS = ["academic degree", "end time", "point in time"]
SCHEMA = {"hyper_rel": {"award received": QUALS, "educated at": QUALS}}


def test_fixture_exact(tmp_path):
    dd, rep = convert_benchmark("hyperred", write_hyperred(tmp_path), progress=False)
    assert to_spec_record(dd["train"][0]) == {
        "id": "hyperred.train.0", "instruction": INST, "schema": SCHEMA,
        "text": "Leonard Parker received his PhD from Harvard University in 1967 .", "bg": "",
        "ans": {"hyper_rel": [{
            "relation": "educated at",
            "head": {"text": "Leonard Parker", "span": [0, 14]},
            "tail": {"text": "Harvard University", "span": [37, 55]},
            "qualifiers": [{"label": "end time", "text": "1967", "span": [59, 63]},
                           {"label": "academic degree", "text": "PhD", "span": [28, 31]}],
        }]},
    }
    assert to_spec_record(dd["dev"][0])["ans"] == {"hyper_rel": [{
        "relation": "award received", "head": {"text": "Einstein", "span": [0, 8]},
        "tail": {"text": "Nobel Prize", "span": [17, 28]},
        "qualifiers": [{"label": "point in time", "text": "1921", "span": [32, 36]}]}]}
    assert rep.drops == {"dev": {"duplicate fact": 1}}
    assert rep.splits["train"].items["qualifiers"] == 2 and rep.splits["dev"].items["hyper_rel"] == 1
    assert set(rep.missing_splits) == {"test"}


def test_malformed(tmp_path):
    bad = dict(HYPERRED_SENT, relations=[dict(HYPERRED_SENT["relations"][0], tail=[6, 40])])
    write_hyperred(tmp_path, train=[json.dumps(HYPERRED_SENT), json.dumps(bad)])
    with pytest.raises(SourceFormatError) as exc:
        convert_benchmark("hyperred", tmp_path, progress=False)
    assert exc.value.path == str(tmp_path / "train.json") and exc.value.line == 2
    assert "bad token span [6, 40]" in str(exc.value)
    write_hyperred(tmp_path, dev=[json.dumps(HYPERRED_SENT2), "[1, 2]"])
    with pytest.raises(SourceFormatError, match=r"dev\.json:2: expected an object"):
        convert_benchmark("hyperred", tmp_path, progress=False)
