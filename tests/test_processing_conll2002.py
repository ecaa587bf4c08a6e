"""CoNLL-2002 Spanish / Dutch converters on the real staged data: counts per split = SOURCE.md, exact first records,
the Dutch -DOCSTART- quirk (dropped and counted), the Spanish I- without B- (an entity start, noted), errors."""

from __future__ import annotations

from collections import Counter

import pytest

from processing import BENCHMARKS
from processing.convert import ConversionReport
from processing.registry import SourceFormatError
from processing.roundtrip_table import read_records

INST = "Please identify possible entities from the given text and determine their types."
SCHEMA = {"ent": ["person", "location", "organization", "miscellaneous"]}


@pytest.fixture(scope="module", params=["es", "nl"])
def real(request, shared_data):
    return request.param, *read_records(f"conll2002-{request.param}", shared_data)


#: SOURCE.md's table: sentences, tokens, PER / LOC / ORG / MISC mentions per split
EXPECTED = {
    "es": {"train": (8323, 264715, (4321, 4914, 7390, 2173)), "dev": (1915, 52923, (1222, 985, 1700, 445)),
           "test": (1517, 51533, (735, 1084, 1400, 340))},
    "nl": {"train": (15806, 202644, (4716, 3208, 2082, 3338)), "dev": (2895, 37687, (703, 479, 686, 748)),
           "test": (5195, 68875, (1098, 774, 882, 1187))},
}


def test_real_counts_match_source_md(real):
    lang, splits, report = real
    for split, (n_sent, n_tok, per_type) in EXPECTED[lang].items():
        recs = splits[split]
        types = Counter(e["type"] for r in recs for e in r["ans"].get("ent", []))
        got = (len(recs), sum(len(r["text"].split(" ")) for r in recs),
               tuple(types[t] for t in ("person", "location", "organization", "miscellaneous")))
        assert got == (n_sent, n_tok, per_type), (lang, split)
    assert report.dropped() == 0 and report.missing_splits == {}
    if lang == "nl":  # the article markers: dropped lines, counted, never tokens
        assert {s: dict(c) for s, c in report.notes.items()} == {
            s: {"-DOCSTART- line dropped (document marker)": n} for s, n in (("train", 287), ("dev", 74), ("test", 119))}
        assert not any("-DOCSTART-" in r["text"] for recs in splits.values() for r in recs)
    else:  # one I- without B- per file, read as a start
        assert {s: dict(c) for s, c in report.notes.items()} == {
            s: {"I- tag without B- (treated as entity start)": 1} for s in ("train", "dev", "test")}


def test_real_first_records_exact(real):
    lang, splits, _ = real
    first = splits["train"][0]
    if lang == "es":
        assert first == {
            "id": "conll2002-es.train.0", "instruction": INST, "schema": SCHEMA, "bg": "",
            "text": "Melbourne ( Australia ) , 25 may ( EFE ) .",
            "ans": {"ent": [{"type": "location", "text": "Melbourne", "span": [0, 9]},
                            {"type": "location", "text": "Australia", "span": [12, 21]},
                            {"type": "organization", "text": "EFE", "span": [35, 38]}]},
        }
        assert splits["test"][0]["text"] == "La Coruña , 23 may ( EFECOM ) ."
    else:  # ned.train opens with a -DOCSTART- line, no blank line after it: the sentence starts at "De"
        assert first == {
            "id": "conll2002-nl.train.0", "instruction": INST, "schema": SCHEMA, "bg": "",
            "text": "De tekst van het arrest is nog niet schriftelijk beschikbaar maar het bericht werd alvast "
                    "bekendgemaakt door een communicatiebureau dat Floralux inhuurde .",
            "ans": {"ent": [{"type": "organization", "text": "Floralux", "span": [136, 144]}]},
        }
        assert splits["test"][0]["text"].startswith("Dat is in Italië , Spanje of Engeland misschien geen probleem")
    for recs in splits.values():
        for r in recs:
            for e in r["ans"].get("ent", []):
                assert r["text"][e["span"][0] : e["span"][1]] == e["text"]


def test_registered_and_bad_lines_name_file_and_line(tmp_path):
    assert {"conll2002-es", "conll2002-nl"} <= set(BENCHMARKS)
    assert BENCHMARKS["conll2002-nl"].shared_subdir == "conll2002"
    (tmp_path / "ned.train").write_text("-DOCSTART- -DOCSTART- O\nJan N B-PER\nwoont V O\n\nHij Pron O extra\n",
                                        encoding="utf-8")
    report = ConversionReport("conll2002-nl")
    readers = BENCHMARKS["conll2002-nl"].read_splits(tmp_path, report=report)
    it = readers["train"]
    assert next(it)["text"] == "Jan woont"
    with pytest.raises(SourceFormatError, match=r"ned\.train.*5.*expected 3 columns"):
        next(it)
    (tmp_path / "esp.train").write_text("Madrid NP B-CITY\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"esp\.train.*1.*unknown entity type 'CITY'"):
        list(BENCHMARKS["conll2002-es"].read_splits(tmp_path)["train"])
