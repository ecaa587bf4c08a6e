"""CASIE converter (``processing.casie``): UIE's date-based sentence split rebuilt, noisy offsets handled."""

from __future__ import annotations

import json
import random

import pytest

from modeling_ldnet.schema import validate_record
from processing import BENCHMARKS, ConversionReport, SourceFormatError
from processing.casie import (
    EE_INSTRUCTION,
    EVENT_SCHEMA,
    list_documents,
    split_documents,
)
from processing.sentsplit import split_sentences

SPLITS = ("train", "dev", "test")
UIE_SIZES = (3751, 788, 1500)  # UIE paper / INDEX.md (CoreNLP sentence splitting)
OUR_SIZES = (3750, 788, 1499)  # measured with processing.sentsplit: -1 / 0 / -1 vs UIE
EVENTS = (5235, 1115, 2121)
ARGS = (13507, 2677, 5710)
# measured drops and repairs (see processing/casie.py docstring)
DROPS = {
    ("train", "argument outside its trigger's sentence"): 311,
    ("train", "duplicate argument"): 1,
    ("dev", "argument outside its trigger's sentence"): 113,
    ("test", "argument outside its trigger's sentence"): 339,
}
NOTES = {
    ("train", "argument offsets shifted by -1 (text found there)"): 484,
    ("train", "argument offsets shifted by -2 (text found there)"): 28,
    ("train", "trigger offsets shifted by -1 (text found there)"): 191,
    ("train", "trigger offsets shifted by -2 (text found there)"): 6,
    ("train", "trigger clipped at the end of the content"): 1,
    ("train", "argument whitespace trimmed"): 2,
    ("train", "argument end extended to the end of its word"): 16,
    ("dev", "argument offsets shifted by -1 (text found there)"): 109,
    ("dev", "trigger offsets shifted by -1 (text found there)"): 49,
    ("dev", "argument end extended to the end of its word"): 1,
    ("test", "argument offsets shifted by -1 (text found there)"): 155,
    ("test", "trigger offsets shifted by -1 (text found there)"): 65,
    ("test", "argument end extended to the end of its word"): 6,
}

_CACHE: dict[str, tuple[dict[str, list[dict]], ConversionReport]] = {}


@pytest.fixture(scope="module")
def casie(shared_data):
    if "casie" not in _CACHE:
        rep = ConversionReport("casie")
        splits = BENCHMARKS["casie"].read_splits(shared_data / "casie", report=rep)
        _CACHE["casie"] = ({s: list(it) for s, it in splits.items()}, rep)
    return _CACHE["casie"]


def test_rebuilt_split_sizes(casie):
    recs, _ = casie
    sizes = tuple(len(recs[s]) for s in SPLITS)
    diff = {s: n - u for s, n, u in zip(SPLITS, sizes, UIE_SIZES)}
    print(f"CASIE sentences {dict(zip(SPLITS, sizes))} vs UIE {dict(zip(SPLITS, UIE_SIZES))}: difference {diff}")
    assert sizes == OUR_SIZES
    assert all(abs(d) <= 2 for d in diff.values())
    for s in SPLITS:
        assert [r["id"] for r in recs[s]] == [f"casie.{s}.{i}" for i in range(len(recs[s]))]


def test_event_counts_drops_and_repairs(casie):
    recs, rep = casie
    assert tuple(sum(len(r["ans"]["event"]) for r in recs[s]) for s in SPLITS) == EVENTS
    assert tuple(sum(len(e["args"]) for r in recs[s] for e in r["ans"]["event"]) for s in SPLITS) == ARGS
    drops = {(s, reason): n for s, c in rep.drops.items() for reason, n in c.items()}
    notes = {(s, reason): n for s, c in rep.notes.items() for reason, n in c.items()}
    print("drops:", drops)
    print("notes:", notes)
    assert drops == DROPS
    assert notes == NOTES
    # every sentence record holds at least one event (UIE counts only those)
    assert all(r["ans"]["event"] for s in SPLITS for r in recs[s])


def test_document_split_follows_uie(shared_data):
    docs = list_documents(shared_data / "casie")
    assert len(docs) == 997 and not {p.stem for p, _ in docs} & {"999", "10001", "10002"}
    keys = [(d["info"]["date"], d["sourcefile"]) for _, d in docs]
    assert keys == sorted(keys, reverse=True)
    groups = split_documents(docs)
    assert {s: len(v) for s, v in groups.items()} == {"train": 697, "dev": 100, "test": 200}
    assert groups["test"][0][0].name == "4011.json" and groups["dev"][0][0].name == "10244.json"
    assert min(d["info"]["date"] for _, d in groups["test"]) >= max(d["info"]["date"] for _, d in groups["dev"])
    assert min(d["info"]["date"] for _, d in groups["dev"]) >= max(d["info"]["date"] for _, d in groups["train"])


