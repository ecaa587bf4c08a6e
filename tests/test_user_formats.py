"""Users' own data: CoNLL/BIO, spaCy DocBin, Label Studio, GLiNER and brat -> unified records (processing.user_formats).

Each converter runs on files written in its tool's real format (``tests/data/formats``; the ``.spacy`` file is made
with ``DocBin`` here): exact records, the conversion report, a span-graph round trip, errors naming file / line /
field, format detection, and ``ldnet-train --train_file`` on a user file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ldnet_tiny as T
import pytest
from transformers import AutoTokenizer

from modeling_ldnet import LDNetProcessor
from modeling_ldnet.roundtrip import roundtrip
from modeling_ldnet.vocabulary_ldnet import EE_INSTRUCTION, JOINT_INSTRUCTION, NER_INSTRUCTION
from processing import BENCHMARKS, SourceFormatError, to_spec_record
from processing.__main__ import main as cli_main
from processing.user_formats import convert_user_data, detect_format, load_user_data, split_prefix
from processing.user_formats.bio import decode, detect_scheme
from trainers.data import load_records, portable_path

DATA = Path(__file__).resolve().parent / "data" / "formats"
LS_EXPORT = DATA / "labelstudio" / "project-4-at-2024-05-02-10-20-0f3a5b7c.json"


def records(dd) -> dict[str, list[dict]]:
    return {split: [to_spec_record(r) for r in ds] for split, ds in dd.items()}


def ents(rec: dict, field: str = "ent") -> list[tuple]:
    return [(e["type"], e["text"], tuple(map(tuple, e["span"])) if field == "discontinuous_ent" else tuple(e["span"]))
            for e in rec["ans"].get(field, [])]


def mentions(text: str, *subs: str) -> list[list[int]]:
    return [[text.index(s), text.index(s) + len(s)] for s in subs]


@pytest.fixture(scope="module")
def proc(minilm):
    return LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm))


def assert_roundtrip(proc, recs: list[dict]) -> None:
    rep = roundtrip(proc, recs)
    assert rep.records == len(recs) and rep.items == sum(
        len(r["ans"].get(k, [])) for r in recs for k in ("cls", "ent", "discontinuous_ent", "rel")
    ) + sum(1 + len(e["args"]) for r in recs for e in r["ans"].get("event", []))
    assert rep.exact == rep.items and rep.extra == 0, (str(rep), rep.examples)


# ------------------------------------------------------------------------------------------------------- CoNLL / BIO


def test_bio_folder_iob1_iob2_bioes(proc):
    dd, rep = convert_user_data(DATA / "conll")
    out = records(dd)
    assert list(out) == ["train", "dev", "test"]
    labels = ["ADR", "Dose", "Drug", "Frequency", "LOC", "MISC", "ORG", "PER"]  # one sorted schema for all splits
    assert all(r["schema"] == {"ent": labels} and r["instruction"] == NER_INSTRUCTION for rs in out.values() for r in rs)
    assert [r["id"] for r in out["train"]] == ["train.0", "train.1", "train.2"]  # -DOCSTART- blocks are not sentences
    # IOB1 (CoNLL-2003): I- opens an entity, B- separates two adjacent PER entities
    assert out["train"][2]["text"] == "In Paris Hugo Anna Ivanova met ."
    assert ents(out["train"][2]) == [("LOC", "Paris", (3, 8)), ("PER", "Hugo", (9, 13)), ("PER", "Anna Ivanova", (14, 26))]
    assert ents(out["train"][0]) == [("ORG", "EU", (0, 2)), ("MISC", "German", (11, 17)), ("MISC", "British", (34, 41))]
    # IOB2, tab separated, a custom tag set
    assert out["dev"][0]["text"] == "Aspirin 500 mg cured my severe headache ."
    assert ents(out["dev"][0]) == [("Drug", "Aspirin", (0, 7)), ("Dose", "500 mg", (8, 14)),
                                   ("ADR", "severe headache", (24, 39))]
    assert ents(out["dev"][1]) == [("Drug", "ibuprofen", (5, 14)), ("Frequency", "twice daily", (15, 26))]
    # BIOES (S- single, B- I- I- E-)
    assert ents(out["test"][0]) == [("Drug", "Aspirin", (0, 7)), ("Dose", "500 mg", (8, 14)),
                                    ("ADR", "stomach bleeding and pain", (22, 47))]
    assert ents(out["test"][1]) == [("Drug", "Paracetamol", (0, 11))]
    assert rep.notes == {"train": {"tagging scheme IOB1 (auto-detected)": 1},
                         "dev": {"tagging scheme IOB2 (auto-detected)": 1},
                         "test": {"tagging scheme BIOES (auto-detected)": 1}}
    assert rep.dropped() == 0 and rep.splits["train"].items["ent"] == 7
    assert_roundtrip(proc, [r for rs in out.values() for r in rs])


def test_bio_scheme_detection_and_repairs():
    def tags(*ts: str) -> list[tuple[str, str]]:
        return [("O", "") if t == "O" else (t[0], t[2:]) for t in ts]

    assert detect_scheme([tags("I-PER", "B-PER", "O")]) == "iob1"
    assert detect_scheme([tags("B-PER", "I-PER", "O", "B-LOC")]) == "iob2"
    assert detect_scheme([tags("I-PER", "O", "B-LOC")]) == "iob2"  # B- after O: not IOB1 -> IOB2, stray I- noted
    assert detect_scheme([tags("B-X", "E-X")]) == "bioes"
    notes: list[tuple[str, int]] = []
    note = lambda reason, i: notes.append((reason, i))
    assert decode(tags("I-PER", "I-PER", "B-PER", "O"), "iob2", note) == [(0, 2, "PER"), (2, 3, "PER")]
    assert notes == [("I- tag without B- (treated as entity start)", 0)]
    notes.clear()
    # BIOES repairs: B- not closed by E- (closed at its last token), E- without an open entity (opens one)
    assert decode(tags("B-A", "I-A", "O", "E-B", "S-C", "B-D"), "bioes", note) == [
        (0, 2, "A"), (3, 4, "B"), (4, 5, "C"), (5, 6, "D")]
    assert [r for r, _ in notes] == ["entity not closed with E- (closed at its last token)",
                                     "E- tag without an open entity (opens one)",
                                     "entity not closed with E- (closed at its last token)"]


def test_bio_options_and_errors(tmp_path):
    src = tmp_path / "tagged.tsv"  # tag first (MIT Movie style), token second, a comment line
    src.write_text("# sent 1\nB-ACTOR\tsteve\nI-ACTOR\tmcqueen\nO\tmovies\n\n# sent 2\nB-GENRE\tnoir\n", encoding="utf-8")
    dd, rep = convert_user_data(src, fmt="conll", token_column=1, tag_column=0, separator="tab", comment_prefix="#",
                                label_map="ACTOR=actor,GENRE=genre")
    out = records(dd)["train"]
    assert [(r["id"], r["text"]) for r in out] == [("tagged.0", "steve mcqueen movies"), ("tagged.1", "noir")]
    assert out[0]["schema"] == {"ent": ["actor", "genre"]}
    assert ents(out[0]) == [("actor", "steve mcqueen", (0, 13))] and ents(out[1]) == [("genre", "noir", (0, 4))]

    bad = tmp_path / "bad.conll"
    bad.write_text("EU B-ORG\nrejects O\n\nGerman B_MISC\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"bad\.conll:4: invalid tag 'B_MISC'"):
        convert_user_data(bad)
    bad.write_text("EU B-ORG\nrejects\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"bad\.conll:2: expected a token column 0 and a tag column -1"):
        convert_user_data(bad)
    bad.write_text("Aspirin S-Drug\n", encoding="utf-8")
    with pytest.raises(SourceFormatError, match=r"scheme='iob2' but the file has E-/S-/L-/U- tags"):
        convert_user_data(bad, scheme="iob2")
    with pytest.raises(ValueError, match="scheme must be one of"):
        convert_user_data(bad, scheme="bilou2")


# ------------------------------------------------------------------------------------------------------------ GLiNER


def test_gliner_json_and_jsonl(proc, tmp_path):
    dd, rep = convert_user_data(DATA / "gliner")
    out = records(dd)
    assert {s: [r["id"] for r in rs] for s, rs in out.items()} == {"train": ["train.0", "train.1", "train.2"],
                                                                  "dev": ["dev.0"]}
    assert out["train"][0]["schema"] == {"ent": ["award", "city", "date", "organization", "person", "product", "state"]}
    assert out["train"][0]["text"] == "Apple Inc. is headquartered in Cupertino , California ."
    assert ents(out["train"][0]) == [("organization", "Apple Inc.", (0, 10)), ("city", "Cupertino", (31, 40)),
                                     ("state", "California", (43, 53))]
    assert ents(out["train"][1]) == [("person", "Tim Cook", (0, 8)), ("product", "iPhone 15", (22, 31)),
                                     ("date", "September 2023", (35, 49))]
    assert out["train"][2]["ans"] == {}
    # end index inclusive; nested entities kept
    assert ents(out["dev"][0]) == [("person", "Marie Curie", (0, 11)), ("award", "Nobel Prize in Physics", (20, 42)),
                                   ("award", "Nobel Prize", (20, 31))]
    assert rep.drops == {"train": {"duplicate entity": 1}}  # [4, 5, "product"] listed twice
    assert rep.examples[("drop", "train", "duplicate entity")] == "train.json:2 (4, 5, 'product')"
    assert_roundtrip(proc, [r for rs in out.values() for r in rs])

    bad = tmp_path / "test.jsonl"
    bad.write_text('{"tokenized_text": ["a", "b"], "ner": []}\n\n{"tokenized_text": ["a", "b"], "ner": [[1, 2, "x"]]}\n')
    with pytest.raises(SourceFormatError, match=r"test\.jsonl:3: field 'ner\[0\]': expected \[start, end_inclusive, "
                                                r"label\] inside the 2 tokens, got \[1, 2, 'x'\]"):
        convert_user_data(bad)
    bad.write_text('[{"tokenized_text": ["a"], "ner": []}, {"text": "a b"}]')
    with pytest.raises(SourceFormatError, match=r"test\.jsonl:2: expected a GLiNER example"):
        convert_user_data(bad, fmt="gliner")


# ------------------------------------------------------------------------------------------------------- Label Studio


def test_labelstudio_export(proc):
    dd, rep = convert_user_data(LS_EXPORT)
    out = records(dd)["train"]
    stem = LS_EXPORT.stem
    assert [r["id"] for r in out] == [f"{stem}.41", f"{stem}.42"]  # task 43 has no annotation (predictions only)
    schema = {"cls": ["Neutral", "Positive"], "ent": ["City", "Organization", "Person"],
              "rel": ["lives in", "located in", "works for"]}
    assert all(r["schema"] == schema and r["instruction"] == JOINT_INSTRUCTION for r in out)
    t1 = out[0]["text"]
    assert t1 == "Jerry Smith lives in New York and works for Acme Corp."
    jerry, ny, acme = mentions(t1, "Jerry Smith", "New York", "Acme Corp")
    assert out[0]["ans"] == {
        "cls": ["Neutral"],
        "ent": [{"type": "Person", "text": "Jerry Smith", "span": jerry}, {"type": "City", "text": "New York", "span": ny},
                {"type": "Organization", "text": "Acme Corp", "span": acme}],
        "rel": [{"relation": "lives in", "head": {"text": "Jerry Smith", "span": jerry},
                 "tail": {"text": "New York", "span": ny}},
                # direction "left": the arrow points at from_id (Acme) -> head = to_id (Jerry)
                {"relation": "works for", "head": {"text": "Jerry Smith", "span": jerry},
                 "tail": {"text": "Acme Corp", "span": acme}}],
    }
    # task 42: the ground-truth annotation is used; its offsets count the emoji as 2 UTF-16 units (converted)
    t2 = out[1]["text"]
    luigi, boston = mentions(t2, "Luigi's", "Boston")
    assert luigi == [17, 24]
    assert out[1]["ans"] == {
        "cls": ["Positive"],
        "ent": [{"type": "Organization", "text": "Luigi's", "span": luigi}, {"type": "City", "text": "Boston", "span": boston}],
        "rel": [{"relation": "located in", "head": {"text": "Luigi's", "span": luigi},
                 "tail": {"text": "Boston", "span": boston}}],
    }
    assert rep.drops == {"train": {"cancelled annotation": 1, "extra annotation of a task (one is used)": 1,
                                   "task without annotation": 1, "unsupported result type textarea": 1}}
    assert rep.notes == {"train": {"UTF-16 offsets converted": 2}}
    assert_roundtrip(proc, out)


def test_labelstudio_errors(tmp_path):
    tasks = json.loads(LS_EXPORT.read_text(encoding="utf-8"))
    bad = tmp_path / "export.json"

    def write(mutate) -> None:
        data = json.loads(json.dumps(tasks))
        mutate(data)
        bad.write_text(json.dumps(data), encoding="utf-8")

    write(lambda d: d[0]["annotations"][0]["result"][3].update(to_id="zz"))
    with pytest.raises(SourceFormatError, match=r"export\.json:1: task 41, field 'result\[3\]\.to_id': 'zz' is not "
                                                r"the id of a 'labels' region"):
        convert_user_data(bad, fmt="labelstudio")
    write(lambda d: d[0]["annotations"][0]["result"][0]["value"].update(start=1))
    with pytest.raises(SourceFormatError, match=r"task 41, field 'result\[0\]\.value\.text': 'Jerry Smith' != "
                                                r"text\[1:11\]"):
        convert_user_data(bad, fmt="labelstudio")
    write(lambda d: d[1].update(data={"review": d[1]["data"]["text"], "source": "reviews"}))
    with pytest.raises(SourceFormatError, match=r"export\.json:2: task 42, field 'data': cannot tell which field"):
        convert_user_data(bad, fmt="labelstudio")
    with pytest.raises(SourceFormatError, match=r"task 41, field 'data.nope': missing or not a string"):
        convert_user_data(bad, fmt="labelstudio", text_key="nope")
    write(lambda d: [t.update(data={"review": t["data"]["text"], "source": "reviews"}) for t in d])
    dd, _ = convert_user_data(bad, fmt="labelstudio", text_key="review")
    assert [r["text"][:5] for r in dd["train"]] == ["Jerry", "Great"]


# ------------------------------------------------------------------------------------------------------------ spaCy


def _write_docbin(path: Path) -> None:
    import spacy
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("en")
    db = DocBin()
    doc = nlp("Apple opened a store in San Francisco last May.")
    doc.ents = [Span(doc, 0, 1, "ORG"), Span(doc, 5, 7, "GPE"), Span(doc, 7, 9, "DATE")]
    doc.spans["sc"] = [Span(doc, 5, 7, "GPE"), Span(doc, 6, 7, "CITY_PART"), Span(doc, 3, 7, "FACILITY")]
    doc.cats = {"BUSINESS": 1.0, "SPORTS": 0.0}
    db.add(doc)
    doc = nlp("Nothing here.")
    doc.cats = {"BUSINESS": 0.0, "SPORTS": 0.2}
    doc.spans["sc"] = [Span(doc, 0, 1)]  # a span without a label
    db.add(doc)
    db.to_disk(path)


def test_spacy_docbin(proc, tmp_path):
    path = tmp_path / "train.spacy"
    _write_docbin(path)
    assert detect_format(path) == "spacy"
    dd, rep = convert_user_data(path)
    out = records(dd)["train"]
    text = "Apple opened a store in San Francisco last May."
    assert [(r["id"], r["text"]) for r in out] == [("train.0", text), ("train.1", "Nothing here.")]
    assert out[0]["schema"] == {"cls": ["BUSINESS", "SPORTS"],
                                "ent": ["CITY_PART", "DATE", "FACILITY", "GPE", "ORG"]}
    assert out[0]["instruction"] == NER_INSTRUCTION
    assert ents(out[0]) == [("ORG", "Apple", (0, 5)), ("GPE", "San Francisco", (24, 37)), ("DATE", "last May", (38, 46)),
                            ("CITY_PART", "Francisco", (28, 37)), ("FACILITY", "store in San Francisco", (15, 37))]
    assert out[0]["ans"]["cls"] == ["BUSINESS"] and out[1]["ans"] == {}
    assert rep.drops == {"train": {"span without a label": 1}}
    assert rep.notes == {"train": {"span in doc.ents and doc.spans (or two groups), kept once": 1}}
    assert_roundtrip(proc, out)
    # only doc.ents: no span group
    dd, _ = convert_user_data(path, spans_key="")
    assert [e[0] for e in ents(records(dd)["train"][0])] == ["ORG", "GPE", "DATE"]
    with pytest.raises(ValueError, match=r"spans_key \['ner'\] is in no doc \(span groups found: \['sc'\]\)"):
        convert_user_data(path, spans_key="ner")
    bad = tmp_path / "bad.spacy"
    bad.write_bytes(b"not a docbin")
    with pytest.raises(SourceFormatError, match=r"bad\.spacy:1: not a spaCy DocBin file"):
        convert_user_data(bad)


# ------------------------------------------------------------------------------------------------------------- brat


def test_brat_entities_discontinuous_relations_events(proc):
    dd, rep = convert_user_data(DATA / "brat")
    out = records(dd)
    assert {s: [r["id"] for r in rs] for s, rs in out.items()} == {
        "train": ["train/PMID-10080948", "train/case_report_01"], "dev": ["dev/news_0007"]}
    schema = {"discontinuous_ent": ["ADR", "Location", "Organization", "Person", "Protein"], "rel": ["Lives_in"],
              "event": {"Binding": ["Theme"], "Negative_regulation": ["Cause", "Theme"], "Phosphorylation": ["Theme"]}}
    assert all(r["schema"] == schema and r["instruction"] == EE_INSTRUCTION for rs in out.values() for r in rs)
    bio, case = out["train"]
    t = bio["text"]
    assert t == "Phosphorylation of TRAF2 inhibits binding to CD40.\n"
    traf2, cd40, phos, inhib, binding = mentions(t, "TRAF2", "CD40", "Phosphorylation", "inhibits", "binding")
    assert bio["ans"]["discontinuous_ent"] == [{"type": "Protein", "text": "TRAF2", "span": [traf2]},
                                               {"type": "Protein", "text": "CD40", "span": [cd40]}]
    assert bio["ans"]["event"] == [
        {"event_type": "Phosphorylation", "trigger": {"text": "Phosphorylation", "span": phos},
         "args": [{"role": "Theme", "text": "TRAF2", "span": traf2}]},
        {"event_type": "Binding", "trigger": {"text": "binding", "span": binding},
         "args": [{"role": "Theme", "text": "TRAF2", "span": traf2}, {"role": "Theme", "text": "CD40", "span": cd40}]},
        # nested events (Theme:E2 Cause:E1) point at the nested events' triggers
        {"event_type": "Negative_regulation", "trigger": {"text": "inhibits", "span": inhib},
         "args": [{"role": "Theme", "text": "binding", "span": binding},
                  {"role": "Cause", "text": "Phosphorylation", "span": phos}]},
    ]
    assert ents(case, "discontinuous_ent") == [
        ("Person", "Jerry Smith", ((0, 11),)), ("Location", "New York", ((21, 29),)),
        ("ADR", "cramps in legs", ((50, 64),)), ("ADR", "cramps in arms", ((50, 59), (69, 73)))]
    assert case["ans"]["rel"] == [{"relation": "Lives_in", "head": {"text": "Jerry Smith", "span": [0, 11]},
                                   "tail": {"text": "New York", "span": [21, 29]}}]
    assert rep.drops == {
        "train": {"attribute (A line) not representable": 1, "modification (M line) not representable": 1,
                  "normalization (N line) not representable": 1, "note (# line) not representable": 1,
                  "relation argument is discontinuous": 1},  # R2 Experiences Arg2:T4 (two fragments)
        "dev": {"equivalence (* line) not representable": 1},
    }
    assert rep.notes == {"train": {"numbered role name stripped (Theme2 -> Theme)": 1}}
    assert_roundtrip(proc, [r for rs in out.values() for r in rs])


def test_brat_options_crlf_and_lines(proc, tmp_path):
    # discontinuous=false: contiguous entities go to ans.ent; the two-fragment one is dropped (reported)
    dd, rep = convert_user_data(DATA / "brat" / "train" / "case_report_01.ann", discontinuous="false")
    (rec,) = records(dd)["train"]
    assert rec["id"] == "case_report_01" and rec["instruction"] == JOINT_INSTRUCTION
    assert ents(rec) == [("Person", "Jerry Smith", (0, 11)), ("Location", "New York", (21, 29)),
                         ("ADR", "cramps in legs", (50, 64))]
    assert rep.drops["train"]["discontinuous entity (discontinuous=false)"] == 1
    # CRLF document: brat offsets count the \r; segment=line gives one record per line with shifted offsets
    doc = tmp_path / "crlf"
    doc.mkdir()
    text = "Ann Lee moved to Paris.\r\nShe works for Acme.\r\n"
    (doc / "d1.txt").write_bytes(text.encode())
    acme = text.index("Acme")
    (doc / "d1.ann").write_text(f"T1\tPerson 0 7\tAnn Lee\nT2\tLocation 17 22\tParis\nT3\tOrganization {acme} {acme + 4}"
                                f"\tAcme\nT4\tPerson 25 28\tShe\nR1\tLives_in Arg1:T1 Arg2:T2\nR2\tWorks_for Arg1:T4 "
                                f"Arg2:T3\nR3\tWorks_for Arg1:T1 Arg2:T3\n", encoding="utf-8")
    dd, rep = convert_user_data(doc, segment="line")
    out = records(dd)["train"]
    assert [(r["id"], r["text"]) for r in out] == [("d1.0", "Ann Lee moved to Paris."), ("d1.1", "She works for Acme.")]
    assert ents(out[1]) == [("Organization", "Acme", (14, 18)), ("Person", "She", (0, 3))]
    assert out[1]["ans"]["rel"] == [{"relation": "Works_for", "head": {"text": "She", "span": [0, 3]},
                                     "tail": {"text": "Acme", "span": [14, 18]}}]
    assert rep.drops == {"train": {"rel spans two lines (segment=line)": 1}}  # R3 crosses the line break
    assert_roundtrip(proc, out)


@pytest.mark.parametrize("ann, message", [
    ("T1\tPerson 0 7\tAnn Lea\n", r"d\.ann:1: T1: text column 'Ann Lea' != document text 'Ann Lee'"),
    ("T1\tPerson 0 7\tAnn Lee\nR1\tLives_in Arg1:T1 Arg2:T9\n", r"d\.ann:2: relation Lives_in: argument 'T9' does not"),
    ("T1\tPerson 0 7\tAnn Lee\nA1\tNegated T2\n", r"d\.ann:2: attribute \(A line\) refers to 'T2', which does not"),
    ("T1\tPerson 0 99\tAnn Lee\n", r"d\.ann:1: T1: fragment \[0, 99\) outside the text"),
    ("T1\tPerson 0 7\tAnn Lee\nE1\tMove:T1 Agent\n", r"d\.ann:2: bad event"),
    ("T1\tPerson 0 7\tAnn Lee\nT1\tPerson 0 3\tAnn\n", r"d\.ann:2: id 'T1' is used twice"),
    ("X1\tfoo\n", r"d\.ann:1: unknown annotation line"),
])
def test_brat_errors_name_file_and_line(tmp_path, ann, message):
    (tmp_path / "d.txt").write_text("Ann Lee moved to Paris.\n", encoding="utf-8")
    (tmp_path / "d.ann").write_text(ann, encoding="utf-8")
    with pytest.raises(SourceFormatError, match=message):
        convert_user_data(tmp_path / "d.ann")


# ------------------------------------------------------------------------------------------ detection, CLI, training


def test_detect_format_and_prefix(tmp_path):
    assert detect_format(DATA / "conll") == "bio"
    assert detect_format(DATA / "conll" / "test.bioes") == "bio"
    assert detect_format(DATA / "gliner" / "train.json") == "gliner"
    assert detect_format(DATA / "gliner" / "dev.jsonl") == "gliner"
    assert detect_format(LS_EXPORT) == "labelstudio"
    assert detect_format(DATA / "brat") == "brat"
    assert detect_format(DATA / "brat" / "dev" / "news_0007.txt") == "brat"
    unified = T.write_jsonl(tmp_path / "train.jsonl", T.make_records(2))
    assert detect_format(unified) == "unified" and load_user_data(unified) is None
    assert split_prefix("conll:data/x.tsv") == ("bio", Path("data/x.tsv"))
    assert split_prefix("C:/data/x.tsv") == (None, Path("C:/data/x.tsv"))
    assert detect_format(f"gliner:{DATA / 'gliner' / 'dev.jsonl'}") == "gliner"
    with pytest.raises(ValueError, match="unknown data format 'xml'"):
        convert_user_data(LS_EXPORT, fmt="xml")
    for name in ("bio", "spacy", "labelstudio", "gliner", "brat"):
        assert BENCHMARKS[name].status == "fixture" and BENCHMARKS[name].how_to_obtain


def test_cli_convert_with_options(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_main(["convert", "brat", str(DATA / "brat"), str(out), "--no-progress", "--discontinuous", "false",
                     "--label-map", "Lives_in=lives in,Protein=protein"]) == 0
    printed = capsys.readouterr().out
    assert "| train | 2 | 0 |" in printed and "discontinuous entity (discontinuous=false)" in printed
    dev = [json.loads(line) for line in (out / "dev.jsonl").read_text().splitlines()]
    assert dev[0]["schema"]["rel"] == ["lives in"] and "protein" in dev[0]["schema"]["ent"]
    assert cli_main(["convert", "bio", str(DATA / "conll"), str(out), "--scheme", "nope"]) == 1
    assert "scheme must be one of" in capsys.readouterr().err


def test_load_records_reads_user_formats(tmp_path):
    ds = load_records(DATA / "gliner" / "train.json")
    assert ds.num_rows == 3 and ds[0]["id"] == "train.0"
    assert load_records(f"conll:{DATA / 'conll' / 'dev.txt'}")[1]["text"] == "Took ibuprofen twice daily"
    assert load_records(DATA / "brat", "validation")[0]["id"] == "dev/news_0007"
    single = tmp_path / "only"
    shutil.copytree(DATA / "brat" / "train", single)
    assert load_records(single).num_rows == 2  # a folder with a single split needs no split name
    with pytest.raises(ValueError, match=r"holds the splits \['train', 'dev'\]: name one"):
        load_records(DATA / "brat")


def test_ldnet_train_on_a_user_file(tmp_path):
    """`ldnet-train --train_file <CoNLL file> --validation_file <GLiNER file>` with a tiny model."""
    from trainers.cli import train_main

    ckpt = T.save_tiny_checkpoint(tmp_path / "ckpt")
    res = train_main([
        "--model_name_or_path", str(ckpt), "--train_file", str(DATA / "conll" / "train.txt"),
        "--validation_file", str(DATA / "gliner" / "dev.jsonl"), "--output_dir", str(tmp_path / "run"), "--use_cpu",
        "--max_steps", "2", "--per_device_train_batch_size", "2", "--eval_strategy", "no", "--save_strategy", "no",
        "--learning_rate", "1e-3", "--logging_steps", "1", "--disable_tqdm", "true", "--report_to", "none",
        "--dataloader_pin_memory", "false", "--do_train", "--do_eval",
    ])
    assert res["train_samples"] == 3
    assert "eval_ent_f1" in res and (tmp_path / "run" / "model.safetensors").is_file()


def test_bio_on_real_conll03_matches_the_benchmark_converter(shared_data, tmp_path):
    """The generic BIO reader (IOB1 detected) on the staged CoNLL-2003 dev file gives the conll03 converter's records."""
    (tmp_path / "dev.conll").symlink_to(shared_data / "conll03" / "eng.testa")
    dd, rep = convert_user_data(tmp_path / "dev.conll", label_map="PER=person,LOC=location,ORG=organization,"
                                                                  "MISC=miscellaneous")
    ours = records(dd)["dev"]
    theirs = list(BENCHMARKS["conll03"].read_splits(shared_data / "conll03")["dev"])  # lazy: dev only
    assert len(ours) == len(theirs) == 3250
    assert [(r["text"], r["ans"]) for r in ours] == [(r["text"], {k: v for k, v in r["ans"].items() if v})
                                                     for r in theirs]
    assert rep.notes == {"dev": {"tagging scheme IOB1 (auto-detected)": 1}}


