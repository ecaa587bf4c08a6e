"""GLiNER2-style schemas and output through ``pipeline("universal-ie")`` (gliner2_ldnet): exact answers from an oracle
model whose logits are the gold links of known answers (link probability ``p`` per label), so routing, per-label
thresholds, classification passes and the output shape are checked item by item."""

from __future__ import annotations

import math

import ldnet_tiny
import pytest
import torch
from transformers import pipeline

from modeling_ldnet import LDNetProcessor
from modeling_ldnet.gliner2_ldnet import is_gliner2_schema, parse_gliner2_schema
from modeling_ldnet.modeling_ldnet import LDNetOutput

TEXT = "Jerry Smith works for Acme Corp in Boston ."
JERRY, ACME, BOSTON = [0, 11], [22, 31], [35, 41]
#: the oracle's gold answers, with the link probability of each label
GOLD_ENT = [("person", JERRY), ("company", ACME), ("city", BOSTON)]
GOLD_REL = [("works for", JERRY, ACME), ("located in", ACME, BOSTON)]
GOLD_CLS = ["business", "positive"]
PROB = {"person": 0.9, "company": 0.7, "city": 0.4, "works for": 0.9, "located in": 0.6, "business": 0.8,
        "sports": 0.3, "positive": 0.65, "negative": 0.55}


class OracleProcessor(LDNetProcessor):
    """Encodes records as usual and keeps oracle logits for them: -10 everywhere, each gold link of the answers above
    (restricted to the record's schema) at the logit of its label's probability (a link shared by several labels
    takes the highest)."""

    def __call__(self, records, *args, **kwargs):
        enc = super().__call__(records, *args, **kwargs)
        b, length = enc["input_ids"].shape
        logits = torch.full((b, 3, length, length), -10.0)
        for row, r in enumerate(records):
            schema = r["schema"]
            ents, rels, clss = (list(schema.get(k) or []) for k in ("ent", "rel", "cls"))
            per_label = [(t, {"ent": [{"type": t, "text": TEXT[s[0]:s[1]], "span": s}]}) for t, s in GOLD_ENT if t in ents]
            per_label += [(r_, {"rel": [{"relation": r_, "head": {"text": TEXT[h[0]:h[1]], "span": h},
                                         "tail": {"text": TEXT[t[0]:t[1]], "span": t}}]}) for r_, h, t in GOLD_REL if r_ in rels]
            per_label += [(c, {"cls": [c]}) for c in GOLD_CLS if c in clss]
            for label, ans in per_label:
                links = super().__call__([{**r, "ans": ans}], *args, **{**kwargs, "return_gold": True})["span_graph_links"]
                for _, c, i, j in links.tolist():
                    logits[row, c, i, j] = max(float(logits[row, c, i, j]), math.log(PROB[label] / (1 - PROB[label])))
        self.oracle_logits = logits
        return enc


@pytest.fixture(scope="module")
def ie():
    proc = OracleProcessor(tokenizer=ldnet_tiny.tokenizer(), max_length=96)
    model = ldnet_tiny.tiny_model(proc).eval()
    model.forward = lambda **kw: LDNetOutput(logits=proc.oracle_logits, label_drop_probs=None)
    return pipeline("universal-ie", model=model, processor=proc, device="cpu")


def test_oracle_is_exact(ie):
    out = ie(TEXT, schema={"ent": ["person", "company", "city"], "rel": ["works for", "located in"]})
    assert {(e["type"], tuple(e["span"]), round(e["score"], 2)) for e in out["ent"]} == {
        ("person", (0, 11), 0.9), ("company", (22, 31), 0.7)}  # city (0.4) is below the model's 0.5
    # a relation's chain holds its arguments' span links: located in scores 0.6 although city alone is 0.4
    assert {(r["relation"], r["head"]["text"], r["tail"]["text"], round(r["score"], 2)) for r in out["rel"]} == {
        ("works for", "Jerry Smith", "Acme Corp", 0.9), ("located in", "Acme Corp", "Boston", 0.6)}