def test_every_span_matches_its_text(casie):
    recs, _ = casie
    for s in SPLITS:
        for r in recs[s]:
            validate_record(r)
            assert r["schema"] == {"event": EVENT_SCHEMA}
            for ev in r["ans"]["event"]:
                for part in (ev["trigger"], *ev["args"]):
                    a, b = part["span"]
                    assert r["text"][a:b] == part["text"] and part["text"] == part["text"].strip(), r["id"]


def test_full_record_hand_checked(casie, shared_data):
    # annotation/10003.json (2018_11_02, a test document): content[696:885] is the sentence below; events
    #   E3 Databreach nugget [821,832) "data breach", argument T12 Time [833,842) "Wednesday"
    #   E2 Databreach nugget [874,884) "was stolen", argument T9 Compromised-Data [858,873) "the information"
    content = json.loads((shared_data / "casie/annotation/10003.json").read_text(encoding="utf-8"))["content"]
    text = ("In a letter to employees Thursday evening, CPS Chief Operating Officer Arnie Rivera said the district "
            "learned of the massive data breach Wednesday, the day after the information was stolen.")
    assert content[696:885] == text
    recs, _ = casie
    (rec,) = [r for r in recs["test"] if r["text"] == text]
    assert rec == {
        "id": rec["id"],
        "instruction": EE_INSTRUCTION,
        "schema": {"event": EVENT_SCHEMA},
        "text": text,
        "bg": "",
        "ans": {"event": [
            {"event_type": "databreach", "trigger": {"text": "data breach", "span": [821 - 696, 832 - 696]},
             "args": [{"role": "time", "text": "Wednesday", "span": [833 - 696, 842 - 696]}]},
            {"event_type": "databreach", "trigger": {"text": "was stolen", "span": [874 - 696, 884 - 696]},
             "args": [{"role": "compromised data", "text": "the information", "span": [858 - 696, 873 - 696]}]},
        ]},
    }
    assert rec["id"] == "casie.test.602"


def test_keep_empty_emits_every_sentence(shared_data):
    splits = BENCHMARKS["casie"].read_splits(shared_data / "casie", keep_empty=True)
    dev = list(splits["dev"])
    assert len(dev) == 1763  # all sentences of the 100 dev documents (measured)
    assert sum(bool(r["ans"]["event"]) for r in dev) == 788


# --------------------------------------------------------------------------------------------------------------
# the sentence splitter
# --------------------------------------------------------------------------------------------------------------


def _sents(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Hackers struck. The bank paid.", ["Hackers struck.", "The bank paid."]),
        ("It was hacked by Equifax Inc. revealed data.", ["It was hacked by Equifax Inc. revealed data."]),
        ("They sued Apple Inc. The case is open.", ["They sued Apple Inc.", "The case is open."]),
        ("The U.S. government said so.", ["The U.S. government said so."]),
        ("It hit the U.S. The attack spread.", ["It hit the U.S.", "The attack spread."]),
        ("Mr. Smith and Dr. Jones met on Jan. 9 in St. Louis.", ["Mr. Smith and Dr. Jones met on Jan. 9 in St. Louis."]),
        ("Is it safe? said Bob. Yes!", ["Is it safe?", "said Bob.", "Yes!"]),
        ("\u201cIt is fixed.\u201d He left.", ["\u201cIt is fixed.\u201d", "He left."]),
        ("Update to 7.2.1 at example.com now. Done.", ["Update to 7.2.1 at example.com now.", "Done."]),
        ("It was lost.[3] In the US it spread.", ["It was lost.", "[3] In the US it spread."]),
        ("It ran on i386\u2026 We exploited it.", ["It ran on i386\u2026 We exploited it."]),
        ("Yahoo! was breached. See No. 5 below.", ["Yahoo! was breached.", "See No. 5 below."]),
        ("  Leading space.  Trailing   ", ["Leading space.", "Trailing"]),
        ("", []),
    ],
)
def test_sentence_splitter(text, expected):
    assert _sents(text) == expected