def test_brat_trigger_without_event_is_reported(tmp_path):
    (tmp_path / "d.txt").write_text("Troops attacked the city and attacked again.\n", encoding="utf-8")
    (tmp_path / "d.ann").write_text("T1\tAttacker 0 6\tTroops\nT2\tAttack 7 15\tattacked\nT3\tAttack 29 37\tattacked\n"
                                    "E1\tAttack:T2 Agent:T1\n", encoding="utf-8")
    dd, rep = convert_user_data(tmp_path)
    (rec,) = records(dd)["train"]
    assert ents(rec) == [("Attacker", "Troops", (0, 6))]  # T3 is not an entity
    assert rec["ans"]["event"] == [{"event_type": "Attack", "trigger": {"text": "attacked", "span": [7, 15]},
                                    "args": [{"role": "Agent", "text": "Troops", "span": [0, 6]}]}]
    assert rep.drops == {"train": {"trigger without an event (no E line)": 1}}


# ------------------------------------------------------------------ ldnet-train on own data: splits, report, card


BRAT = portable_path(DATA / "brat")  # how ldnet-train records the folder (relative to the working directory)


def _data_args(**kw):
    from trainers.loading import DataArguments

    return DataArguments(**kw)


def test_brat_folder_with_split_subfolders_gives_its_splits(tmp_path):
    """`--train_file <brat folder with train/ and dev/>`: train from train/, dev from dev/ (issue #24.5)."""
    from trainers.data import load_training_data

    data = load_training_data(_data_args(train_file=str(DATA / "brat")))
    assert {s: [r["id"] for r in ds] for s, ds in data.splits.items()} == {
        "train": ["train/PMID-10080948", "train/case_report_01"], "dev": ["dev/news_0007"]}
    assert {s: src.to_dict() for s, src in data.sources.items()} == {
        "train": {"flag": "--train_file", "path": BRAT, "format": "brat", "part": "train",
                  "records": 2},
        "dev": {"flag": "--train_file", "path": BRAT, "format": "brat", "part": "dev",
                "records": 1}}
    assert list(data.conversions) == [f"--train_file {BRAT}"]  # converted once, not per split
    # the same folder behind --data_dir; a --validation_file replaces the folder's dev split
    assert {s: len(ds) for s, ds in load_training_data(_data_args(data_dir=str(DATA / "brat"))).splits.items()} == {
        "train": 2, "dev": 1}
    gl = load_training_data(_data_args(train_file=f"brat:{DATA / 'brat'}",
                                       validation_file=str(DATA / "gliner" / "dev.jsonl")))
    assert [r["id"] for r in gl.splits["dev"]] == ["dev.0"] and len(gl.splits["train"]) == 2
    assert gl.sources["dev"].to_dict() == {"flag": "--validation_file", "path": portable_path(DATA / "gliner" / "dev.jsonl"),
                                           "format": "gliner", "part": None, "records": 1}
    assert gl.sources["train"].path == f"brat:{BRAT}"
    # --validation_file <the folder> takes its dev split; errors name the flag
    assert [r["id"] for r in load_training_data(_data_args(validation_file=str(DATA / "brat"))).splits["dev"]] == [
        "dev/news_0007"]
    both = load_training_data(_data_args(train_file=str(DATA / "brat"), validation_file=str(DATA / "brat")))
    assert {s: src.flag for s, src in both.sources.items()} == {"train": "--train_file", "dev": "--validation_file"}
    assert list(both.conversions) == [f"--train_file {BRAT}"]  # one conversion, reported once
    with pytest.raises(KeyError, match=r"--test_file .*brat: no 'test' split in it \(it holds \['train', 'dev'\]\)"):
        load_training_data(_data_args(test_file=str(DATA / "brat")))
    with pytest.raises(FileNotFoundError, match=r"--validation_file .*nope\.conll: no such file or folder"):
        load_training_data(_data_args(train_file=str(DATA / "brat"), validation_file=str(tmp_path / "nope.conll")))
    with pytest.raises(KeyError, match=r"--data .*brat: no split 'test' \(have \['train', 'dev'\]\)"):
        load_records(DATA / "brat", "test", flag="--data")


