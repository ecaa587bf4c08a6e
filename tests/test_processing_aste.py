"""ASTE converters (``processing.aste``): V2 and pengb copies of 14lap / 14res / 15res / 16res."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from modeling_ldnet.schema import validate_record
from processing import BENCHMARKS, ConversionReport, SourceFormatError
from processing.aste import ABSA_INSTRUCTION

DATASETS = ("14lap", "14res", "15res", "16res")
# INDEX.md / aste SOURCE.md: sentences (train, dev, test) and triplets per split, identical in both copies
SENTENCES = {
    "14lap": (906, 219, 328),
    "14res": (1266, 310, 492),
    "15res": (605, 148, 322),
    "16res": (857, 210, 326),
}
TRIPLETS = {
    "14lap": (1460, 346, 543),
    "14res": (2338, 577, 994),
    "15res": (1013, 249, 485),
    "16res": (1394, 339, 514),
}
# triplets repeated verbatim inside one sentence (kept once, reported as "duplicate triplet"); measured
DUPLICATES = {"14lap": (0, 1, 2), "14res": (1, 0, 0), "15res": (0, 0, 0), "16res": (0, 0, 0)}
SPLITS = ("train", "dev", "test")

_CACHE: dict[str, tuple[dict[str, list[dict]], ConversionReport]] = {}


def load(name: str, shared_data: Path) -> tuple[dict[str, list[dict]], ConversionReport]:
    if name not in _CACHE:
        bench = BENCHMARKS[name]
        rep = ConversionReport(name)
        splits = bench.read_splits(shared_data / bench.shared_subdir, instruction=bench.instruction, report=rep)
        _CACHE[name] = ({s: list(it) for s, it in splits.items()}, rep)
    return _CACHE[name]


def test_registered():
    for ds in DATASETS:
        for name in (f"aste-{ds}", f"aste-pengb-{ds}"):
            assert BENCHMARKS[name].task == "absa"
            assert BENCHMARKS[name].instruction == ABSA_INSTRUCTION


@pytest.mark.parametrize("copy", ["", "pengb-"])
@pytest.mark.parametrize("ds", DATASETS)
def test_split_sizes_and_triplet_counts(ds, copy, shared_data):
    recs, rep = load(f"aste-{copy}{ds}", shared_data)
    assert tuple(len(recs[s]) for s in SPLITS) == SENTENCES[ds]
    n_rel = tuple(sum(len(r["ans"]["rel"]) for r in recs[s]) for s in SPLITS)
    assert n_rel == tuple(t - d for t, d in zip(TRIPLETS[ds], DUPLICATES[ds]))
    assert tuple(rep.dropped(s, "duplicate triplet") for s in SPLITS) == DUPLICATES[ds]
    assert rep.dropped() == sum(DUPLICATES[ds])
    for s in SPLITS:
        assert [r["id"] for r in recs[s]] == [f"aste-{copy}{ds}.{s}.{i}" for i in range(len(recs[s]))]


@pytest.mark.parametrize("copy", ["", "pengb-"])
@pytest.mark.parametrize("ds", DATASETS)
def test_every_span_matches_its_text(ds, copy, shared_data):
    recs, _ = load(f"aste-{copy}{ds}", shared_data)
    for split in SPLITS:
        for r in recs[split]:
            validate_record(r)
            assert r["schema"] == {"rel": ["positive", "negative", "neutral"]}
            for rel in r["ans"]["rel"]:
                for part in (rel["head"], rel["tail"]):
                    s, e = part["span"]
                    assert r["text"][s:e] == part["text"], r["id"]


def test_full_record_v2_first_line(shared_data):
    # ASTE-Data-V2-EMNLP2020/14res/train_triplets.txt, line 1:
    #   But the staff was so horrible to us .####[([2], [5], 'NEG')]
    recs, _ = load("aste-14res", shared_data)
    assert recs["train"][0] == {
        "id": "aste-14res.train.0",
        "instruction": ABSA_INSTRUCTION,
        "schema": {"rel": ["positive", "negative", "neutral"]},
        "text": "But the staff was so horrible to us .",
        "bg": "",
        "ans": {"rel": [{"relation": "negative", "head": {"text": "staff", "span": [8, 13]},
                         "tail": {"text": "horrible", "span": [21, 29]}}]},
    }


def test_full_record_multiword_and_two_triplets(shared_data):
    # 14res/train_triplets.txt line 3:
    #   The food is uniformly exceptional , with a very capable kitchen which will proudly whip up whatever you feel
    #   like eating , whether it 's on the menu or not .####[([1], [4], 'POS'), ([10], [9], 'POS')]
    # line 2 (aspect "food" = token 11, opinion "above average" = tokens 15-16):
    #   To be completely fair , the only redeeming factor was the food , which was above average , ...
    recs, _ = load("aste-pengb-14res", shared_data)
    r2, r3 = recs["train"][1], recs["train"][2]
    assert r2["id"] == "aste-pengb-14res.train.1"
    assert r2["ans"] == {"rel": [{"relation": "positive", "head": {"text": "food", "span": [58, 62]},
                                  "tail": {"text": "above average", "span": [75, 88]}}]}
    assert r3["ans"] == {"rel": [
        {"relation": "positive", "head": {"text": "food", "span": [4, 8]}, "tail": {"text": "exceptional", "span": [22, 33]}},
        {"relation": "positive", "head": {"text": "kitchen", "span": [56, 63]},
         "tail": {"text": "capable", "span": [48, 55]}},
    ]}


@pytest.mark.parametrize("ds", DATASETS)
def test_v2_and_pengb_agree(ds, shared_data):
    """Both copies give the same sentences and triplets; every difference is printed (none expected)."""
    v2, _ = load(f"aste-{ds}", shared_data)
    pb, _ = load(f"aste-pengb-{ds}", shared_data)
    diffs, agree = [], 0
    for split in SPLITS:
        assert len(v2[split]) == len(pb[split])
        for a, b in zip(v2[split], pb[split]):
            ka = {(x["relation"], tuple(x["head"]["span"]), tuple(x["tail"]["span"])) for x in a["ans"]["rel"]}
            kb = {(x["relation"], tuple(x["head"]["span"]), tuple(x["tail"]["span"])) for x in b["ans"]["rel"]}
            if a["text"] != b["text"] or ka != kb:
                diffs.append((split, a["id"], a["text"], sorted(ka ^ kb)))
            else:
                agree += 1
    print(f"{ds}: {agree} sentences agree, {len(diffs)} differ")
    for d in diffs:
        print("  DIFF", d)
    assert agree == sum(SENTENCES[ds])
    assert diffs == []


def test_malformed_v2_line_names_file_and_line(tmp_path):
    d = tmp_path / "v2" / "14res"
    d.mkdir(parents=True)
    good = "But the staff was so horrible to us .####[([2], [5], 'NEG')]\n"
    cases = {
        "no separator": "The food is good .\n",
        "not a literal": "The food is good .####[([1], [3], 'POS')\n",
        "bad polarity": "The food is good .####[([1], [3], 'GOOD')]\n",
        "out of range": "The food is good .####[([1], [9], 'POS')]\n",
        "not contiguous": "The food is very good .####[([1], [2, 4], 'POS')]\n",
    }
    for what, bad in cases.items():
        (d / "train_triplets.txt").write_text(good + bad, encoding="utf-8")
        splits = BENCHMARKS["aste-14res"].read_splits(tmp_path)
        with pytest.raises(SourceFormatError) as exc:
            list(splits["train"])
        assert exc.value.line == 2, what
        assert exc.value.path == str(d / "train_triplets.txt")
        assert "train_triplets.txt:2:" in str(exc.value)


def test_malformed_pengb_item_names_file_and_item(tmp_path):
    d = tmp_path / "pengb" / "15res"
    d.mkdir(parents=True)
    item = {"raw_words": "a b", "words": ["a", "b"], "aspects": [{"index": 0, "from": 0, "to": 1, "polarity": "POS"}],
            "opinions": [{"index": 0, "from": 1, "to": 2}]}
    bad = dict(item, opinions=[])
    import json

    (d / "dev_convert.json").write_text(json.dumps([item, bad]), encoding="utf-8")
    splits = BENCHMARKS["aste-pengb-15res"].read_splits(tmp_path)
    assert set(splits) == {"dev"}
    with pytest.raises(SourceFormatError) as exc:
        list(splits["dev"])
    assert exc.value.line == 2 and exc.value.path.endswith("dev_convert.json")
    (d / "dev_convert.json").write_text("[{", encoding="utf-8")
    with pytest.raises(SourceFormatError):
        list(BENCHMARKS["aste-pengb-15res"].read_splits(tmp_path)["dev"])


# --------------------------------------------------------------------------------------------------------------
# round trip through the processor's span graph
# --------------------------------------------------------------------------------------------------------------


def _roundtrip(minilm, records):
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetProcessor
    from modeling_ldnet.roundtrip import roundtrip

    proc = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm))
    return roundtrip(proc, records)


def _check_roundtrip(name, split, rep):
    from modeling_ldnet.roundtrip import MISS_CATEGORIES

    print(f"{name}/{split}: {rep}")
    assert set(rep.misses) <= set(MISS_CATEGORIES)
    # An aspect and its opinion sharing a boundary token ("repeated_node": e.g. aspect "sushi bar" / opinion
    # "sushi") cannot be a chain (SPEC §5.3); up to ~0.7% of a split (14res dev/test). Everything else must be exact.
    other = sum(v for k, v in rep.misses.items() if k != "repeated_node")
    assert rep.rate >= 0.99
    assert (rep.exact + rep.misses["repeated_node"]) / rep.items >= 0.995
    assert other <= 0.005 * rep.items


@pytest.mark.parametrize("ds", DATASETS)
def test_roundtrip_sample(ds, shared_data, minilm):
    recs, _ = load(f"aste-{ds}", shared_data)
    for split in SPLITS:
        sample = list(recs[split])
        random.Random(0).shuffle(sample)
        rep = _roundtrip(minilm, sample[:500])
        _check_roundtrip(f"aste-{ds}", split, rep)


@pytest.mark.full
@pytest.mark.parametrize("name", [f"aste-{c}{ds}" for ds in DATASETS for c in ("", "pengb-")])
def test_roundtrip_full(name, shared_data, minilm):
    recs, _ = load(name, shared_data)
    for split in SPLITS:
        _check_roundtrip(name, split, _roundtrip(minilm, recs[split]))