def test_entities_and_relations_in_gliner2_shape(ie):
    schema = {"entities": {"person": "a human being", "company": None, "city": {"threshold": 0.3}},
              "relations": ["works for", "located in"]}
    assert ie(TEXT, schema=schema, output_format="gliner2") == {
        "entities": {"person": ["Jerry Smith"], "company": ["Acme Corp"], "city": ["Boston"]},
        "relation_extraction": {"works for": [("Jerry Smith", "Acme Corp")], "located in": [("Acme Corp", "Boston")]},
    }
    out = ie(TEXT, schema=schema, output_format="gliner2", include_confidence=True, include_spans=True)
    assert out["entities"]["city"] == [{"text": "Boston", "confidence": pytest.approx(0.4, abs=1e-4), "start": 35, "end": 41}]
    assert out["relation_extraction"]["works for"] == [{
        "head": {"text": "Jerry Smith", "confidence": pytest.approx(0.9, abs=1e-4), "start": 0, "end": 11},
        "tail": {"text": "Acme Corp", "confidence": pytest.approx(0.9, abs=1e-4), "start": 22, "end": 31}}]


def test_label_thresholds_raise_and_lower(ie):
    schema = {"entities": {"person": {"threshold": 0.95}, "company": {}, "city": {"threshold": 0.35}},
              "relations": {"works for": {}, "located in": {"threshold": 0.65, "description": "where it is"}}}
    out = ie(TEXT, schema=schema, output_format="gliner2")
    # person 0.9 < its 0.95; company at the model's 0.5; city 0.4 >= 0.35 (a second pass at 0.35); located in 0.6
    # < its 0.65
    assert out["entities"] == {"person": [], "company": ["Acme Corp"], "city": ["Boston"]}
    assert out["relation_extraction"] == {"works for": [("Jerry Smith", "Acme Corp")], "located in": []}
    assert ie.last_report.records == 2  # the normal pass and the pass at 0.35


def test_classifications_single_and_multi_label(ie):
    schema = {"classifications": [
        {"task": "topic", "labels": ["business", "sports"]},
        {"task": "sentiment", "labels": {"positive": "good", "negative": None}, "multi_label": True, "cls_threshold": 0.6},
    ]}
    assert ie(TEXT, schema=schema, output_format="gliner2") == {"topic": "business", "sentiment": ["positive"]}
    out = ie([TEXT, {"text": TEXT}], schema=schema, output_format="gliner2", include_confidence=True)
    assert out[0] == out[1] == {"topic": {"label": "business", "confidence": pytest.approx(0.8, abs=1e-4)},
                                "sentiment": [{"label": "positive", "confidence": pytest.approx(0.65, abs=1e-4)}]}
    # the unified output by default: the classes of every task
    assert ie(TEXT, schema=schema)["cls"] == ["business", "positive"]


def test_ldnet_schema_in_gliner2_shape(ie):
    out = ie({"text": TEXT, "schema": {"ent": ["city", "person"], "cls": ["business", "sports"]}}, output_format="gliner2")
    assert out == {"entities": {"city": [], "person": ["Jerry Smith"]}, "classification": ["business"]}
    with pytest.raises(ValueError, match=r"schema\.event has no GLiNER2 output form"):
        ie(TEXT, schema={"event": {"attack": ["attacker"]}}, output_format="gliner2")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"entities": ["person"], "relation": ["x"]}, r"^relation: unknown GLiNER2 schema key"),
        ({"entities": {"person": {"threshold": 1.5}}}, r"^entities\.person\.threshold: a threshold must be a number in \[0, 1\]"),
        ({"entities": {"person": {"dtype": "int"}}}, r"^entities\.person\.dtype: must be one of \['list', 'str'\]"),
        ({"entities": {"person": {"colour": "red"}}}, r"^entities\.person\.colour: unknown key"),
        ({"entities": {"person": ""}}, r"^entities\.person: a description must be a non-empty string"),
        ({"entities": []}, r"^entities: no labels"),
        ({"classifications": [{"task": "t", "labels": []}]}, r"^classifications\[0\]\.labels: no labels"),
        ({"classifications": [{"task": "t", "labels": ["a"], "multi_label": "yes"}]},
         r"^classifications\[0\]\.multi_label: must be true or false"),
        ({"classifications": [{"task": "t", "labels": ["a"]}, {"task": "t", "labels": ["b"]}]},
         r"^classifications: duplicate task 't'"),
        ({"structures": {"product": {"fields": [{"name": "price", "dtype": "str"}]}}},
         r"^structures: GLiNER2 JSON structures are not supported by LDNet yet"),
    ],
)
def test_bad_schemas_name_the_key_path(schema, message):
    assert is_gliner2_schema(schema) == (set(schema) <= {"entities", "relations", "classifications", "structures"})
    with pytest.raises(ValueError, match=message):
        parse_gliner2_schema(schema)