def test_label_differences_between_train_and_dev():
    from trainers.data import label_differences, label_differences_message

    train = [{"schema": {"ent": ["person", "org"], "rel": ["works_for", "lives in"]}},
             {"schema": {"ent": ["person"], "event": {"Attack": ["attacker"]}}}]
    dev = [{"schema": {"ent": ["Person", "city"], "rel": ["Works-For", "lives in"],
                       "event": {"Attack": ["Attacker", "target"]}}}]
    diff = label_differences(train, dev)
    assert diff == {
        "ent": {"only_train": ["org"], "only_dev": ["city"], "near_matches": [["person", "Person"]]},
        "rel": {"only_train": [], "only_dev": [], "near_matches": [["works_for", "Works-For"]]},
        "event roles": {"only_train": [], "only_dev": ["target"], "near_matches": [["attacker", "Attacker"]]},
    }
    assert label_differences_message(diff).splitlines()[1:] == [
        "  ent: 'person' (train) vs 'Person' (dev) differ only in case/separators: use one spelling (e.g. the "
        "converters' --label-map)",
        "  rel: 'works_for' (train) vs 'Works-For' (dev) differ only in case/separators: use one spelling (e.g. the "
        "converters' --label-map)",
        "  event roles: 'attacker' (train) vs 'Attacker' (dev) differ only in case/separators: use one spelling "
        "(e.g. the converters' --label-map)",
        "  ent: only in train: ['org']",
        "  ent: only in dev: ['city']",
        "  event roles: only in dev: ['target']",
    ]
    assert label_differences(train, train) == {}


