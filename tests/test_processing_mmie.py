"""Multimodal IE converters, text side (``processing.mmie``): twitter2015, twitter2017, mnre."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from modeling_ldnet.schema import validate_record
from processing import (
    BENCHMARKS,
    ConversionReport,
    SourceFormatError,
    convert_benchmark,
)
from processing.mmie import MNER_INSTRUCTION, MRE_INSTRUCTION, mnre_schema

SPLITS = ("train", "dev", "test")
SIZES = {  # INDEX.md
    "twitter2015": (4000, 1000, 3257),
    "twitter2017": (3373, 723, 723),
    "mnre": (12247, 1624, 1614),
}
# answer items per split. twitter2017 = SOURCE.md's entity counts. twitter2015: SOURCE.md counts B- tags
# (6166/1541/5072); 186/53/135 entities start with an I- tag after O / another type (counted as entity starts, as in
# conlleval and LDNet's txt2json.py, and noted in the report). mnre: relations = pairs whose label is not None.
ITEMS = {
    "twitter2015": (6166 + 186, 1541 + 53, 5072 + 135),
    "twitter2017": (6049, 1324, 1351),
    "mnre": (12247 - 7744, 1624 - 1000, 1614 - 974),
}
ORPHAN_I = {"twitter2015": (186, 53, 135), "twitter2017": (0, 0, 0), "mnre": (0, 0, 0)}

_CACHE: dict[str, tuple[dict[str, list[dict]], ConversionReport]] = {}


def load(name: str, shared_data: Path) -> tuple[dict[str, list[dict]], ConversionReport]:
    if name not in _CACHE:
        bench = BENCHMARKS[name]
        rep = ConversionReport(name)
        splits = bench.read_splits(shared_data / bench.shared_subdir, instruction=bench.instruction, report=rep)
        _CACHE[name] = ({s: list(it) for s, it in splits.items()}, rep)
    return _CACHE[name]


def _items(r: dict) -> list[dict]:
    return r["ans"].get("ent") or r["ans"].get("rel") or []


@pytest.mark.parametrize("name", list(SIZES))
def test_split_sizes_and_item_counts(name, shared_data):
    recs, rep = load(name, shared_data)
    assert tuple(len(recs[s]) for s in SPLITS) == SIZES[name]
    assert tuple(sum(len(_items(r)) for r in recs[s]) for s in SPLITS) == ITEMS[name]
    assert rep.dropped() == 0
    notes = tuple(rep.notes.get(s, {}).get("I- tag without B- (treated as entity start)", 0) for s in SPLITS)
    assert notes == ORPHAN_I[name]
    for s in SPLITS:
        assert [r["id"] for r in recs[s]] == [f"{name}.{s}.{i}" for i in range(len(recs[s]))]
        assert not any("image" in r for r in recs[s])  # text-only without image_dir


@pytest.mark.parametrize("name", list(SIZES))
def test_every_span_matches_its_text(name, shared_data):
    recs, _ = load(name, shared_data)
    for s in SPLITS:
        for r in recs[s]:
            validate_record(r)
            for it in r["ans"].get("ent", []):
                a, b = it["span"]
                assert r["text"][a:b] == it["text"], r["id"]
            for it in r["ans"].get("rel", []):
                for part in (it["head"], it["tail"]):
                    a, b = part["span"]
                    assert r["text"][a:b] == part["text"], r["id"]


def test_full_record_twitter2017(shared_data):
    # twitter2017/train.txt lines 1-9: IMGID:17_06_12483 / New O / Post O / : O / Blackburn B-MISC / Festival I-MISC /
    # of I-MISC / Voice I-MISC / 2017 O
    recs, _ = load("twitter2017", shared_data)
    assert recs["train"][0] == {
        "id": "twitter2017.train.0",
        "instruction": MNER_INSTRUCTION,
        "schema": {"ent": ["person", "location", "organization", "miscellaneous"]},
        "text": "New Post : Blackburn Festival of Voice 2017",
        "bg": "",
        "ans": {"ent": [{"type": "miscellaneous", "text": "Blackburn Festival of Voice", "span": [11, 38]}]},
    }


def test_full_record_twitter2015(shared_data):
    # twitter2015/train.txt tweet 1 (IMGID:1015799): RT @JayKenMinaj _ : Me outside of where George/B-PER
    # Zimmerman/I-PER got shot at . You know God is so good . http://t.co/Z3neVBQ7vF
    recs, _ = load("twitter2015", shared_data)
    r = recs["train"][0]
    assert r["text"] == ("RT @JayKenMinaj _ : Me outside of where George Zimmerman got shot at . You know God is so "
                         "good . http://t.co/Z3neVBQ7vF")
    assert r["ans"] == {"ent": [{"type": "person", "text": "George Zimmerman", "span": [40, 56]}]}


def test_full_record_mnre(shared_data):
    # mnre_train.txt line 1: {'token': ['The', 'latest', 'Arkham', 'Horror', 'LCG', 'deluxe', 'expansion', 'the',
    # 'Circle', 'Undone', 'has', 'been', 'released', ':'], 'h': {'name': 'Circle Undone', 'pos': [8, 10]},
    # 't': {'name': 'Arkham Horror LCG', 'pos': [2, 5]}, 'img_id': 'twitter_19_31_16_6.jpg',
    # 'relation': '/misc/misc/part_of'}
    recs, _ = load("mnre", shared_data)
    assert recs["train"][0] == {
        "id": "mnre.train.0",
        "instruction": MRE_INSTRUCTION,
        "schema": {"rel": mnre_schema()},
        "text": "The latest Arkham Horror LCG deluxe expansion the Circle Undone has been released :",
        "bg": "",
        "ans": {"rel": [{"relation": "part of", "head": {"text": "Circle Undone", "span": [50, 63]},
                         "tail": {"text": "Arkham Horror LCG", "span": [11, 28]}}]},
    }
    assert len(mnre_schema()) == 21 and "alternate names" in mnre_schema()  # per/per + org/org share the name
    assert len(mnre_schema(raw_labels=True)) == 22 and "None" not in mnre_schema(raw_labels=True)
    # a None pair keeps its record, without relation
    none_recs = [r for r in recs["dev"] if not r["ans"]["rel"]]
    assert len(none_recs) == 1000


def test_mnre_raw_labels(shared_data):
    splits = BENCHMARKS["mnre"].read_splits(shared_data / "mnre", raw_labels=True)
    first = next(iter(splits["train"]))
    assert first["ans"]["rel"][0]["relation"] == "/misc/misc/part_of"
    assert first["schema"]["rel"][0] == "/per/per/parent"


# --------------------------------------------------------------------------------------------------------------
# malformed source lines
# --------------------------------------------------------------------------------------------------------------


def test_malformed_twitter_lines(tmp_path):
    good = "IMGID:1\nNew\tO\nYork\tB-LOC\n\n"
    for bad in ("IMGID:2\nNew O\n", "IMGID:2\nNew\tB-XYZ\n", "IMGID:2\nNew\tZ-LOC\n", "New\tO\n", "IMGID:2\nIMGID:3\n"):
        (tmp_path / "train.txt").write_text(good + bad, encoding="utf-8")
        with pytest.raises(SourceFormatError) as exc:
            list(BENCHMARKS["twitter2015"].read_splits(tmp_path)["train"])
        assert exc.value.path == str(tmp_path / "train.txt")
        assert exc.value.line in (5, 6), (bad, exc.value)
        assert f"train.txt:{exc.value.line}:" in str(exc.value)


def test_malformed_mnre_lines(tmp_path):
    good = ("{'token': ['Tom', 'met', 'Ann'], 'h': {'name': 'Tom', 'pos': [0, 1]}, 't': {'name': 'Ann', 'pos': [2, 3]},"
            " 'img_id': 'a.jpg', 'relation': '/per/per/peer'}\n")
    bads = [
        "{'token': ['Tom'\n",  # not a literal
        good.replace("'name': 'Ann'", "'name': 'Bob'"),  # name != tokens at pos
        good.replace("[2, 3]", "[2, 4]"),  # pos outside the tokens
        good.replace("/per/per/peer", "/per/per/friend"),  # unknown relation
        good.replace("'img_id': 'a.jpg', ", ""),  # missing field
    ]
    for bad in bads:
        (tmp_path / "mnre_train.txt").write_text(good + bad, encoding="utf-8")
        with pytest.raises(SourceFormatError) as exc:
            list(BENCHMARKS["mnre"].read_splits(tmp_path)["train"])
        assert exc.value.line == 2 and exc.value.path == str(tmp_path / "mnre_train.txt")


# --------------------------------------------------------------------------------------------------------------
# image_dir
# --------------------------------------------------------------------------------------------------------------


def test_twitter_image_dir(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.txt").write_text("IMGID:17_06_1\nNew\tO\nYork\tB-LOC\n\nIMGID:17_06_2\nHi\tO\n\n", encoding="utf-8")
    imgs = tmp_path / "images"
    imgs.mkdir()
    (imgs / "17_06_1.jpg").write_bytes(b"\xff\xd8fake")
    (imgs / "17_06_2.jpg").write_bytes(b"\xff\xd8fake")
    recs = list(BENCHMARKS["twitter2017"].read_splits(src, image_dir=imgs)["train"])
    assert [r["image"] for r in recs] == [str(imgs / "17_06_1.jpg"), str(imgs / "17_06_2.jpg")]
    assert recs[0]["ans"] == {"ent": [{"type": "location", "text": "York", "span": [4, 8]}]}
    # through the driver: the Arrow rows carry the path; without image_dir the field is ""
    dd, _ = convert_benchmark("twitter2017", src, image_dir=str(imgs), progress=False)
    assert dd["train"]["image"] == [str(imgs / "17_06_1.jpg"), str(imgs / "17_06_2.jpg")]
    dd, _ = convert_benchmark("twitter2017", src, progress=False)
    assert dd["train"]["image"] == ["", ""]
    # a missing file: error naming the record id and the path
    (imgs / "17_06_2.jpg").unlink()
    with pytest.raises(FileNotFoundError) as exc:
        list(BENCHMARKS["twitter2017"].read_splits(src, image_dir=imgs)["train"])
    assert "twitter2017.train.1" in str(exc.value) and str(imgs / "17_06_2.jpg") in str(exc.value)


def test_mnre_image_dir_flat_and_per_split(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    line = ("{'token': ['Tom', 'met', 'Ann'], 'h': {'name': 'Tom', 'pos': [0, 1]}, 't': {'name': 'Ann', 'pos': [2, 3]},"
            " 'img_id': 'twitter_1.jpg', 'relation': 'None'}\n")
    (src / "mnre_train.txt").write_text(line, encoding="utf-8")
    (src / "mnre_val .txt").write_text(line.replace("twitter_1", "twitter_2"), encoding="utf-8")  # upstream name
    imgs = tmp_path / "img_org"
    (imgs / "val").mkdir(parents=True)
    (imgs / "twitter_1.jpg").write_bytes(b"x")  # flat layout
    (imgs / "val" / "twitter_2.jpg").write_bytes(b"x")  # MNRE's img_org/{train,val,test}/ layout
    splits = BENCHMARKS["mnre"].read_splits(src, image_dir=imgs)
    train, dev = list(splits["train"]), list(splits["dev"])
    assert train[0]["image"] == str(imgs / "twitter_1.jpg") and train[0]["ans"] == {"rel": []}
    assert dev[0]["image"] == str(imgs / "val" / "twitter_2.jpg")
    (imgs / "twitter_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"mnre\.train\.0.*twitter_1\.jpg"):
        list(BENCHMARKS["mnre"].read_splits(src, image_dir=imgs)["train"])


# --------------------------------------------------------------------------------------------------------------
# round trip through the processor's span graph
# --------------------------------------------------------------------------------------------------------------


def _roundtrip_check(minilm, name, split, records):
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetProcessor
    from modeling_ldnet.roundtrip import MISS_CATEGORIES, roundtrip

    proc = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm))
    rep = roundtrip(proc, records)
    print(f"{name}/{split}: {rep}")
    assert set(rep.misses) <= set(MISS_CATEGORIES)
    if name == "mnre":
        # head and tail sharing a boundary token ("repeated_node", SPEC §5.3: 59/3/5 pairs overlap in MNRE, e.g.
        # head "Rolling Stones" / tail "Stones") cannot be a chain: up to ~0.7% of a split. The rest must be exact.
        assert rep.rate >= 0.99
        assert (rep.exact + rep.misses["repeated_node"]) / rep.items >= 0.995
    else:
        assert rep.rate >= 0.995


@pytest.mark.parametrize("name", list(SIZES))
def test_roundtrip_sample(name, shared_data, minilm):
    recs, _ = load(name, shared_data)
    for s in SPLITS:
        sample = list(recs[s])
        random.Random(0).shuffle(sample)
        _roundtrip_check(minilm, name, s, sample[:500])


@pytest.mark.full
@pytest.mark.parametrize("name", list(SIZES))
def test_roundtrip_full(name, shared_data, minilm):
    recs, _ = load(name, shared_data)
    for s in SPLITS:
        _roundtrip_check(minilm, name, s, recs[s])