def test_bad_arguments_fail_before_any_work(ie):
    with pytest.raises(ValueError, match="output_format must be one of"):
        ie(TEXT, schema={"ent": ["person"]}, output_format="json")
    with pytest.raises(ValueError, match="include_spans goes with output_format='gliner2'"):
        ie(TEXT, schema={"ent": ["person"]}, include_spans=True)
    with pytest.raises(ValueError, match=r"^inputs\[1\]\.schema\.entities: no labels"):
        ie([TEXT, {"text": TEXT, "schema": {"entities": []}}], schema={"entities": ["person"]})


def test_unified_output_without_scores(ie):
    out = ie(TEXT, schema={"entities": ["person"], "classifications": {"topic": ["business", "sports"]}},
             return_scores=False, return_cls_scores=True)
    assert out == {"ent": [{"type": "person", "text": "Jerry Smith", "span": [0, 11]}], "cls": ["business"],
                   "cls_scores": {"business": pytest.approx(0.8, abs=1e-4)}}


# ------------------------------------------------------------------------------------ the gliner2 package's builder

def _builder_schemas():
    """Schemas written with gliner2's own ``Schema`` builder, as its README / tutorials do (``to_dict()``)."""
    from gliner2.inference.schema import Schema

    return {
        "entities list": Schema().entities(["person", "company", "city"]),
        "entities with descriptions": Schema().entities({"person": "a human being", "company": "a business"}),
        "entity configs": Schema().entities({"person": {"description": "a human", "threshold": 0.95},
                                             "company": {"dtype": "str"}}),
        "relations": Schema().entities(["person", "company"]).relations(["works for", "located in"]),
        "relation configs": Schema().relations({"works for": {"description": "employment", "threshold": 0.5},
                                                "located in": "where a thing is"}),
        "classification": Schema().classification("topic", ["business", "sports"]),
        "multi-label classification": Schema().classification(
            "sentiment", {"positive": "good", "negative": "bad"}, multi_label=True, cls_threshold=0.6, top_k=1),
        "all together": Schema().entities(["person", "company"]).relations(["works for"]).classification(
            "topic", ["business", "sports"]),
    }


def test_gliner2_builder_schemas_are_accepted(ie):
    pytest.importorskip("gliner2", reason="the gliner2 package (setup.cfg dev extra) builds the schemas")
    out = {name: ie(TEXT, schema=s.to_dict(), output_format="gliner2") for name, s in _builder_schemas().items()}
    assert out["entities list"] == {"entities": {"person": ["Jerry Smith"], "company": ["Acme Corp"], "city": []}}
    assert out["entity configs"] == {"entities": {"person": [], "company": "Acme Corp"}}
    assert out["relations"]["relation_extraction"] == {"works for": [("Jerry Smith", "Acme Corp")],
                                                       "located in": [("Acme Corp", "Boston")]}
    assert out["relation configs"] == {"relation_extraction": {"works for": [("Jerry Smith", "Acme Corp")],
                                                               "located in": [("Acme Corp", "Boston")]}}
    assert out["classification"] == {"topic": "business"}
    assert out["multi-label classification"] == {"sentiment": ["positive"]}  # 0.65 >= 0.6; top_k 1
    assert out["all together"] == {"entities": {"person": ["Jerry Smith"], "company": ["Acme Corp"]},
                                   "relation_extraction": {"works for": [("Jerry Smith", "Acme Corp")]},
                                   "topic": "business"}