@pytest.fixture(scope="module")
def brat_run(tmp_path_factory):
    """`ldnet-train --train_file <brat folder> --validation_file <a brat document spelling Lives_in as lives_in>`
    for 2 steps with the tiny model; returns (results, output folder, log records)."""
    import logging

    from trainers.cli import train_main

    root = tmp_path_factory.mktemp("brat_run")
    dev = root / "dev_doc"
    dev.mkdir()
    text = "Ann Lee lives in Oslo City and has cramps in her arms.\n"
    at = {s: (text.index(s), text.index(s) + len(s)) for s in ("Ann Lee", "Oslo City", "cramps in", "arms")}
    (dev / "d1.txt").write_text(text, encoding="utf-8")
    (dev / "d1.ann").write_text(
        f"T1\tPerson {at['Ann Lee'][0]} {at['Ann Lee'][1]}\tAnn Lee\nT2\tCity {at['Oslo City'][0]} {at['Oslo City'][1]}"
        f"\tOslo City\nT3\tADR {at['cramps in'][0]} {at['cramps in'][1]};{at['arms'][0]} {at['arms'][1]}\tcramps in "
        "arms\nR1\tlives_in Arg1:T1 Arg2:T2\n", encoding="utf-8")
    ckpt = T.save_tiny_checkpoint(root / "ckpt")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    logging.getLogger("ldnet").addHandler(handler)
    try:
        res = train_main([
            "--model_name_or_path", str(ckpt), "--train_file", str(DATA / "brat"), "--validation_file", str(dev),
            "--output_dir", str(root / "run"), "--use_cpu", "--max_steps", "2", "--per_device_train_batch_size", "2",
            "--save_strategy", "no", "--learning_rate", "1e-3", "--disable_tqdm", "true", "--report_to", "none",
            "--dataloader_pin_memory", "false",
        ])
    finally:
        logging.getLogger("ldnet").removeHandler(handler)
    return res, root / "run", records, dev


