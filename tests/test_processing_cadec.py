"""CADEC discontinuous NER converter (``processing.cadec``)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from modeling_ldnet.schema import validate_record
from processing import BENCHMARKS, ConversionReport, SourceFormatError
from processing.cadec import DNER_INSTRUCTION, rebuild_entities, sodner_encode

SPLITS = ("train", "dev", "test")
SIZES = (5340, 1097, 1160)  # INDEX.md / cadec SOURCE.md
# entities per split and discontinuous ones: Dai et al. (ACL 2020) Table 1 for CADEC (4430/898/990; 491/94/94)
ENTITIES = (4430, 898, 990)
DISCONTINUOUS = (491, 94, 94)

_CACHE: dict[str, tuple[dict[str, list[dict]], ConversionReport]] = {}


@pytest.fixture(scope="module")
def cadec(shared_data):
    if "cadec" not in _CACHE:
        rep = ConversionReport("cadec")
        splits = BENCHMARKS["cadec"].read_splits(shared_data / "cadec", report=rep)
        _CACHE["cadec"] = ({s: list(it) for s, it in splits.items()}, rep)
    return _CACHE["cadec"]


def test_split_sizes_and_entity_counts(cadec):
    recs, rep = cadec
    assert tuple(len(recs[s]) for s in SPLITS) == SIZES
    ents = [[e for r in recs[s] for e in r["ans"].get("discontinuous_ent", [])] for s in SPLITS]
    assert tuple(len(x) for x in ents) == ENTITIES
    assert tuple(sum(len(e["span"]) > 1 for e in x) for x in ents) == DISCONTINUOUS
    parts = Counter(len(e["span"]) for x in ents for e in x)
    assert parts == {1: 3939 + 804 + 896, 2: 470 + 91 + 89, 3: 19 + 3 + 5, 4: 2}
    assert rep.dropped() == 0  # no duplicate entity in the SODNER files
    for s in SPLITS:
        assert [r["id"] for r in recs[s]] == [f"cadec.{s}.{i}" for i in range(len(recs[s]))]


def test_every_span_matches_its_text(cadec):
    recs, _ = cadec
    for s in SPLITS:
        for r in recs[s]:
            validate_record(r)
            assert r["schema"] == {"discontinuous_ent": ["ADR"]}
            for e in r["ans"].get("discontinuous_ent", []):
                texts = [r["text"][a:b] for a, b in e["span"]]
                assert all(t and t == t.strip() for t in texts), r["id"]
                assert e["text"] == " ".join(texts)
                assert e["span"] == sorted(e["span"])  # source fragment order is left-to-right


def test_full_record_hand_checked(cadec):
    # train.json line 4 (doc_key "train3_-1_-1"): "Muscle aches and weakness in neck , arms , shoulders , upper back ,
    # legs ." with ner [0,1] | [3,4]+[7,7] | [3,4]+[9,9] | [3,4]+[11,12] | [3,4]+[14,14] | [3,5] (inclusive tokens)
    recs, _ = cadec
    assert recs["train"][3] == {
        "id": "cadec.train.3",
        "instruction": DNER_INSTRUCTION,
        "schema": {"discontinuous_ent": ["ADR"]},
        "text": "Muscle aches and weakness in neck , arms , shoulders , upper back , legs .",
        "bg": "",
        "ans": {"discontinuous_ent": [
            {"type": "ADR", "text": "Muscle aches", "span": [[0, 12]]},
            {"type": "ADR", "text": "weakness in arms", "span": [[17, 28], [36, 40]]},
            {"type": "ADR", "text": "weakness in shoulders", "span": [[17, 28], [43, 52]]},
            {"type": "ADR", "text": "weakness in upper back", "span": [[17, 28], [55, 65]]},
            {"type": "ADR", "text": "weakness in legs", "span": [[17, 28], [68, 72]]},
            {"type": "ADR", "text": "weakness in neck", "span": [[17, 33]]},
        ]},
    }
    # a sentence without entities keeps its record
    assert recs["train"][2]["text"] == "does lower my cholestoral ." and recs["train"][2]["ans"] == {"discontinuous_ent": []}


def test_rebuild_inverts_sodner_writer():
    """Shared fragments, a contiguous copy of a fragment and 3-part entities come back exactly."""
    entities = [
        ("ADR", [(3, 4), (7, 7)]),
        ("ADR", [(3, 4)]),
        ("ADR", [(3, 4), (9, 9), (12, 13)]),
        ("ADR", [(0, 1)]),
        ("ADR", [(0, 5)]),
    ]
    ner, rels = sodner_encode(entities)
    assert rebuild_entities(ner, rels, Path("x.json"), 1) == entities


def _write(tmp_path: Path, lines: list[str]) -> Path:
    (tmp_path / "train.json").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_malformed_lines_name_file_and_line(tmp_path):
    good = json.dumps({"doc_key": "a", "sentences": [["nausea", "."]], "ner": [[[0, 0, "ADR"]]], "relations": [[]]})
    bad_block = json.dumps({"doc_key": "b", "sentences": [["a", "b", "c"]], "ner": [[[0, 0, "ADR"], [2, 2, "ADR"]]],
                            "relations": [[[0, 0, 2, 2, "Combined"]]]})  # the (2,2)->(0,0) half is missing
    wrong_order = json.dumps({"doc_key": "c", "sentences": [["a", "b", "c"]], "ner": [[[0, 0, "ADR"], [2, 2, "ADR"]]],
                              "relations": [[[2, 2, 0, 0, "Combined"], [0, 0, 2, 2, "Combined"]]]})
    for bad in ("{not json", bad_block, wrong_order,
                json.dumps({"sentences": [["a"]], "ner": [[[0, 3, "ADR"]]], "relations": [[]]}),
                json.dumps({"sentences": [["a"]], "ner": [[[0, 0, "Drug"]]], "relations": [[]]})):
        src = _write(tmp_path, [good, bad])
        with pytest.raises(SourceFormatError) as exc:
            list(BENCHMARKS["cadec"].read_splits(src)["train"])
        assert exc.value.line == 2 and exc.value.path == str(src / "train.json")
        assert "train.json:2:" in str(exc.value)


def test_missing_split_reported(tmp_path):
    src = _write(tmp_path, [json.dumps({"sentences": [["a"]], "ner": [[]], "relations": [[]]})])
    rep = ConversionReport("cadec")
    splits = BENCHMARKS["cadec"].read_splits(src, report=rep)
    assert set(splits) == {"train"} and set(rep.missing_splits) == {"dev", "test"}


# --------------------------------------------------------------------------------------------------------------
# round trip through the processor's span graph
# --------------------------------------------------------------------------------------------------------------


def _roundtrip_check(minilm, records, label):
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetProcessor
    from modeling_ldnet.roundtrip import MISS_CATEGORIES, roundtrip

    proc = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm))
    rep = roundtrip(proc, records)
    print(f"{label}: {rep}")
    assert rep.rate >= 0.995 and set(rep.misses) <= set(MISS_CATEGORIES)
    return rep


def test_roundtrip_sample(cadec, minilm):
    recs, _ = cadec
    for s in SPLITS:
        sample = list(recs[s])
        random.Random(0).shuffle(sample)
        _roundtrip_check(minilm, sample[:500], f"cadec/{s}")


@pytest.mark.full
def test_roundtrip_full(cadec, minilm):
    recs, _ = cadec
    for s in SPLITS:
        _roundtrip_check(minilm, recs[s], f"cadec/{s}")