def test_gliner2_builder_schemas_refused_say_why():
    gliner2 = pytest.importorskip("gliner2", reason="the gliner2 package (setup.cfg dev extra) builds the schemas")
    from gliner2.inference.schema import Schema

    structure = Schema()
    structure.structure("product").field("name", dtype="str").field("price", dtype="str")
    with pytest.raises(ValueError, match="^structures: GLiNER2 JSON structures are not supported by LDNet yet"):
        parse_gliner2_schema(structure.to_dict())
    prompted = Schema().classification("topic", ["a", "b"], prompt="What is it about?")
    with pytest.raises(ValueError, match=r"^classifications\[0\]\.prompt: GLiNER2's prompt / activation options"):
        parse_gliner2_schema(prompted.to_dict())
    attributes = Schema().entities(["person"]).entity_attributes(
        {"role": gliner2.inference.schema.AttributeGroup(labels=["ceo", "cto"])})
    with pytest.raises(ValueError, match="^entity_attributes: GLiNER2 entity attributes are not supported"):
        parse_gliner2_schema(attributes.to_dict())


def test_return_rejected_lists_what_the_threshold_turned_down(ie):
    schema = {"ent": ["person", "company", "city"], "rel": ["works for", "located in"]}
    out = ie(TEXT, schema=schema, return_rejected=3)
    assert [(r["task"], r.get("type"), r["text"], r["span"], round(r["score"], 2)) for r in out["rejected"]] == [
        ("ent", "city", "Boston", [35, 41], 0.4)]  # everything else is either accepted or at -10
    assert {e["type"] for e in out["ent"]} == {"person", "company"}
    assert ie(TEXT, schema=schema, threshold=0.8, return_rejected=1)["rejected"] == [
        {"task": "ent", "type": "company", "text": "Acme Corp", "span": [22, 31], "score": pytest.approx(0.7, abs=1e-4)}]
    assert "rejected" not in ie(TEXT, schema=schema)
    with pytest.raises(ValueError, match="return_rejected must be >= 0"):
        ie(TEXT, schema=schema, return_rejected=-1)
    with pytest.raises(TypeError, match="return_rejected must be an integer"):
        ie(TEXT, schema=schema, return_rejected=True)


def test_per_label_thresholds_fitted_by_name_and_applied_in_any_order(ie):
    """issue #21: calibrate_label_thresholds fits a threshold per label name on dev; the pipeline maps it onto any
    schema order (city's 0.4 items are wanted, located in's 0.6 ones are false positives in this dev set)."""
    from trainers.calibration import calibrate_label_thresholds

    schema = {"ent": ["person", "company", "city"], "rel": ["works for", "located in"]}
    gold = {"ent": [{"type": t, "text": TEXT[s[0]:s[1]], "span": s} for t, s in GOLD_ENT],
            "rel": [{"relation": "works for", "head": {"text": "Jerry Smith", "span": JERRY},
                     "tail": {"text": "Acme Corp", "span": ACME}}]}
    dev = [{"id": "d0", "instruction": "", "text": TEXT, "schema": schema, "ans": gold}]
    try:
        res = calibrate_label_thresholds(ie.model, ie.processor, dev)
        assert res.thresholds == {"ent": {"city": 0.05}, "rel": {"located in": 0.7}}
        assert res.metric == {"ent": "ent_f1", "rel": "rel_strict_f1"}
        assert res.before == {"ent": pytest.approx(0.8), "rel": pytest.approx(2 / 3)}  # city missed; located in extra
        assert res.after == {"ent": 1.0, "rel": 1.0} and ie.model.config.decode_label_thresholds == res.thresholds
        for order in (schema, {"rel": ["located in", "works for"], "ent": ["city", "company", "person"]}):
            out = ie(TEXT, schema=order)
            assert {e["type"] for e in out["ent"]} == {"person", "company", "city"}
            assert [r["relation"] for r in out["rel"]] == ["works for"]
        assert "city" not in {e["type"] for e in ie(TEXT, schema=schema, threshold=0.5)["ent"]}  # the call's own wins
        assert "score" not in ie(TEXT, schema=schema, return_scores=False)["ent"][0]
    finally:
        ie.model.config.decode_label_thresholds = None
    with pytest.raises(ValueError, match=r"decode_label_thresholds: ent\['city'\] must be in \(0, 1\)"):
        type(ie.model.config)(decode_label_thresholds={"ent": {"city": 1.5}})