def test_ldnet_train_prints_and_saves_the_conversion_report(brat_run):
    import logging

    res, out, records, dev = brat_run
    report = json.loads((out / "conversion_report.json").read_text())
    brat = f"--train_file {BRAT}"
    assert report["splits"]["train"] == {
        "flag": "--train_file", "path": BRAT, "format": "brat", "part": "train", "records": 2,
        "encoding": {"records": 2, "features": 2, "gold_items": 15, "encoded": 15, "unencodable": {},
                     "snapped_to_tokens": 0, "label_collisions": 0, "windowed_records": 0,
                     "truncated_backgrounds": 0, "schema_split_records": 0}}
    assert report["splits"]["dev"]["flag"] == "--validation_file" and report["splits"]["dev"]["records"] == 1
    assert report["splits"]["dev"]["encoding"]["gold_items"] == 4  # Ann Lee, Oslo City, cramps in arms, lives_in
    conv = report["conversions"][brat]
    assert conv["splits"]["train"] == {"records": 2, "no_answer": 0,
                                       "items": {"discontinuous_ent": 6, "rel": 1, "event": 3, "args": 5}}
    assert {sp: {r: d["count"] for r, d in reasons.items()} for sp, reasons in conv["dropped"].items()} == {
        "train": {"attribute (A line) not representable": 1, "modification (M line) not representable": 1,
                  "normalization (N line) not representable": 1, "note (# line) not representable": 1,
                  "relation argument is discontinuous": 1},
        "dev": {"equivalence (* line) not representable": 1}}
    assert conv["dropped"]["train"]["attribute (A line) not representable"]["example"] == "case_report_01.ann:7 T3"
    assert conv["notes"] == {"train": {"numbered role name stripped (Theme2 -> Theme)": {
        "count": 1, "example": "PMID-10080948.ann:7 Theme2"}}}
    # one INFO block on the ldnet.train logger, which ldnet-train shows by default (no --log_level given)
    blocks = [r.getMessage() for r in records if r.levelno == logging.INFO and r.getMessage().startswith("data read")]
    assert len(blocks) == 1 and logging.getLogger("ldnet.train").getEffectiveLevel() == logging.INFO
    lines = blocks[0].splitlines()
    assert lines[0] == f"data read (details: {out / 'conversion_report.json'}):"
    assert lines[1] == f"  train: 2 records <- --train_file {BRAT} (brat, its 'train' split); gold items 15, encoded 15"
    assert lines[2].startswith("  dev: 1 record <- --validation_file ") and lines[2].endswith(
        "dev_doc (brat); gold items 4, encoded 4")
    assert lines[3].startswith(f"  {brat}: dropped 6 items: train: attribute (A line) not representable x1 "
                               "(e.g. case_report_01.ann:7 T3); ")
    assert lines[4] == (f"  {brat}: notes (nothing lost): train: numbered role name stripped (Theme2 -> Theme) x1 "
                        "(e.g. PMID-10080948.ann:7 Theme2)")


