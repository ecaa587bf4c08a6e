"""examples/app.py without a browser (issue #24.1): the schema editor starts from the model card, the text promises
nothing the model cannot do, and a visible warning names labels the model never saw (the pipeline's own report
first, else ``config.trained_labels``, else the card's schema)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import ldnet_tiny
import pytest
from transformers import pipeline

from modeling_ldnet.modelcard_ldnet import CARD_INFO_ATTR

gr = pytest.importorskip("gradio")

REPO = Path(__file__).resolve().parents[1]
CONLL04 = {"ent": ["people", "location", "organization", "other"],
           "rel": ["kill", "live in", "located in", "organization in", "work for"]}


@pytest.fixture(scope="module")
def app():
    spec = importlib.util.spec_from_file_location("ldnet_example_app_unit", REPO / "examples" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_card_schema_and_editor_start(app):
    assert app.card_schema({"schema": CONLL04}) == CONLL04
    merged = app.card_schema({"schema": {"a": {"ent": ["person"]}, "b": {"ent": ["city"], "rel": ["in"]}}})
    assert merged == {"ent": ["city", "person"], "rel": ["in"]}
    assert app.card_schema({}) is None and app.card_schema({"schema": {}}) is None
    assert app.trained_schema({"schema": {"ent": ["gene"]}}) == {"ent": ["gene"]}
    assert app.trained_schema({}) == app.CONLL04_SCHEMA  # nothing recorded: CoNLL04's labels (and the text says so)


def test_known_and_unseen_labels(app):
    card = {"schema": CONLL04}
    trained = SimpleNamespace(trained_labels={"ent": ["people", "location"]}, generalist=False)
    known, source = app.known_labels(trained, card)
    assert (known, source) == ({"ent": {"people", "location"}}, "config.trained_labels")
    # before config.trained_labels existed: the card's schema
    known, source = app.known_labels(SimpleNamespace(), card)
    assert source == "the model card's schema" and known["ent"] == set(CONLL04["ent"])
    assert app.known_labels(SimpleNamespace(generalist=True, trained_labels={"ent": []}), card)[0] is None
    assert app.known_labels(SimpleNamespace(trained_labels=None), {})[0] is None

    asked = {"ent": ["person", "city", "people"], "rel": ["live in"], "event": {"attack": ["attacker"]}}
    assert app.unseen_labels(asked, known) == {"ent": ["person", "city"], "event": ["attack", "attacker"]}
    assert app.unseen_labels(CONLL04, known) == {}
    assert app.unseen_labels(asked, None) == {}

    text = app.unseen_warning({"ent": ["person", "city"]}, {"ent": {"people", "location"}}, "config.trained_labels")
    assert text.startswith("⚠️ **Labels this model never saw in training** — ent: `person`, `city`.")
    assert "It was trained on ent: location, people (config.trained_labels)." in text
    assert app.unseen_warning({}, known, "x") == ""


def component(demo, elem_id: str):
    found = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    assert len(found) == 1, elem_id
    return found[0]


def test_demo_warns_on_labels_the_model_never_saw(app):
    proc = ldnet_tiny.processor(max_length=64)
    model = ldnet_tiny.tiny_model(proc)
    model.config.trained_labels = {t: list(v) for t, v in CONLL04.items()}
    setattr(model.config, CARD_INFO_ATTR, {"schema": CONLL04})
    ie = pipeline("universal-ie", model=model, processor=proc, device="cpu")
    demo = app.build_demo(ie, ["John Smith lives in Boston ."], no_instruction=True)

    about = component(demo, "about").value
    assert "unseen types can be tried" not in about and "a warning appears" in about
    assert component(demo, "ent-types").value == "people, location, organization, other"  # from the card
    assert component(demo, "rel-types").value == ", ".join(CONLL04["rel"])
    assert component(demo, "unseen-labels").value == ""  # the card's own labels: nothing to warn about

    extract = next(f.fn for f in demo.fns.values() if f.api_name == "extract")
    *_, ans, warning = extract("John Smith lives in Boston .", "person, city, company", "", "", 0.9, True)
    assert isinstance(ans, dict)
    # the pipeline reported them itself (last_report.unseen_labels), and the app shows them
    assert app.report_unseen(ie) == {"ent": ["person", "city", "company"]}
    assert "ent: `person`, `city`, `company`" in warning and "never saw" in warning
    *_, warning = extract("John Smith lives in Boston .", "people, location", "live in", "", 0.9, True)
    assert warning == ""
    # editing the schema shows the warning before any extraction
    check = next(f.fn for f in demo.fns.values() if f.name == "check_labels")
    assert "`company`" in check("people, company", "", "")
    assert check("people", "work for", "") == ""