def test_unseen_labels_warned_once_per_call(ie, caplog):
    import logging

    ie.model.config.trained_labels = {"ent": ["person"]}
    try:
        with caplog.at_level(logging.WARNING, logger="modeling_ldnet"):
            ie(TEXT, schema={"entities": {"person": None, "city": {"threshold": 0.3}},
                             "classifications": [{"task": "t", "labels": ["business", "sports"]}]})
        warned = [r for r in caplog.records if "never saw in training" in r.getMessage()]
        assert len(warned) == 1 and "'city'" in warned[0].getMessage() and "'business'" in warned[0].getMessage()
        assert ie.last_report.unseen_labels == {"ent": ["city"], "cls": ["business", "sports"]}
    finally:
        ie.model.config.trained_labels = None


def test_typed_relation_arguments(ie):
    """issue #21 item 2: a relation may declare its argument types; with entities extracted in the same call, only
    relations whose head / tail carry a declared type are emitted."""
    free = {"ent": ["person", "company", "city"], "rel": ["works for", "located in"]}
    typed = {"ent": ["person", "company", "city"],
             "rel": {"works for": {"head": ["person"], "tail": ["company"], "description": "employment"},
                     "located in": {"head": ["person"]}}}  # Acme Corp is a company: located in is dropped
    assert {r["relation"] for r in ie(TEXT, schema=free)["rel"]} == {"works for", "located in"}
    out = ie(TEXT, schema=typed)
    assert [(r["relation"], r["head"]["text"], r["tail"]["text"]) for r in out["rel"]] == [
        ("works for", "Jerry Smith", "Acme Corp")]
    # city (0.4) is below the threshold, so a tail typed city finds no entity there
    out = ie(TEXT, schema={**typed, "rel": {"located in": {"tail": ["city"]}}})
    assert "rel" not in out
    # without entities in the call there is nothing to check against: relations as decoded
    assert "rel" in ie(TEXT, schema={"rel": {"located in": None}})
    from modeling_ldnet.schema import RecordError, normalize_record

    with pytest.raises(RecordError, match=r"argument type 'org' of relation 'works for' is not one of the schema's "
                                          r"entity labels \['person'\]"):
        normalize_record({"text": TEXT, "schema": {"ent": ["person"], "rel": {"works for": {"tail": ["org"]}}}})
    with pytest.raises(RecordError, match=r"unknown key 'heads'"):
        normalize_record({"text": TEXT, "schema": {"ent": ["person"], "rel": {"works for": {"heads": ["person"]}}}})
    rec = normalize_record({"text": TEXT, "schema": typed})
    assert rec["schema"]["rel"] == ["works for", "located in"]
    assert rec["arg_types"] == [{"relation": "works for", "head": ["person"], "tail": ["company"]},
                                {"relation": "located in", "head": ["person"]}]
    assert rec["descriptions"] == [{"task": "rel", "label": "works for", "description": "employment"}]