def test_ldnet_train_warns_when_train_and_dev_labels_differ(brat_run):
    import logging

    _, out, records, _ = brat_run
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING
                and r.getMessage().startswith("train and dev label sets differ")]
    assert len(warnings) == 1
    assert warnings[0].splitlines()[1:] == [
        "  rel: 'Lives_in' (train) vs 'lives_in' (dev) differ only in case/separators: use one spelling (e.g. the "
        "converters' --label-map)",
        "  discontinuous_ent: only in train: ['Location', 'Organization', 'Protein']",
        "  discontinuous_ent: only in dev: ['City']",
        "  event: only in train: ['Binding', 'Negative_regulation', 'Phosphorylation']",
        "  event roles: only in train: ['Cause', 'Theme']",
    ]
    diff = json.loads((out / "conversion_report.json").read_text())["label_differences"]
    assert diff["rel"] == {"only_train": [], "only_dev": [], "near_matches": [["Lives_in", "lives_in"]]}


def test_ldnet_train_card_and_config_record_schema_data_metrics(brat_run):
    import yaml

    from modeling_ldnet.modelcard_ldnet import card_metrics

    res, out, _, dev = brat_run
    info = json.loads((out / "config.json").read_text())["model_card_info"]
    assert info["schema"] == {
        "discontinuous_ent": ["ADR", "Location", "Organization", "Person", "Protein"], "rel": ["Lives_in"],
        "event": {"Binding": ["Theme"], "Negative_regulation": ["Cause", "Theme"], "Phosphorylation": ["Theme"]}}
    assert info["training_data"] == [
        {"path": BRAT, "split": "train", "format": "brat", "records": 2, "flag": "--train_file",
         "part": "train"},
        {"path": str(Path(*dev.parts[-2:])), "split": "dev", "format": "brat", "records": 1,
         "flag": "--validation_file"}]
    assert info["instruction"] == EE_INSTRUCTION
    assert info["metrics"] == card_metrics(res) and set(info["metrics"]) == {"train", "dev"}
    assert info["metrics"]["train"] == {"loss": round(res["train_loss"], 4)}
    assert info["metrics"]["dev"]["rel_strict_f1"] == round(res["eval_rel_strict_f1"], 4)
    assert info["metrics"]["dev"]["discontinuous_ent_precision"] == round(res["eval_discontinuous_ent_precision"], 4)
    assert not any(k.endswith(("_tp", "_fp", "_fn", "runtime", "loss")) for k in info["metrics"]["dev"])
    card = (out / "README.md").read_text()
    assert "Not recorded" not in card
    front = yaml.safe_load(card.split("---\n")[1])
    assert "rel_strict_f1" in front["metrics"] and "datasets" not in front  # local files are no Hub datasets
    for line in ("- **discontinuous_ent**: `ADR`, `Location`, `Organization`, `Person`, `Protein`",
                 "- **rel**: `Lives_in`",
                 "- **event**: `Binding` (`Theme`); `Negative_regulation` (`Cause`, `Theme`); `Phosphorylation` "
                 "(`Theme`)",
                 f"- `{BRAT}` (split: train, format: brat, records: 2, flag: --train_file, part: train)",
                 f"Instruction of every training record: `{EE_INSTRUCTION}`"):
        assert line in card.splitlines(), line
    table = card.split("## Metrics")[1].split("## Usage")[0]
    dev_row = next(row for row in table.splitlines() if row.startswith("| dev |"))
    assert f"{res['eval_rel_strict_f1']:.2f}" in dev_row


