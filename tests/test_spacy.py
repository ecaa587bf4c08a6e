"""spaCy component "ldnet": entry point, where answers go, alignment, nlp.pipe batching, windows, the demo model."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from _scale import SCHEMA, save_tiny_folder

import serving.extract
from serving.extract import load_pipeline
from serving.spacy_ldnet import select_ents

spacy = pytest.importorskip("spacy")

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "runs" / "demo" / "model"
TEXT = "Jerry Smith lives in New York and works for Acme Corp ."
LONG = " ".join(f"{p} lives in {c} ." for p, c in [("Alice Smith", "Paris"), ("Bob Jones", "Oslo")] * 14)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, minilm) -> Path:
    return save_tiny_folder(tmp_path_factory.mktemp("spacy") / "model", minilm)


@pytest.fixture(scope="module")
def nlp(folder):
    nlp = spacy.blank("en")
    nlp.add_pipe("ldnet", config={"model": str(folder), "schema": SCHEMA, "batch_size": 2})
    return nlp


@pytest.fixture(scope="module")
def ie(folder):
    return load_pipeline(folder)


def test_registered_through_the_entry_point(nlp):
    eps = importlib.metadata.entry_points(group="spacy_factories")
    assert [ep.value for ep in eps if ep.name == "ldnet"] == ["serving.spacy_ldnet:make_ldnet"]
    comp = nlp.get_pipe("ldnet")
    assert type(comp).__module__ == "serving.spacy_ldnet"
    assert nlp.get_pipe_meta("ldnet").factory == "ldnet"
    assert nlp.config["components"]["ldnet"]["schema"] == SCHEMA
    with pytest.raises(ValueError, match="config 'model' is required"):
        spacy.blank("en").add_pipe("ldnet", config={"schema": SCHEMA})


def test_one_doc_matches_the_pipeline(nlp, ie):
    doc = nlp(TEXT)
    ans = ie({"id": 0, "text": TEXT, "schema": SCHEMA})
    assert doc._.ldnet_ans == ans
    group = doc.spans["ldnet"]
    # every entity became a span (exact offsets, or listed as misaligned with the span it became), none dropped
    assert len(group) + len(doc._.ldnet_unaligned) == len(ans["ent"]) > 0
    mis = {tuple(m["span"]): m for m in doc._.ldnet_misaligned}
    for e, sp, score in zip(ans["ent"], group, group.attrs["scores"]):
        assert sp.label_ == e["type"] and score == e["score"] == sp._.ldnet_score
        if (sp.start_char, sp.end_char) != tuple(e["span"]):
            assert mis[tuple(e["span"])]["aligned_to"] == [sp.start_char, sp.end_char]
            assert sp.start_char <= e["span"][0] and e["span"][1] <= sp.end_char  # "expand"
    assert len(doc._.relations) == len(ans["rel"]) and doc._.relations
    for r, a in zip(doc._.relations, ans["rel"]):
        assert r["label"] == a["relation"] and r["score"] == a["score"]
        assert r["head"].start_char <= a["head"]["span"][0] < a["head"]["span"][1] <= r["head"].end_char


def test_answers_to_spacy_objects(nlp):
    comp = nlp.get_pipe("ldnet")
    doc = nlp.make_doc("Jerry Smith lives in New York . Troops attacked the city .")
    ans = {
        "ent": [{"type": "person", "text": "Jerry Smith", "span": [0, 11], "score": 0.9},
                {"type": "location", "text": "New York", "span": [21, 29], "score": 0.8},
                {"type": "location", "text": "Yor", "span": [25, 28], "score": 0.6}],   # inside "York"
        "rel": [{"relation": "live in", "head": {"text": "Jerry Smith", "span": [0, 11]},
                 "tail": {"text": "New York", "span": [21, 29]}, "score": 0.7}],
        "event": [{"event_type": "attack", "trigger": {"text": "attacked", "span": [39, 47]},
                   "args": [{"role": "attacker", "text": "Troops", "span": [32, 38]}], "score": 0.65}],
        "discontinuous_ent": [{"type": "loc", "text": "New city", "span": [[21, 24], [52, 56]], "score": 0.55}],
        "cls": ["news"],
    }
    doc._.ldnet_schema = {"ent": ["person", "location"], "cls": ["news", "sports"]}
    comp.set_annotations(doc, ans)
    # "Yor" expands to "York" and overlaps "New York": all entities in doc.spans, the better-scored ones in doc.ents
    assert [(s.text, s.label_) for s in doc.spans["ldnet"]] == [("Jerry Smith", "person"), ("New York", "location"),
                                                               ("York", "location")]
    assert doc.spans["ldnet"].attrs["scores"] == [0.9, 0.8, 0.6]
    assert [(e.text, e.label_) for e in doc.ents] == [("Jerry Smith", "person"), ("New York", "location")]
    assert doc._.ldnet_misaligned == [{"span": [25, 28], "text": "Yor", "label": "location", "aligned_to": [25, 29]}]
    rel = doc._.relations[0]
    assert rel["head"] is doc.spans["ldnet"][0] or rel["head"] == doc.spans["ldnet"][0]
    assert (rel["label"], rel["head"].label_, rel["tail"].text, rel["score"]) == ("live in", "person", "New York", 0.7)
    ev = doc._.events[0]
    assert (ev["label"], ev["trigger"].text, ev["args"][0]["role"], ev["args"][0]["span"].text) == (
        "attack", "attacked", "attacker", "Troops")
    assert [[p.text for p in d["spans"]] for d in doc._.discontinuous_ents] == [["New", "city"]]
    assert doc._.classes == ["news"] and doc.cats == {"news": 1.0, "sports": 0.0}

    # without the overlap: doc.ents, scores on the spans
    doc2 = nlp.make_doc("Jerry Smith lives in New York .")
    comp.set_annotations(doc2, {"ent": ans["ent"][:2]})
    assert [(e.text, e.label_, e._.ldnet_score) for e in doc2.ents] == [("Jerry Smith", "person", 0.9),
                                                                       ("New York", "location", 0.8)]
    # an earlier component's entity is kept; only the span clashing with it stays out of doc.ents (counted)
    doc3 = nlp.make_doc("Jerry Smith lives in New York .")
    doc3.ents = [doc3.char_span(0, 5, label="PER")]
    before = comp.report["ents_conflicting"]
    comp.set_annotations(doc3, {"ent": ans["ent"][:2]})
    assert [(e.text, e.label_) for e in doc3.ents] == [("Jerry", "PER"), ("New York", "location")]
    assert comp.report["ents_conflicting"] == before + 1 and len(doc3.spans["ldnet"]) == 2
    # "contract" cannot map "Yor" (no whole token inside): counted and listed, not dropped silently
    comp.alignment_mode = "contract"
    try:
        doc4 = nlp.make_doc("Jerry Smith lives in New York .")
        comp.set_annotations(doc4, {"ent": [ans["ent"][2]]})
    finally:
        comp.alignment_mode = "expand"
    assert len(doc4.spans["ldnet"]) == 0 and doc4._.ldnet_unaligned == [{"span": [25, 28], "text": "Yor",
                                                                         "label": "location"}]


BOSTON = "John Smith , the president of Acme Corp , lives in Boston ."


def ent(text: str, label: str, start: int, end: int, score: float | None) -> dict:
    d = {"type": label, "text": text[start:end], "span": [start, end]}
    return d if score is None else {**d, "score": score}


def test_overlapping_predictions_keep_the_best_ents(nlp, monkeypatch):
    """The user's report: `Boston` and `Boston .` both predicted emptied doc.ents. Now doc.ents holds the best
    non-overlapping spans and doc.spans all of them, through nlp() with fixed predictions."""
    comp = nlp.get_pipe("ldnet")
    b = BOSTON.index("Boston")
    preds = {"ent": [ent(BOSTON, "people", 0, 10, 0.91), ent(BOSTON, "organization", 30, 39, 0.85),
                     ent(BOSTON, "location", b, b + 6, 0.8), ent(BOSTON, "location", b, b + 8, 0.62),
                     ent(BOSTON, "organization", 30, 34, 0.3)]}      # "Acme" inside "Acme Corp"
    monkeypatch.setattr(serving.extract, "run_records", lambda ie, records, thr: [preds for _ in records])
    before = comp.report["ents_overlapping"]
    doc = nlp(BOSTON)
    assert [(e.text, e.label_, e._.ldnet_score) for e in doc.ents] == [
        ("John Smith", "people", 0.91), ("Acme Corp", "organization", 0.85), ("Boston", "location", 0.8)]
    assert [(s.text, s.label_) for s in doc.spans["ldnet"]] == [
        ("John Smith", "people"), ("Acme Corp", "organization"), ("Boston", "location"), ("Boston .", "location"),
        ("Acme", "organization")]
    assert doc.spans["ldnet"].attrs["scores"] == [0.91, 0.85, 0.8, 0.62, 0.3]
    assert comp.report["ents_overlapping"] == before + 2


def test_select_ents_score_vs_length(nlp):
    text = "He banks at Bank of America in Boston ."
    doc = nlp.make_doc(text)
    bank, america = doc.char_span(12, 27, label="organization"), doc.char_span(20, 27, label="location")
    boston, boston_dot = doc.char_span(31, 37, label="location"), doc.char_span(31, 39, label="location")
    spans = [bank, america, boston, boston_dot]

    def texts(chosen: list) -> list[str]:
        return [s.text for s in chosen]

    # higher score wins an overlap, whatever its length; "length" is spaCy's filter_spans (longest first)
    chosen, overlapping, conflicting = select_ents(spans, [0.5, 0.7, 0.6, 0.9])
    assert (texts(chosen), overlapping, conflicting) == (["America", "Boston ."], 2, 0)
    chosen, overlapping, _ = select_ents(spans, [0.5, 0.7, 0.6, 0.9], "length")
    assert (texts(chosen), overlapping) == (["Bank of America", "Boston ."], 2)
    assert texts(chosen) == texts(spacy.util.filter_spans(spans))
    # equal or missing scores: the same choice as filter_spans; a scored span outranks an unscored one
    assert texts(select_ents(spans, [0.5] * 4)[0]) == ["Bank of America", "Boston ."]
    assert texts(select_ents(spans, [None] * 4)[0]) == ["Bank of America", "Boston ."]
    assert texts(select_ents(spans, [None, 0.1, 0.2, None])[0]) == ["America", "Boston"]
    # spans overlapping an earlier component's entities are left out (the third count)
    chosen, overlapping, conflicting = select_ents(spans, [0.5, 0.7, 0.6, 0.9], taken=[doc.char_span(31, 37)])
    assert (texts(chosen), overlapping, conflicting) == (["America"], 1, 2)
    with pytest.raises(ValueError, match="ents_priority must be one of"):
        select_ents(spans, [0.5] * 4, "longest")
    with pytest.raises(ValueError, match="4 spans but 3 scores"):
        select_ents(spans, [0.5] * 3)


def test_ents_priority_config(folder):
    nlp = spacy.blank("en")
    comp = nlp.add_pipe("ldnet", config={"model": str(folder), "schema": SCHEMA, "ents_priority": "length"})
    doc = nlp.make_doc("He banks at Bank of America .")
    comp.set_annotations(doc, {"ent": [ent(doc.text, "organization", 12, 27, 0.5),
                                       ent(doc.text, "location", 20, 27, 0.7)]})
    assert [(e.text, e.label_) for e in doc.ents] == [("Bank of America", "organization")]
    assert [s.text for s in doc.spans["ldnet"]] == ["Bank of America", "America"]
    with pytest.raises(ValueError, match="ents_priority must be one of"):
        spacy.blank("en").add_pipe("ldnet", config={"model": str(folder), "schema": SCHEMA, "ents_priority": "x"})


def test_pipe_batches_through_the_model(nlp, ie, monkeypatch):
    comp = nlp.get_pipe("ldnet")
    calls = []
    real = comp.ie.forward
    monkeypatch.setattr(comp.ie, "forward", lambda inputs, **kw: calls.append(len(inputs["meta"])) or real(inputs, **kw))
    texts = [TEXT, "Tom visited Paris .", LONG, "Alice Brown works for Globex .", "Dan lives in Oslo ."]
    docs = list(nlp.pipe(texts))
    assert len(calls) == 3, "5 docs at batch_size 2: three forward passes"
    assert calls[1] > 2, "the long doc's windows go in its batch's pass"
    expected = ie([{"id": i, "text": t, "schema": SCHEMA} for i, t in enumerate(texts)], batch_size=2)
    assert [d._.ldnet_ans for d in docs] == expected
    long_doc = docs[2]
    assert len(long_doc) > 64 and any(s.start_char > len(LONG) // 2 for s in long_doc.spans["ldnet"]), \
        "entities found in later windows of a long doc"


@pytest.mark.skipif(not (DEMO / "config.json").is_file(), reason=f"no demo model at {DEMO} (run `make demo` first)")
def test_demo_model():
    """The model `make demo` trains (CoNLL04 entities + relations, MiniLM encoder) in a spaCy pipeline."""
    schema = {"ent": ["location", "organization", "people", "other"],
              "rel": ["kill", "live in", "located in", "organization in", "work for"]}
    nlp = spacy.blank("en")
    nlp.add_pipe("ldnet", config={"model": str(DEMO), "schema": schema, "instruction": ""})
    texts = ["John Smith , the president of Acme Corp , lives in Boston .",
             "The plane landed in Paris on Monday , officials in France said ."]
    docs = list(nlp.pipe(texts))
    ie = load_pipeline(DEMO)
    assert [d._.ldnet_ans for d in docs] == ie([{"id": i, "text": t, "schema": schema, "instruction": ""}
                                                for i, t in enumerate(texts)], batch_size=8)
    assert sum(len(d.spans["ldnet"]) for d in docs) > 0, "the demo model finds entities"
    for d in docs:
        assert all(s.label_ in schema["ent"] for s in d.spans["ldnet"])


def test_gliner2_schema(folder, ie):
    """A GLiNER2 schema dict in the component's config: the pipeline's unified answer, its classes in doc.cats."""
    g2 = {"entities": {"person": "a human being", "location": None},
          "classifications": [{"task": "kind", "labels": ["news", "chat"], "multi_label": True, "cls_threshold": 0.0}]}
    nlp = spacy.blank("en")
    nlp.add_pipe("ldnet", config={"model": str(folder), "schema": g2})
    doc = nlp(TEXT)
    assert doc._.ldnet_ans == ie({"id": 0, "text": TEXT, "schema": g2})
    assert [(e.text, e.label_) for e in doc.spans["ldnet"]] == [(e["text"], e["type"]) for e in doc._.ldnet_ans["ent"]]
    assert set(doc.cats) == {"news", "chat"} and {k for k, v in doc.cats.items() if v} == set(doc._.classes)