def test_model_default_arg_types(ie):
    """config.relation_arg_types (ldnet-train --derive_arg_types): applied to plain relation labels when the call
    extracts entities, cut to the schema's entity labels, overridden by the schema's own form, off with arg_types=False."""
    from modeling_ldnet.schema import with_default_arg_types

    defaults = {"works for": {"head": ["person"], "tail": ["company"]}, "located in": {"head": ["person"], "tail": ["city"]}}
    free = {"ent": ["person", "company", "city"], "rel": ["works for", "located in"]}
    assert with_default_arg_types(free, defaults) == {"ent": ["person", "company", "city"], "rel": {
        "works for": {"head": ["person"], "tail": ["company"]}, "located in": {"head": ["person"], "tail": ["city"]}}}
    # a side with none of the schema's entity labels: untyped; a description is kept; a typed label is the caller's
    assert with_default_arg_types({"ent": ["person", "city"], "rel": {"works for": "employment", "located in": None}},
                                  defaults) == {"ent": ["person", "city"], "rel": {
        "works for": "employment", "located in": {"head": ["person"], "tail": ["city"]}}}
    own = {"ent": ["person", "company"], "rel": {"works for": {"tail": ["person"]}}}
    assert with_default_arg_types(own, defaults) is own
    assert with_default_arg_types({"rel": ["works for"]}, defaults) == {"rel": ["works for"]}  # no entities: unchanged
    assert with_default_arg_types(free, None) is free

    cfg = ie.model.config
    try:
        cfg.relation_arg_types = defaults
        rels = lambda out: sorted((r["relation"], r["head"]["text"], r["tail"]["text"]) for r in out.get("rel", []))
        # Acme Corp is a company, not a person: located in (Acme Corp -> Boston) is dropped by the model's default
        assert rels(ie(TEXT, schema=free)) == [("works for", "Jerry Smith", "Acme Corp")]
        assert rels(ie(TEXT, schema=free, arg_types=False)) == [("located in", "Acme Corp", "Boston"),
                                                               ("works for", "Jerry Smith", "Acme Corp")]
        # the schema's own declaration wins over the default
        own = {**free, "rel": {"works for": None, "located in": {"head": ["company"]}}}
        assert rels(ie(TEXT, schema=own)) == [("located in", "Acme Corp", "Boston"), ("works for", "Jerry Smith", "Acme Corp")]
        # in any schema order
        assert rels(ie(TEXT, schema={"ent": ["city", "company", "person"], "rel": ["located in", "works for"]})) == [
            ("works for", "Jerry Smith", "Acme Corp")]
        with pytest.raises(TypeError, match="arg_types must be True or False"):
            ie(TEXT, schema=free, arg_types="yes")
    finally:
        cfg.relation_arg_types = None


def test_relation_arg_types_config_is_validated():
    from modeling_ldnet import LDNetConfig

    assert LDNetConfig(relation_arg_types={"kill": {"head": ["people"]}}).relation_arg_types == {"kill": {"head": ["people"]}}
    for bad, msg in (({"kill": ["people"]}, r"'kill' must be"), ({"kill": {"heads": ["people"]}}, r"'kill' must be"),
                     ({"kill": {"head": []}}, r"'kill'.head must be a non-empty list"), (["kill"], "must be")):
        with pytest.raises(ValueError, match=rf"relation_arg_types.*{msg}"):
            LDNetConfig(relation_arg_types=bad)


def test_derive_arg_types_from_training_records():
    from trainers.arg_types import derive_arg_types

    def ent(t, s):
        return {"type": t, "text": "x", "span": list(s)}

    def rel(r, h, t):
        return {"relation": r, "head": {"text": "x", "span": list(h)}, "tail": {"text": "x", "span": list(t)}}

    recs = [{"ans": {"ent": [ent("person", (0, 1)), ent("company", (2, 3)), ent("city", (4, 5))],
                     "rel": [rel("works for", (0, 1), (2, 3)), rel("located in", (2, 3), (4, 5))]}},
            {"ans": {"ent": [ent("person", (0, 1)), ent("city", (2, 3))],
                     "rel": [rel("works for", (0, 1), (2, 3)), rel("works for", (0, 1), (6, 7))]}},
            {"ans": {"rel": [rel("born in", (0, 1), (2, 3))]}}]  # relation-only: nothing to type
    table, report = derive_arg_types(recs)
    assert table == {"works for": {"head": ["person"], "tail": ["company", "city"]},
                     "located in": {"head": ["company"], "tail": ["city"]}}
    assert report["untyped_arguments"] == {"works for": 1, "born in": 2} and report["relations"] == 3
    table, report = derive_arg_types(recs, min_share=0.6)
    # works for's tails: company 1, city 1 (one more untyped): neither reaches 0.6, so the tail is left free
    assert table == {"works for": {"head": ["person"]}, "located in": {"head": ["company"], "tail": ["city"]}}
    assert report["left_out"] == {"works for": {"tail": ["company", "city"]}}
    with pytest.raises(ValueError, match="min_share"):
        derive_arg_types(recs, min_share=1.0)