# --------------------------------------------------------------------------------------------------------------
# noisy offsets / malformed documents (synthetic corpus)
# --------------------------------------------------------------------------------------------------------------


def _doc(content: str, events: list[dict], date: str = "2018_01_01", sourcefile: str = "1.txt") -> dict:
    return {"content": content, "sourcefile": sourcefile, "info": {"date": date, "title": "t", "type": "text"},
            "cyberevent": {"hopper": [{"index": 0, "events": events}]}}


def _span(text: str, s: int, e: int, idx: str = "T1", role: str | None = None) -> dict:
    out = {"index": idx, "startOffset": s, "endOffset": e, "text": text}
    if role:
        out["role"] = {"type": role}
        out["type"] = "X"
    return out


def test_offset_repairs_and_drops(tmp_path):
    content = "Hackers stole data from Acme. Acme patched it. Then more."
    ev_shifted = {"index": "E1", "type": "Attack", "subtype": "Databreach", "realis": "Actual",
                  "nugget": _span("stole", 9, 14),  # real offsets [8, 13): shifted by -1
                  "argument": [_span("Hackers", 0, 7, "T2", "Attacker"),
                               _span("Acme", 30, 34, "T3", "Victim"),  # next sentence: dropped
                               _span("Acm", 24, 27, "T4", "Victim")]}  # one letter short: extended to "Acme"
    ev_bad = {"index": "E2", "type": "Vulnerability-related", "subtype": "PatchVulnerability", "realis": "Actual",
              "nugget": _span("fixed", 35, 40), "argument": [_span("Acme", 30, 34, "T5", "Releaser")]}
    ann = tmp_path / "annotation"
    ann.mkdir()
    (ann / "1.json").write_text(json.dumps(_doc(content, [ev_shifted, ev_bad])), encoding="utf-8")
    rep = ConversionReport("casie")
    splits = BENCHMARKS["casie"].read_splits(tmp_path, report=rep)
    assert {s: len(list(v)) for s, v in BENCHMARKS["casie"].read_splits(tmp_path).items()} == {
        "train": 0, "dev": 0, "test": 1}
    (rec,) = list(splits["test"])
    assert rec["text"] == "Hackers stole data from Acme."
    assert rec["ans"]["event"] == [{
        "event_type": "databreach",
        "trigger": {"text": "stole", "span": [8, 13]},
        "args": [{"role": "attacker", "text": "Hackers", "span": [0, 7]},
                 {"role": "victim", "text": "Acme", "span": [24, 28]}],
    }]
    assert rep.drops["test"] == {"argument outside its trigger's sentence": 1,
                                 "trigger offsets do not match its text": 1,
                                 "argument of a dropped event": 1}
    assert rep.notes["test"] == {"trigger offsets shifted by -1 (text found there)": 1,
                                 "argument end extended to the end of its word": 1}


def test_malformed_document_names_file(tmp_path):
    ann = tmp_path / "annotation"
    ann.mkdir()
    (ann / "7.json").write_text('{"content": "x", "sourcefile": "7.txt",\n "info": ', encoding="utf-8")
    with pytest.raises(SourceFormatError) as exc:
        BENCHMARKS["casie"].read_splits(tmp_path)
    assert exc.value.path == str(ann / "7.json") and exc.value.line == 2
    ev = {"index": "E1", "subtype": "Heist", "nugget": _span("x", 0, 1)}
    (ann / "7.json").write_text(json.dumps(_doc("x.", [ev])), encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"7\.json.*unknown subtype 'Heist'"):
        list(BENCHMARKS["casie"].read_splits(tmp_path)["test"])
    ev = {"index": "E1", "subtype": "Ransom", "nugget": _span("x", 0, 1), "argument": [_span("x", 0, 1, "T2", "CVE")]}
    (ann / "7.json").write_text(json.dumps(_doc("x.", [ev])), encoding="utf-8")
    with pytest.raises(SourceFormatError, match="role 'CVE' not expected for Ransom"):
        list(BENCHMARKS["casie"].read_splits(tmp_path)["test"])


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


def test_roundtrip_sample(casie, minilm):
    recs, _ = casie
    for s in SPLITS:
        sample = list(recs[s])
        random.Random(0).shuffle(sample)
        _roundtrip_check(minilm, sample[:500], f"casie/{s}")


@pytest.mark.full
def test_roundtrip_full(casie, minilm):
    recs, _ = casie
    for s in SPLITS:
        _roundtrip_check(minilm, recs[s], f"casie/{s}")
