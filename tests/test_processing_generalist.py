"""Generalist pre-training converters (issue #23): biomed (10 sets), wnut17, webnlg, ade, semeval2010_task8, pilener.

Real data: split sizes and mention counts against each folder's SOURCE.md, first records exactly, label maps total
over the staged files, located-offset reports (ambiguous / unfound), a round trip sample. Bad input: small files
written here.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from modeling_ldnet import LDNetProcessor
from modeling_ldnet.roundtrip import MISS_CATEGORIES, roundtrip
from modeling_ldnet.schema import validate_record
from processing import BENCHMARKS, convert_benchmark, to_spec_record
from processing.__main__ import main as processing_main
from processing.ade import parse_fold
from processing.biomed import LABELS as BIOMED_LABELS
from processing.biomed import SETS, SPLIT_FILES
from processing.convert import ConversionReport
from processing.pilener import load_definitions, passage_entities, word_occurrences
from processing.registry import SourceFormatError
from processing.roundtrip_table import read_records, sample
from processing.semeval2010 import RELATIONS as SEMEVAL_RELATIONS
from processing.semeval2010 import strip_markers
from processing.webnlg import Placement, locate_pair, relation_label
from processing.wnut17 import LABELS as WNUT_LABELS

NER = "Please identify possible entities from the given text and determine their types."
JOINT = ("Please identify possible entities from the given text and determine their types, then determine the "
         "relationships between them.")
NEW = [*SETS, "wnut17", "webnlg", "ade", "semeval2010_task8", "pilener"]

# SOURCE.md (biomed): sentences and mentions, train / devel / test
BIOMED_COUNTS = {
    "bionlp13cg": ((3033, 1003, 1906), (10826, 3616, 6881)),
    "bionlp13pc": ((2499, 857, 1695), (7853, 2734, 5306)),
    "bionlp11id": ((2496, 721, 1961), (5674, 1598, 3810)),
    "bc5cdr": ((4560, 4581, 4797), (9385, 9593, 9809)),
    "anatem": ((5861, 2118, 3830), (6946, 2139, 4616)),
    "bc2gm": ((12574, 2519, 5038), (15197, 3061, 6325)),
    "linnaeus": ((11935, 4078, 7142), (2119, 711, 1433)),
    "ex_ptm": ((1377, 437, 1839), (1787, 603, 2308)),
    "bionlp13ge": ((2449, 2737, 3391), (3566, 4132, 4359)),
    "ncbi_disease": ((5424, 923, 940), (5134, 787, 960)),
}


@pytest.fixture(scope="module")
def records(shared_data):
    """``records(name, **options)`` -> ``(splits, report)``, read once per (name, options)."""
    cache: dict = {}

    def get(name: str, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in cache:
            cache[key] = read_records(name, shared_data, **options)
        return cache[key]

    return get


def spec(rec: dict) -> dict:
    return {k: rec[k] for k in ("id", "instruction", "schema", "text", "ans")}


# ----------------------------------------------------------------------------------------------------------------
# registry / listing
# ----------------------------------------------------------------------------------------------------------------


def test_listed(capsys):
    assert processing_main(["list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:] if line.strip()}
    for name in NEW:
        assert rows[name] == [BENCHMARKS[name].task, "real"], name
    assert "held-out" in BENCHMARKS["ncbi_disease"].source and "held-out" in BENCHMARKS["wnut17"].source
    assert all("held-out" not in BENCHMARKS[n].source for n in SETS if n != "ncbi_disease")


# ----------------------------------------------------------------------------------------------------------------
# biomed + wnut17 (BIO)
# ----------------------------------------------------------------------------------------------------------------


def _tag_types(path: Path) -> set[str]:
    types = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            tag = line.split("\t")[1]
            if tag != "O":
                types.add(tag[2:])
    return types


@pytest.mark.parametrize("name", list(SETS))
def test_biomed_label_map_is_total(name, shared_data):
    folder = shared_data / "biomed" / SETS[name]
    found = set().union(*(_tag_types(folder / f) for f in SPLIT_FILES.values()))
    assert found == set(BIOMED_LABELS[name]), name  # every staged type mapped, no unused entry


def test_wnut17_label_map_is_total(shared_data):
    folder = shared_data / "wnut17"
    found = set().union(*(_tag_types(folder / f) for f in ("wnut17train.conll", "emerging.dev.conll",
                                                           "emerging.test.annotated")))
    assert found == set(WNUT_LABELS)


@pytest.mark.parametrize("name", list(SETS))
def test_biomed_counts(name, records):
    splits, rep = records(name)
    sents, mentions = BIOMED_COUNTS[name]
    assert tuple(len(splits[s]) for s in ("train", "dev", "test")) == sents
    assert tuple(rep.splits[s].items["ent"] for s in ("train", "dev", "test")) == mentions
    assert rep.dropped() == 0 and not rep.notes and not rep.missing_splits
    for recs in splits.values():
        for r in recs[:300]:
            assert r["schema"] == {"ent": list(BIOMED_LABELS[name].values())}
            for e in r["ans"].get("ent", []):
                s, t = e["span"]
                assert r["text"][s:t] == e["text"] and (s == 0 or r["text"][s - 1] == " ")


def test_biomed_first_records(records):
    splits, _ = records("bionlp13cg")
    assert spec(splits["train"][0]) == {
        "id": "bionlp13cg.train.0", "instruction": NER, "schema": {"ent": list(BIOMED_LABELS["bionlp13cg"].values())},
        "text": "The TGF - beta type II receptor in chronic myeloid leukemia : analysis of microsatellite regions and "
                "gene expression .",
        "ans": {"ent": [{"type": "gene or gene product", "text": "TGF - beta type II receptor", "span": [4, 31]},
                        {"type": "cancer", "text": "chronic myeloid leukemia", "span": [35, 59]}]},
    }
    splits, _ = records("ncbi_disease")
    assert spec(splits["test"][0]) == {
        "id": "ncbi_disease.test.0", "instruction": NER, "schema": {"ent": ["disease"]},
        "text": "Clustering of missense mutations in the ataxia - telangiectasia gene in a sporadic T - cell leukaemia .",
        "ans": {"ent": [{"type": "disease", "text": "ataxia - telangiectasia", "span": [40, 63]},
                        {"type": "disease", "text": "sporadic T - cell leukaemia", "span": [74, 101]}]},
    }
    assert BIOMED_LABELS["bc2gm"] == {"GENE": "gene"}
    assert BIOMED_LABELS["bionlp13pc"]["Gene_or_gene_product"] == "gene or gene product"
    assert BIOMED_LABELS["bionlp13pc"]["Simple_chemical"] == "simple chemical"


def test_wnut17_counts_and_first_record(records):
    splits, rep = records("wnut17")
    assert {s: len(r) for s, r in splits.items()} == {"train": 3394, "dev": 1009, "test": 1287}  # SOURCE.md
    per_type = {s: Counter(e["type"] for r in recs for e in r["ans"].get("ent", [])) for s, recs in splits.items()}
    assert per_type["train"] == {"person": 660, "location": 548, "group": 264, "corporation": 221, "product": 142,
                                 "creative work": 140}
    assert per_type["test"] == {"person": 429, "location": 150, "group": 165, "corporation": 66, "product": 127,
                                "creative work": 142}
    assert sum(per_type["dev"].values()) == 836
    assert spec(splits["test"][0]) == {
        "id": "wnut17.test.0", "instruction": NER,
        "schema": {"ent": ["person", "location", "corporation", "product", "creative work", "group"]},
        "text": "& gt ; * The soldier was killed when another avalanche hit an army barracks in the northern area of "
                "Sonmarg , said a military spokesman .",
        "ans": {"ent": [{"type": "location", "text": "Sonmarg", "span": [100, 107]}]},
    }


def test_bio_bad_input(tmp_path):
    (tmp_path / "train.tsv").write_text("IL-2\tB-Protein\ngene\tO\n\nTNF\tB-Cytokine\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"train\.tsv:4: unknown entity type 'Cytokine'"):
        convert_benchmark("ex_ptm", tmp_path, progress=False)
    (tmp_path / "train.tsv").write_text("IL-2\tB-Protein\ngene O\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"train\.tsv:2: expected 2 columns"):
        convert_benchmark("ex_ptm", tmp_path, progress=False)
    (tmp_path / "train.tsv").write_text("IL-2\tX-Protein\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"train\.tsv:1: invalid tag 'X-Protein'"):
        convert_benchmark("ex_ptm", tmp_path, progress=False)
    # a TAB-only line separates sentences (WNUT-17 train); absent dev/test files are reported, not fatal
    (tmp_path / "train.tsv").write_text("IL-2\tB-Protein\n\t\nTNF\tB-Protein\nalpha\tI-Protein\n", encoding="utf-8")
    dd, rep = convert_benchmark("ex_ptm", tmp_path, progress=False)
    assert [to_spec_record(r)["ans"] for r in dd["train"]] == [
        {"ent": [{"type": "protein", "text": "IL-2", "span": [0, 4]}]},
        {"ent": [{"type": "protein", "text": "TNF alpha", "span": [0, 9]}]},
    ]
    assert set(rep.missing_splits) == {"dev", "test"}


# ----------------------------------------------------------------------------------------------------------------
# webnlg
# ----------------------------------------------------------------------------------------------------------------


def test_webnlg_relation_labels(records):
    assert relation_label("birthPlace") == "birth place"
    assert relation_label("leaderName") == "leader name"
    assert relation_label("3rd_runway_LengthFeet") == "3rd runway length feet"
    assert relation_label("ICAO_Location_Identifier") == "ICAO location identifier"
    assert relation_label("elevationAboveTheSeaLevel_(in_metres)") == "elevation above the sea level (in metres)"
    assert relation_label("was selected by NASA") == "was selected by NASA"
    assert relation_label("LibraryofCongressClassification") == "library of congress classification"
    splits, _ = records("webnlg")
    rels = splits["train"][0]["schema"]["rel"]
    assert len(rels) == len(set(rels)) == 216 and rels[:3] == ["preceded by", "legislature", "area total"]


def test_webnlg_counts_and_report(records):
    splits, rep = records("webnlg")
    assert {s: len(r) for s, r in splits.items()} == {"train": 5019, "dev": 500, "test": 703}  # SOURCE.md
    # SOURCE.md triples 11313 / 1224 / 1607 = converted + dropped (nothing unfound: all strings are in the text)
    conv = {s: rep.splits[s].items["rel"] for s in splits}
    assert conv == {"train": 11247, "dev": 1219, "test": 1593}
    assert {s: conv[s] + rep.dropped(s) for s in splits} == {"train": 11313, "dev": 1224, "test": 1607}
    assert rep.drops == {
        "train": {"head and tail overlap in every placement": 65, "duplicate triple": 1},
        "dev": {"head and tail overlap in every placement": 4, "duplicate triple": 1},
        "test": {"head and tail overlap in every placement": 14},
    }
    assert rep.dropped(reason="entity not found in text") == 0
    assert rep.notes == {
        "train": {"ambiguous mention (closest pair used)": 1465, "matched case-insensitively": 36,
                  "record left without triples (kept, no answer)": 10},
        "dev": {"ambiguous mention (closest pair used)": 193, "matched case-insensitively": 3},
        "test": {"ambiguous mention (closest pair used)": 232, "matched case-insensitively": 8,
                 "record left without triples (kept, no answer)": 3},
    }
    assert {s: rep.splits[s].empty for s in splits} == {"train": 10, "dev": 0, "test": 3}
    assert spec(splits["train"][0])["ans"] == {"rel": [
        {"relation": "manager", "head": {"text": "1 . FC Köln", "span": [27, 38]},
         "tail": {"text": "Peter Stöger", "span": [0, 12]}},
        {"relation": "season", "head": {"text": "1 . FC Köln", "span": [27, 38]}, "tail": {"text": "2014", "span": [87, 91]}},
        {"relation": "number of members", "head": {"text": "1 . FC Köln", "span": [27, 38]},
         "tail": {"text": "50000", "span": [49, 54]}},
    ]}
    assert splits["train"][0]["text"] == ("Peter Stöger is manager of 1 . FC Köln which has 50000 members and "
                                          "participated in the 2014 season .")


def test_webnlg_locate_pair():
    text = "A is near B . Later , B met A and A left ."
    # A at 0, 28, 34; B at 11, 22: the closest pair is (A 28, B 22) -- gap 4; both mentions ambiguous
    assert locate_pair(text, "A", "B", {"A", "B"}) == Placement([28, 29], [22, 23], None, 2, False)
    assert locate_pair("x 2014 201415", "x", "2014", {"x", "2014"}) == Placement([0, 1], [2, 6], None, 0, False)
    assert locate_pair("Bacon is good", "Bacon", "Bacon", {"Bacon"}).reason == "head and tail overlap in every placement"
    # the case-insensitive fallback: only the capitalised "Bacon" of "Bacon explosion" matches exactly
    assert locate_pair("Bacon explosion has bacon", "Bacon explosion", "Bacon", {"Bacon explosion", "Bacon"}) == \
        Placement([0, 15], [20, 25], None, 0, True)
    assert locate_pair("New York and York", "New York", "York", {"New York", "York"}) == \
        Placement([0, 8], [13, 17], None, 0, False)
    assert locate_pair("a b", "a", "c", {"a", "c"}) == Placement([], [], "entity not found in text")


def _write_webnlg(folder: Path, items: list, rels: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rel2id.json").write_text(json.dumps([{r: i for i, r in enumerate(rels)}]), encoding="utf-8")
    (folder / "val_triples.json").write_text(json.dumps(items, indent=1), encoding="utf-8")
    return folder


def test_webnlg_fixture_reports_unfound_and_ambiguous(tmp_path):
    src = _write_webnlg(tmp_path, [
        {"text": "Ann was born in Paris . Paris is big .",
         "triple_list": [["Ann", "birthPlace", "Paris"], ["Bob", "birthPlace", "Paris"], ["Ann", "birthPlace", "Paris"]]},
    ], ["birthPlace"])
    dd, rep = convert_benchmark("webnlg", src, progress=False)
    assert to_spec_record(dd["dev"][0])["ans"] == {"rel": [
        {"relation": "birth place", "head": {"text": "Ann", "span": [0, 3]}, "tail": {"text": "Paris", "span": [16, 21]}}]}
    assert rep.drops == {"dev": {"entity not found in text": 1, "duplicate triple": 1}}
    assert rep.notes == {"dev": {"ambiguous mention (closest pair used)": 1}}
    assert set(rep.missing_splits) == {"train", "test"}


def test_webnlg_bad_input(tmp_path):
    src = _write_webnlg(tmp_path, [{"text": "a b", "triple_list": [["a", "noSuch", "b"]]}], ["birthPlace"])
    with pytest.raises(SourceFormatError, match=r"val_triples\.json:1: dev\[0\]: unknown relation 'noSuch'"):
        convert_benchmark("webnlg", src, progress=False)
    _write_webnlg(tmp_path, [{"text": "a b", "triple_list": []}, {"text": "a b", "triple_list": [["a", "b"]]}],
                  ["birthPlace"])
    with pytest.raises(SourceFormatError, match=r"val_triples\.json:2: dev\[1\]: malformed item"):
        convert_benchmark("webnlg", src, progress=False)
    (tmp_path / "rel2id.json").unlink()
    with pytest.raises(FileNotFoundError, match="rel2id.json"):
        convert_benchmark("webnlg", src, progress=False)


# ----------------------------------------------------------------------------------------------------------------
# ade
# ----------------------------------------------------------------------------------------------------------------


def test_ade_full_and_folds(records):
    splits, rep = records("ade")
    assert list(splits) == ["train"] and len(splits["train"]) == 4272  # SOURCE.md
    assert (rep.splits["train"].items["ent"], rep.splits["train"].items["rel"]) == (10839, 6821)
    splits, rep = records("ade", fold=0)
    assert {s: len(r) for s, r in splits.items()} == {"train": 3845, "test": 427}
    assert {s: (rep.splits[s].items["ent"], rep.splits[s].items["rel"]) for s in splits} == {
        "train": (9769, 6155), "test": (1070, 666)}
    assert rep.dropped() == 0
    assert spec(splits["test"][0])["id"] == "ade-fold0.test.0"
    first = splits["train"][0]
    assert spec(first) == {
        "id": "ade-fold0.train.0", "instruction": JOINT,
        "schema": {"ent": ["drug", "adverse effect"], "rel": ["adverse effect of"]},
        "text": first["text"], "ans": first["ans"],
    }
    # every relation: head = the adverse effect, tail = a drug (SOURCE.md)
    for r in splits["train"][:500]:
        types = {tuple(e["span"]): e["type"] for e in r["ans"]["ent"]}
        for rel in r["ans"]["rel"]:
            assert (types[tuple(rel["head"]["span"])], types[tuple(rel["tail"]["span"])]) == ("adverse effect", "drug")


def test_ade_first_record_and_relation_only(shared_data):
    splits, _ = read_records("ade", shared_data, with_entities=False)
    r = splits["train"][0]
    assert r["schema"] == {"rel": ["adverse effect of"]} and set(r["ans"]) == {"rel"}
    assert r["instruction"] == BENCHMARKS["conll04"].instruction


def test_ade_options_and_bad_input(tmp_path):
    assert parse_fold("full") is None and parse_fold(3) == 3 and parse_fold("9") == 9
    for bad in (10, -1, "x", "1.5", True):
        with pytest.raises(ValueError, match="fold"):
            parse_fold(bad)
    sent = {"tokens": ["aspirin", "rash"], "entities": [{"type": "Drug", "start": 0, "end": 1},
                                                        {"type": "Adverse-Effect", "start": 1, "end": 2}],
            "relations": [{"type": "Adverse-Effect", "head": 1, "tail": 0}], "orig_id": 0}
    (tmp_path / "ade_full.json").write_text(json.dumps([sent, {**sent, "orig_id": 1}]), encoding="utf-8")
    (tmp_path / "ade_split_0_test.json").write_text(json.dumps([{**sent, "orig_id": 7}]), encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"ade_split_0_test\.json:1: \[0\]: orig_id 7 is not in ade_full"):
        convert_benchmark("ade", tmp_path, progress=False, fold=0)
    (tmp_path / "ade_split_0_test.json").write_text(json.dumps([{**sent, "orig_id": 1}]), encoding="utf-8")
    dd, _ = convert_benchmark("ade", tmp_path, progress=False, fold="0")
    assert {s: dd[s].num_rows for s in dd} == {"train": 1, "test": 1}
    assert to_spec_record(dd["test"][0])["ans"]["rel"] == [
        {"relation": "adverse effect of", "head": {"text": "rash", "span": [8, 12]},
         "tail": {"text": "aspirin", "span": [0, 7]}}]
    bad = {**sent, "entities": [{"type": "Dose", "start": 0, "end": 1}], "relations": [], "orig_id": 1}
    (tmp_path / "ade_full.json").write_text(json.dumps([sent, bad]), encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"ade_full\.json:2: train\[1\]: unknown entity type 'Dose'"):
        convert_benchmark("ade", tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="ade_split_4_test.json"):
        convert_benchmark("ade", tmp_path, progress=False, fold=4)


# ----------------------------------------------------------------------------------------------------------------
# semeval2010_task8
# ----------------------------------------------------------------------------------------------------------------


def test_semeval_counts_and_records(records):
    splits, rep = records("semeval2010_task8")
    assert {s: len(r) for s, r in splits.items()} == {"train": 8000, "test": 2717}  # no dev (SOURCE.md)
    assert {s: (rep.splits[s].items["ent"], rep.splits[s].items["rel"]) for s in splits} == {
        "train": (16000, 6590), "test": (5434, 2263)}  # Other: 1410 / 454 records without relation
    per_rel = Counter(x["relation"] for r in splits["train"] for x in r["ans"].get("rel", []))
    assert per_rel["cause effect"] == 1003 and per_rel["component whole"] == 941
    schema = {"ent": ["entity"], "rel": SEMEVAL_RELATIONS}
    assert spec(splits["train"][0]) == {
        "id": "semeval2010_task8.train.1", "instruction": JOINT, "schema": schema,
        "text": "The system as described above has its greatest application in an arrayed configuration of antenna "
                "elements.",
        "ans": {"ent": [{"type": "entity", "text": "configuration", "span": [73, 86]},
                        {"type": "entity", "text": "elements", "span": [98, 106]}],
                # Component-Whole(e2,e1): the component (head) is e2
                "rel": [{"relation": "component whole", "head": {"text": "elements", "span": [98, 106]},
                         "tail": {"text": "configuration", "span": [73, 86]}}]},
    }
    other = next(r for r in splits["train"] if not r["ans"].get("rel"))
    assert other["id"] == "semeval2010_task8.train.2" and len(other["ans"]["ent"]) == 2
    inner = splits["train"][29]  # id 30: inner quotes are kept, only the outer pair goes
    assert inner["id"] == "semeval2010_task8.train.30"
    assert inner["text"] == ('The timer of the device automatically eliminates wasted "standby power" consumption by '
                             'automatically turn off electronics plugged into the "auto off" outlets.')
    assert inner["ans"]["rel"] == [{"relation": "component whole", "head": {"text": "timer", "span": [4, 9]},
                                    "tail": {"text": "device", "span": [17, 23]}}]
    assert all('<e' not in r["text"] and '</e' not in r["text"] for recs in splits.values() for r in recs)


def test_semeval_strip_markers():
    assert strip_markers("a <e1>b c</e1> d <e2>e</e2>.", Path("f"), 1) == ("a b c d e.", {"e1": [2, 5], "e2": [8, 9]})
    assert strip_markers('"x" <e2>y</e2> <e1>z</e1>', Path("f"), 1) == ('"x" y z', {"e2": [4, 5], "e1": [6, 7]})
    with pytest.raises(SourceFormatError, match=r"f:3: expected one <e1>"):
        strip_markers("a <e1>b</e1> c", Path("f"), 3)
    with pytest.raises(SourceFormatError, match=r"f:3: marker <e1> repeated"):
        strip_markers("<e1>a <e1>b</e1> <e2>c</e2>", Path("f"), 3)


def _write_semeval(folder: Path, blocks: str) -> Path:
    train = folder / "SemEval2010_task8_training"
    train.mkdir(parents=True, exist_ok=True)
    (train / "TRAIN_FILE.TXT").write_bytes(blocks.replace("\n", "\r\n").encode("ascii"))
    return folder


def test_semeval_bad_input(tmp_path):
    ok = '1\t"The <e1>cat</e1> ate the <e2>fish</e2>."\nOther\nComment:\n\n'
    _write_semeval(tmp_path, ok + '2\t"A <e1>b</e1> c <e2>d</e2>."\nCause-Effect(e1,e3)\nComment:\n\n')
    with pytest.raises(SourceFormatError, match=r"TRAIN_FILE\.TXT:6: label 'Cause-Effect\(e1,e3\)'"):
        convert_benchmark("semeval2010_task8", tmp_path, progress=False)
    _write_semeval(tmp_path, ok + '2\t"A <e1>b</e1> c <e2>d</e2>."\nLikes(e1,e2)\nComment:\n\n')
    with pytest.raises(SourceFormatError, match=r"TRAIN_FILE\.TXT:6: unknown relation 'Likes'"):
        convert_benchmark("semeval2010_task8", tmp_path, progress=False)
    _write_semeval(tmp_path, ok + '2\t"A <e1>b</e1> c <e2>d</e2>."\nOther\n\n')
    with pytest.raises(SourceFormatError, match=r"TRAIN_FILE\.TXT:5: expected 3 lines"):
        convert_benchmark("semeval2010_task8", tmp_path, progress=False)
    _write_semeval(tmp_path, ok + '2\t"A <e1>b</e1> c d."\nOther\nComment:\n\n')
    with pytest.raises(SourceFormatError, match=r"TRAIN_FILE\.TXT:5: expected one <e1>"):
        convert_benchmark("semeval2010_task8", tmp_path, progress=False)
    _write_semeval(tmp_path, ok + '2\t"A <e1>b</e1> c <e2>d</e2>."\nEntity-Origin(e2,e1)\nComment: x\n')
    dd, rep = convert_benchmark("semeval2010_task8", tmp_path, progress=False)
    assert to_spec_record(dd["train"][1])["ans"]["rel"] == [
        {"relation": "entity origin", "head": {"text": "d", "span": [6, 7]}, "tail": {"text": "b", "span": [2, 3]}}]
    assert to_spec_record(dd["train"][0])["text"] == "The cat ate the fish."
    assert set(rep.missing_splits) == {"test"}


# ----------------------------------------------------------------------------------------------------------------
# pilener
# ----------------------------------------------------------------------------------------------------------------


def test_pilener_counts_and_first_records(records):
    splits, rep = records("pilener")
    assert list(splits) == ["train"] and len(splits["train"]) == 882  # distinct passages (SOURCE.md)
    recs = splits["train"]
    assert sum(len(r["schema"]["ent"]) for r in recs) == 1320  # every row's type is in its passage's schema
    assert len({t for r in recs for t in r["schema"]["ent"]}) == 384
    assert rep.splits["train"].items["ent"] == 2376 and rep.splits["train"].empty == 326
    assert rep.drops == {}  # every mention string is found on word boundaries
    assert rep.notes["train"] == {"ambiguous mention (every occurrence tagged)": 387,
                                  "occurrence inside a longer mention of the same type skipped": 52}
    assert spec(recs[0]) == {"id": "pilener.train.0", "instruction": NER, "schema": {"ent": ["court"]},
                             "text": recs[0]["text"], "ans": {}}  # a negative passage: the type has no mention
    assert recs[0]["text"].startswith("196 Pa. Superior Ct. 138 (1961)\nSharp\nv.\n")
    assert recs[1]["schema"] == {"ent": ["month", "medication"]}
    assert recs[1]["ans"] == {"ent": [{"type": "month", "text": "August", "span": [990, 996]},
                                      {"type": "month", "text": "January", "span": [1024, 1031]},
                                      {"type": "month", "text": "February", "span": [1036, 1044]}]}


def test_pilener_word_occurrences_and_policy():
    assert word_occurrences("Sharp, Sharpe and sharp. Sharp", "Sharp") == [0, 25]
    assert word_occurrences("cost $180.00 or $180.001", "$180.00") == [5]
    rep = ConversionReport("x")
    text = "New York and York ; New York"
    ents = passage_entities(text, "city", ["New York", "York", "York", "Boston"], "w", "train", rep)
    assert [(e["text"], e["span"]) for e in ents] == [("New York", [0, 8]), ("York", [13, 17]),
                                                      ("New York", [20, 28])]
    assert rep.drops == {"train": {"mention not found in passage": 1}}
    assert rep.notes["train"] == {"duplicate mention string": 1, "ambiguous mention (every occurrence tagged)": 1,
                                  "occurrence inside a longer mention of the same type skipped": 2}


def test_pilener_definitions(shared_data):
    defs = load_definitions(shared_data / "pilener_slimer")
    assert len(defs) == 391 and "instrument" not in defs
    assert defs["person"] == ("'person' signifies individuals, including real or fictional people, and refers to "
                              "specific human beings.")


def test_pilener_descriptions_option(shared_data):
    bench = BENCHMARKS["pilener"]
    rep = ConversionReport("pilener")
    recs = list(bench.read_splits(shared_data / "pilener_slimer", instruction=NER, report=rep,
                                  descriptions=True)["train"])
    defs = load_definitions(shared_data / "pilener_slimer")
    assert recs[1]["schema"] == {"ent": {"month": defs["month"], "medication": defs["medication"]}}
    assert rep.notes["train"]["type without definition (bare label)"] == 3
    canon = validate_record(recs[1])  # modeling_ldnet.schema accepts the described form
    assert canon["schema"] == {"ent": ["month", "medication"]}
    assert [d["description"] for d in canon["descriptions"]] == [defs["month"], defs["medication"]]
    bare = next(r for r in recs if "instrument" in r["schema"]["ent"])
    assert bare["schema"]["ent"]["instrument"] is None
    assert "instrument" not in {d["label"] for d in validate_record(bare).get("descriptions", [])}


def test_pilener_bad_input(tmp_path):
    row = {"doc_question_pairID": "1:0", "tagName": "city", "input": "Paris is big", "output": '["Paris", "Lyon"]'}
    lines = [json.dumps(row), json.dumps({**row, "doc_question_pairID": "1:1", "tagName": "country", "output": "[]"})]
    (tmp_path / "validation.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dd, rep = convert_benchmark("pilener", tmp_path, progress=False)
    assert to_spec_record(dd["train"][0])["schema"] == {"ent": ["city", "country"]}
    assert to_spec_record(dd["train"][0])["ans"] == {"ent": [{"type": "city", "text": "Paris", "span": [0, 5]}]}
    assert rep.drops == {"train": {"mention not found in passage": 1}}
    (tmp_path / "validation.jsonl").write_text(lines[0] + "\n" + json.dumps({**row, "output": "Paris"}) + "\n",
                                               encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"validation\.jsonl:2: malformed row"):
        convert_benchmark("pilener", tmp_path, progress=False)
    other = {**row, "doc_question_pairID": "1:1", "tagName": "country", "input": "Lyon"}
    (tmp_path / "validation.jsonl").write_text(lines[0] + "\n" + json.dumps(other) + "\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"validation\.jsonl:2: passage '1': text differs"):
        convert_benchmark("pilener", tmp_path, progress=False)


# ----------------------------------------------------------------------------------------------------------------
# round trip (offsets located by string search, and two BIO sets)
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proc(minilm):
    return LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm))


@pytest.mark.parametrize("name", ["webnlg", "pilener", "semeval2010_task8", "ade", "wnut17", "bc5cdr"])
def test_roundtrip_sample(name, proc, records):
    splits, _ = records(name)
    for split, recs in splits.items():
        picked = sample(recs, 300, 13)
        rep = roundtrip(proc, picked)
        assert rep.records == len(picked) and rep.items > 0, (name, split)
        assert rep.rate >= 0.995 and set(rep.misses) <= set(MISS_CATEGORIES), (name, split, str(rep), rep.examples)