# ------------------------------------------------------------------------------------------------------------ GLiNER2

GL2_TRAIN = [
    {"input": "Tim Cook leads Apple . Apple is in Cupertino .",
     "output": {"entities": {"person": ["Tim Cook"], "company": ["Apple"], "city": ["Cupertino", "Paris"]},
                "entity_descriptions": {"company": "a business"},
                "relations": [{"ceo of": {"head": "Tim Cook", "tail": "Apple"}}],
                "classifications": [{"task": "topic", "labels": ["tech", "sports"], "true_label": ["tech"]}],
                "json_structures": [{"company": {"name": "Apple"}}]}},
    {"id": "x2", "text": "Ann met Bob .",
     "schema": {"entities": {"person": [{"text": "Bob", "start": 8, "end": 11}]},
                "relations": [{"met": {"head": {"text": "Ann", "start": 0, "end": 3},
                                       "tail": {"text": "Bob", "start": 8, "end": 11}}}]}},
]


def test_gliner2_training_jsonl(proc, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in GL2_TRAIN), encoding="utf-8")
    assert detect_format(path) == "gliner2" and detect_format(f"gliner2:{path}") == "gliner2"
    dd, rep = convert_user_data(path)
    out = records(dd)["train"]
    assert [r["id"] for r in out] == ["train.0", "x2"]
    assert out[0]["schema"]["ent"] == ["city", "company", "person"] and out[0]["schema"]["rel"] == ["ceo of", "met"]
    assert out[0]["schema"]["cls"] == ["sports", "tech"]
    assert out[0]["descriptions"] == [{"task": "ent", "label": "company", "description": "a business"}]
    text = GL2_TRAIN[0]["input"]
    # "Apple" occurs twice: every occurrence tagged (noted); "Paris" is not in the text: dropped and counted
    assert sorted(ents(out[0])) == sorted([("person", "Tim Cook", (0, 8)), ("company", "Apple", (15, 20)),
                                           ("company", "Apple", (23, 28)), ("city", "Cupertino", (35, 44))])
    assert out[0]["ans"]["rel"] == [{"relation": "ceo of", "head": {"text": "Tim Cook", "span": [0, 8]},
                                     "tail": {"text": "Apple", "span": [15, 20]}}]  # the closest pair
    assert out[0]["ans"]["cls"] == ["tech"]
    assert ents(out[1]) == [("person", "Bob", (8, 11))]
    assert out[1]["ans"]["rel"][0]["head"] == {"text": "Ann", "span": [0, 3]}
    assert rep.drops == {"train": {"mention not found in passage": 1, "json structure (not supported)": 1}}
    assert rep.notes["train"]["ambiguous mention (every occurrence tagged)"] == 1
    assert rep.notes["train"]["ambiguous relation argument (closest pair used)"] == 1
    assert text[15:20] == "Apple"
    assert_roundtrip(proc, out)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"input": "a b", "output": {"entity": {"x": ["a"]}}}) + "\n")
    with pytest.raises(SourceFormatError, match=r"bad\.jsonl:1: field 'output\.entity': unknown key"):
        convert_user_data(bad, fmt="gliner2")
    bad.write_text(json.dumps({"input": "a b", "output": {"entities": {"x": [{"text": "b", "start": 0, "end": 1}]}}}) + "\n")
    with pytest.raises(SourceFormatError, match=r"output\.entities\.x\[0\]: .* is not \[start, end\) of its text"):
        convert_user_data(bad, fmt="gliner2")
