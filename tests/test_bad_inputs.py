"""The bad-input matrix: every public surface (pipeline, processor, ``validate_record``, ``from_encoder``, trainer data
loading) given bad or unusual input either raises a specific error naming the argument / record id and field, or
returns a result whose spans all satisfy ``text[s:e] == mention``. Nothing is silently dropped or wrong.

Plus a soak: hypothesis-generated records through encode -> decode -> offsets (500 in the default run, 10,000 with
``pytest -m full``).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ldnet_tiny import decoding_model, tiny_processor
from transformers import AutoTokenizer, pipeline

from modeling_ldnet import LDNetModel, LDNetProcessor, RecordError
from modeling_ldnet.roundtrip import ans_keys, gold_logits, roundtrip
from modeling_ldnet.schema import validate_record
from trainers.data import load_records

TEXT = "Jerry Smith lives in New York ."
ENT = {"ent": ["person", "location"]}
ALL_TASKS = {"cls": ["a"], "ent": ["p"], "discontinuous_ent": ["d"], "rel": ["r"], "hyper_rel": {"h": ["q"]},
             "event": {"e": ["x"]}}
LONG = " ".join(f"Alice Brown met Bob {i} in Paris ." for i in range(12))


@pytest.fixture(scope="module")
def proc(minilm):
    return tiny_processor(minilm, max_length=64, window_stride=8)


@pytest.fixture(scope="module")
def ie(proc):
    model = decoding_model(len(proc.tokenizer), max_length=64, window_stride=8)
    return pipeline("universal-ie", model=model, processor=proc, device="cpu")


def spans_of(ans: dict) -> list[tuple[int, int, str]]:
    """Every (start, end, mention) of an ``ans`` dict (discontinuous parts joined by spaces)."""
    out = []

    def one(d: dict) -> None:
        out.append((d["span"][0], d["span"][1], d["text"]))

    for e in ans.get("ent", []) + ans.get("span", []):
        one(e)
    for r in ans.get("rel", []) + ans.get("hyper_rel", []):
        one(r["head"]), one(r["tail"])
        for q in r.get("qualifiers", []):
            one(q)
    for ev in ans.get("event", []):
        one(ev["trigger"])
        for a in ev["args"]:
            one(a)
    for d in ans.get("discontinuous_ent", []):
        out += [(s, e, None) for s, e in d["span"]]  # the joined mention is checked in assert_spans_ok
    return out


def assert_spans_ok(ans: dict, text: str) -> None:
    assert isinstance(ans, dict), ans
    assert set(ans) <= {"cls", "ent", "discontinuous_ent", "rel", "hyper_rel", "event", "span", "decode_truncated"}
    for s, e, mention in spans_of(ans):
        assert 0 <= s < e <= len(text), (s, e, len(text))
        if mention is not None:
            assert text[s:e] == mention
    for d in ans.get("discontinuous_ent", []):
        assert d["text"] == " ".join(text[s:e] for s, e in d["span"])


# ---------------------------------------------------------------------------------------------------------------
# the matrix: (case id, surface, call, expected) with expected = (ErrorType, message fragment) or ("ok", text)
# ---------------------------------------------------------------------------------------------------------------

OK = "ok"


def rec(**kw) -> dict:
    base = {"id": "r1", "instruction": "Find.", "schema": {"ent": ["person"]}, "text": "Tom met Ann .", "bg": "",
            "ans": {"ent": [{"type": "person", "text": "Tom", "span": [0, 3]}]}}
    base.update(kw)
    return base


def ent(**kw) -> dict:
    return rec(ans={"ent": [{"type": "person", "text": "Tom", "span": [0, 3], **kw}]})


PIPELINE_CASES = [
    # schema argument
    ("schema-unknown-key", lambda ie: ie(TEXT, schema={"entity": ["person"]}), (ValueError, "'entity' (did you mean 'ent'?)")),
    # ("relations" alone is a GLiNER2 schema, docs/gliner2.md; "relation" is neither form)
    ("schema-unknown-relation", lambda ie: ie(TEXT, schema={"relation": ["x"]}), (ValueError, "did you mean 'rel'")),
    ("schema-gliner2-mixed", lambda ie: ie(TEXT, schema={"relations": ["x"], "ent": ["person"]}),
     (ValueError, "'relations' (did you mean 'rel'?)")),
    ("schema-unknown-mixed", lambda ie: ie(TEXT, schema={"ent": ["x"], "evnt": {}}), (ValueError, "'evnt' (did you mean 'event'?)")),
    ("schema-not-dict", lambda ie: ie(TEXT, schema=["person"]), (TypeError, "schema: expected a dict")),
    ("schema-str", lambda ie: ie(TEXT, schema="person"), (TypeError, "got str")),
    ("schema-ent-str", lambda ie: ie(TEXT, schema={"ent": "person"}), (RecordError, "field 'schema.ent'")),
    ("schema-ent-int-label", lambda ie: ie(TEXT, schema={"ent": [1]}), (RecordError, "field 'schema.ent[0]'")),
    ("schema-ent-empty-label", lambda ie: ie(TEXT, schema={"ent": [""]}), (RecordError, "empty label")),
    ("schema-event-roles-str", lambda ie: ie(TEXT, schema={"event": {"attack": "x"}}), (RecordError, "schema.event")),
    ("schema-ent-nul-label", lambda ie: ie(TEXT, schema={"ent": ["per\x00son"]}),
     (RecordError, "field 'schema.ent[0]': label 'per\\x00son' contains a NUL character")),
    ("schema-ent-space-label", lambda ie: ie(TEXT, schema={"ent": ["person", " \t"]}),
     (RecordError, "field 'schema.ent[1]': label ' \\t' is whitespace only")),
    ("schema-ent-duplicate", lambda ie: ie(TEXT, schema={"ent": ["person", "city", "person"]}),
     (RecordError, "field 'schema.ent[2]': duplicate label 'person' (also schema.ent[0])")),
    ("schema-role-duplicate", lambda ie: ie(TEXT, schema={"event": {"move": ["place", "place"]}}),
     (RecordError, "field \"schema.event['move'][1]\": duplicate label 'place'")),
    ("schema-event-space-name", lambda ie: ie(TEXT, schema={"event": {" ": ["place"]}}),
     (RecordError, "field 'schema.event[0]': label ' ' is whitespace only")),
    ("schema-label-tag", lambda ie: ie(TEXT, schema={"ent": ["[LM]"]}),
     (RecordError, "field 'schema.ent': label '[LM]' is spelled like the special token '[LM]'")),
    ("schema-label-has-tag", lambda ie: ie(TEXT, schema={"rel": ["born [TL] in"]}), (RecordError, "special token '[TL]'")),
    ("schema-label-sep", lambda ie: ie(TEXT, schema={"ent": ["[SEP]"]}), (RecordError, "special token '[SEP]'")),
    ("schema-role-tag", lambda ie: ie(TEXT, schema={"event": {"move": ["[LR]"]}}),
     (RecordError, "field 'schema.event': label '[LR]'")),
    ("schema-desc-empty", lambda ie: ie(TEXT, schema={"ent": {"person": ""}}),
     (RecordError, "field \"schema.ent['person']\": empty description of label 'person'")),
    ("schema-desc-int", lambda ie: ie(TEXT, schema={"ent": {"person": 5}}),
     (RecordError, "the description of label 'person' must be a string")),
    ("schema-desc-ok", lambda ie: ie(TEXT, schema={"ent": {"person": "a human being", "location": None}}), (OK, TEXT)),
    ("kwarg-shema", lambda ie: ie(TEXT, shema=ENT),
     (TypeError, "unexpected arguments ['shema'] (did you mean 'shema' -> 'schema'?)")),
    ("record-shema", lambda ie: ie({"id": "s2", "text": TEXT, "shema": ENT}),
     (RecordError, "record 's2', field 'schema': input 0 has an unknown key 'shema' (did you mean 'schema'?)")),
    ("record-shema-with-schema-arg", lambda ie: ie({"id": "s3", "text": TEXT, "Shema": ENT}, schema=ENT),
     (RecordError, "unknown key 'Shema' (did you mean 'schema'?)")),
    ("schema-empty-no-question", lambda ie: ie(TEXT, schema={}), (ValueError, "extractive QA")),
    ("schema-missing", lambda ie: ie(TEXT), (ValueError, "has no schema")),
    # threshold
    ("threshold-1", lambda ie: ie(TEXT, schema=ENT, threshold=1.0), (ValueError, "threshold must be in (0, 1), got 1.0")),
    ("threshold-0", lambda ie: ie(TEXT, schema=ENT, threshold=0), (ValueError, "threshold must be in (0, 1)")),
    ("threshold-1.5", lambda ie: ie(TEXT, schema=ENT, threshold=1.5), (ValueError, "got 1.5")),
    ("threshold-neg", lambda ie: ie(TEXT, schema=ENT, threshold=-0.1), (ValueError, "got -0.1")),
    ("threshold-nan", lambda ie: ie(TEXT, schema=ENT, threshold=math.nan), (ValueError, "got nan")),
    ("threshold-str", lambda ie: ie(TEXT, schema=ENT, threshold="0.5"), (TypeError, "threshold must be a float")),
    ("threshold-bool", lambda ie: ie(TEXT, schema=ENT, threshold=True), (TypeError, "threshold must be a float")),
    # window stride / overflow / batch size
    ("stride-neg", lambda ie: ie(TEXT, schema=ENT, window_stride=-100), (ValueError, "window_stride must be >= 0, got -100")),
    ("stride-float", lambda ie: ie(TEXT, schema=ENT, window_stride=2.5), (TypeError, "window_stride must be an integer")),
    ("stride-str", lambda ie: ie(TEXT, schema=ENT, window_stride="8"), (TypeError, "window_stride must be an integer")),
    ("stride-too-large", lambda ie: ie({"id": "L", "text": LONG, "schema": ENT}, window_stride=60),
     (RecordError, "record 'L', field 'window_stride'")),
    ("stride-float-integral-ok", lambda ie: ie(TEXT, schema=ENT, window_stride=4.0), (OK, TEXT)),
    ("overflow-bad", lambda ie: ie(TEXT, schema=ENT, overflow="wrap"), (ValueError, "overflow must be one of")),
    ("overflow-error-long", lambda ie: ie({"id": "L", "text": LONG, "schema": ENT}, overflow="error"),
     (RecordError, "record 'L', field 'text'")),
    ("overflow-truncate-long", lambda ie: ie(LONG, schema=ENT, overflow="truncate"), (OK, LONG)),
    ("batch-0", lambda ie: ie([TEXT], schema=ENT, batch_size=0), (ValueError, "batch_size must be >= 1, got 0")),
    ("batch-neg", lambda ie: ie([TEXT], schema=ENT, batch_size=-2), (ValueError, "batch_size must be >= 1")),
    ("batch-float", lambda ie: ie([TEXT], schema=ENT, batch_size=1.5), (TypeError, "batch_size must be an integer")),
    ("batch-str", lambda ie: ie([TEXT], schema=ENT, batch_size="2"), (TypeError, "batch_size must be an integer")),
    # other arguments
    ("instruction-int", lambda ie: ie(TEXT, schema=ENT, instruction=5), (TypeError, "instruction must be a string")),
    ("bg-list", lambda ie: ie(TEXT, schema=ENT, bg=["x"]), (TypeError, "bg must be a string")),
    ("typo-kwarg", lambda ie: ie(TEXT, schema=ENT, treshold=0.3), (TypeError, "unexpected arguments ['treshold']")),
    ("positional-param", lambda ie: ie(TEXT, ENT), (TypeError, "by keyword")),
    ("images-text-only", lambda ie: ie(TEXT, schema=ENT, images="x.png"), (ValueError, "no image_config")),
    # inputs
    ("bytes", lambda ie: ie(TEXT.encode(), schema=ENT), (TypeError, "got bytes; decode")),
    ("bytearray", lambda ie: ie(bytearray(b"abc"), schema=ENT), (TypeError, "got bytes")),
    ("bytes-in-list", lambda ie: ie([TEXT, b"x"], schema=ENT), (TypeError, "input 1 is bytes")),
    ("int-input", lambda ie: ie(42, schema=ENT), (TypeError, "expected a text, a record or a list")),
    ("none-in-list", lambda ie: ie([None], schema=ENT), (TypeError, "input 0 is a NoneType")),
    ("record-no-text", lambda ie: ie([{"foo": 1}], schema=ENT), (RecordError, "record 0, field 'text'")),
    ("record-no-text-id", lambda ie: ie({"id": "x7", "txt": TEXT}, schema=ENT), (RecordError, "record 'x7', field 'text'")),
    ("record-text-0", lambda ie: ie({"id": "z", "text": 0}, schema=ENT), (RecordError, "field 'text': expected a string, got int")),
    ("record-text-list", lambda ie: ie({"id": "z", "text": []}, schema=ENT), (RecordError, "got list")),
    ("record-text-bytes", lambda ie: ie({"id": "z", "text": b"a"}, schema=ENT), (RecordError, "got bytes")),
    ("record-schema-typo", lambda ie: ie({"id": "s", "text": TEXT, "schema": {"entity": ["x"]}}),
     (RecordError, "record 's', field 'schema': unknown schema fields 'entity' (did you mean 'ent'?)")),
    ("record-instruction-int", lambda ie: ie({"id": "i", "text": TEXT, "schema": ENT, "instruction": 3}),
     (RecordError, "field 'instruction'")),
    ("record-bool-id", lambda ie: ie({"id": True, "text": TEXT, "schema": ENT}), (RecordError, "field 'id'")),
    ("record-text-none", lambda ie: ie({"id": "n", "text": None, "schema": ENT}),
     (RecordError, "record 'n', field 'text': None (use \"\" for a record without text)")),
    ("empty-text", lambda ie: ie("", schema=ENT), (OK, "")),
    ("whitespace-text", lambda ie: ie(" \t\n ", schema=ENT), (OK, " \t\n ")),
    ("emoji-cjk-text", lambda ie: ie("北京 😀 Jerry 大学 é ß", schema=ENT), (OK, "北京 😀 Jerry 大学 é ß")),
    ("combining-chars", lambda ie: ie("Cafe\u0301 de Jose\u0301 .", schema=ENT), (OK, "Cafe\u0301 de Jose\u0301 .")),
    ("tag-strings-in-text", lambda ie: ie("see [LM] and [TL] [SEP] here", schema=ENT), (OK, "see [LM] and [TL] [SEP] here")),
    ("long-word", lambda ie: ie("x" * 3000, schema=ENT), (OK, "x" * 3000)),
    ("long-text-windows", lambda ie: ie(LONG, schema=ENT), (OK, LONG)),
    ("big-schema-split", lambda ie: ie(LONG, schema={"ent": [f"kind number {i}" for i in range(20)]}), (OK, LONG)),
    ("question-only", lambda ie: ie("Paris is nice .", schema={}, instruction="Where?"), (OK, "Paris is nice .")),
    ("event-schema", lambda ie: ie(TEXT, schema={"event": {"move": ["place"]}}), (OK, TEXT)),
    ("all-tasks", lambda ie: ie(TEXT, schema=ALL_TASKS, instruction=""), (OK, TEXT)),
    ("all-tasks-long-default-instruction", lambda ie: ie({"id": "a", "text": TEXT, "schema": ALL_TASKS}),
     (RecordError, "record 'a', field 'schema': instruction + schema take 80 tokens (the instruction 62)")),
]

PROCESSOR_CASES = [
    ("proc-no-tokenizer", lambda p: LDNetProcessor(tokenizer=None), (ValueError, "needs a tokenizer")),
    ("proc-max-length-3", lambda p: LDNetProcessor(tokenizer=p.tokenizer, max_length=3), (ValueError, "max_length must be >= 5")),
    ("proc-max-length-str", lambda p: LDNetProcessor(tokenizer=p.tokenizer, max_length="512"), (TypeError, "max_length must be an integer")),
    ("proc-overflow", lambda p: LDNetProcessor(tokenizer=p.tokenizer, overflow="cut"), (ValueError, "overflow must be one of")),
    ("proc-stride-neg", lambda p: LDNetProcessor(tokenizer=p.tokenizer, window_stride=-1), (ValueError, "window_stride must be >= 0")),
    ("proc-threshold-1", lambda p: LDNetProcessor(tokenizer=p.tokenizer, threshold=1.0), (ValueError, "threshold must be in (0, 1)")),
    ("proc-max-parts-1", lambda p: LDNetProcessor(tokenizer=p.tokenizer, max_parts=1), (ValueError, "max_parts must be >= 2")),
    ("proc-links-0", lambda p: LDNetProcessor(tokenizer=p.tokenizer, max_links_per_row=0), (ValueError, "max_links_per_row must be >= 1")),
    ("proc-budget-0", lambda p: LDNetProcessor(tokenizer=p.tokenizer, decode_budget=0), (ValueError, "decode_budget must be >= 1")),
    ("proc-str-records", lambda p: p("Tom met Ann ."), (TypeError, "pass a text as `text=`")),
    ("proc-bytes-records", lambda p: p(b"Tom"), (TypeError, "pass a text as `text=`")),
    ("proc-nothing", lambda p: p(), (ValueError, "pass `records` or `text`")),
    ("proc-text-int", lambda p: p(text=5, schema=ENT), (TypeError, "`text` must be a string or a list")),
    ("proc-text-bytes", lambda p: p(text=b"abc", schema=ENT), (TypeError, "`text` must be a string or a list")),
    ("proc-text-list-int", lambda p: p(text=["a", 1], schema=ENT), (TypeError, "text[1] must be a string")),
    ("proc-text-schema-typo", lambda p: p(text="a", schema={"entity": []}), (ValueError, "did you mean 'ent'")),
    ("proc-record-not-dict", lambda p: p([1]), (RecordError, "field '<record>'")),
    ("proc-records-int", lambda p: p(5), (TypeError, "LDNetProcessor: `records` must be a dict or a list of dicts, got int 5")),
    ("proc-records-none-text-none", lambda p: p(rec(text=None)), (RecordError, "record 'r1', field 'text': None")),
    ("proc-label-tag", lambda p: p(rec(schema={"ent": ["[I]"]}, ans={})), (RecordError, "special token '[I]'")),
    ("proc-logits-nan", lambda p: p.post_process_extraction(torch.full((1, 3, 8, 8), math.nan), p(rec(), return_tensors="pt")),
     (ValueError, "the logits hold NaN for record(s) 'r1'")),
    ("proc-return-tensors", lambda p: p(rec(), return_tensors="np"), (ValueError, "return_tensors='pt' or None")),
    ("proc-call-overflow", lambda p: p(rec(), overflow="x"), (ValueError, "overflow must be one of")),
    ("proc-call-stride", lambda p: p(rec(), window_stride=-5), (ValueError, "window_stride must be >= 0")),
    ("proc-logits-batch", lambda p: p.post_process_extraction(torch.zeros(2, 3, 4, 4), p(rec())), (ValueError, "logits batch 2")),
    ("proc-decode-threshold", lambda p: p.post_process_extraction(torch.zeros(1, 3, 8, 8), p(rec()), threshold=1.0),
     (ValueError, "threshold must be in (0, 1)")),
]

VALIDATE_CASES = [
    ("val-not-dict", lambda: validate_record(["x"]), (RecordError, "field '<record>': expected a dict, got list")),
    ("val-no-text", lambda: validate_record({"id": "a", "schema": ENT}), (RecordError, "record 'a', field 'text': missing")),
    ("val-text-int", lambda: validate_record(rec(text=0)), (RecordError, "field 'text': expected a string, got int 0")),
    ("val-text-list", lambda: validate_record(rec(text=[])), (RecordError, "field 'text': expected a string, got list")),
    ("val-text-bytes", lambda: validate_record(rec(text=b"Tom")), (RecordError, "got bytes")),
    ("val-instruction-int", lambda: validate_record(rec(instruction=1)), (RecordError, "field 'instruction'")),
    ("val-bg-list", lambda: validate_record(rec(bg=["a"])), (RecordError, "field 'bg'")),
    ("val-id-empty", lambda: validate_record(rec(id="")), (RecordError, "field 'id'")),
    ("val-id-none", lambda: validate_record(rec(id=None)), (RecordError, "field 'id'")),
    ("val-id-bool", lambda: validate_record(rec(id=False)), (RecordError, "field 'id'")),
    ("val-id-float", lambda: validate_record(rec(id=1.5)), (RecordError, "field 'id'")),
    ("val-schema-list", lambda: validate_record(rec(schema=["person"])), (RecordError, "field 'schema': expected a dict")),
    ("val-schema-typo", lambda: validate_record(rec(schema={"entities": ["person"]})), (RecordError, "'entities' (did you mean 'ent'?)")),
    ("val-schema-ent-str", lambda: validate_record(rec(schema={"ent": "person"})), (RecordError, "field 'schema.ent'")),
    ("val-schema-label-int", lambda: validate_record(rec(schema={"ent": ["person", 3]})), (RecordError, "field 'schema.ent[1]'")),
    ("val-schema-event-int", lambda: validate_record(rec(schema={"event": 3})), (RecordError, "field 'schema.event'")),
    ("val-schema-event-listform", lambda: validate_record(rec(schema={"event": [{"labels": ["x"]}]})), (RecordError, "list form needs")),
    ("val-text-none", lambda: validate_record(rec(text=None)), (RecordError, "record 'r1', field 'text': None")),
    ("val-label-nul", lambda: validate_record(rec(schema={"ent": ["person", "\x00"]})), (RecordError, "NUL character")),
    ("val-label-ws", lambda: validate_record(rec(schema={"ent": ["person", "\n"]})), (RecordError, "whitespace only")),
    ("val-label-dup", lambda: validate_record(rec(schema={"ent": ["person", "person"]})),
     (RecordError, "field 'schema.ent[1]': duplicate label 'person'")),
    ("val-qualifier-dup", lambda: validate_record(rec(schema={"hyper_rel": {"r": ["q", "q"]}}, ans={})),
     (RecordError, "field \"schema.hyper_rel['r'][1]\": duplicate label 'q'")),
    ("val-desc-empty", lambda: validate_record(rec(schema={"ent": {"person": ""}})), (RecordError, "empty description")),
    ("val-desc-list", lambda: validate_record(rec(schema={"ent": {"person": ["a"]}})),
     (RecordError, "the description of label 'person' must be a string (or None for a label without one), got list")),
    ("val-ans-list", lambda: validate_record(rec(ans=[])), (RecordError, "field 'ans'")),
    ("val-ans-typo", lambda: validate_record(rec(ans={"entities": []})), (RecordError, "'entities' (did you mean 'ent'?)")),
    ("val-ent-not-dict", lambda: validate_record(rec(ans={"ent": ["Tom"]})), (RecordError, "field 'ans.ent[0]'")),
    ("val-ent-type", lambda: validate_record(ent(type="city")), (RecordError, "field 'ans.ent[0].type'")),
    ("val-ent-span-out", lambda: validate_record(ent(span=[0, 99])), (RecordError, "outside text of length 13")),
    ("val-ent-span-reversed", lambda: validate_record(ent(span=[3, 0])), (RecordError, "field 'ans.ent[0].span'")),
    ("val-ent-span-empty", lambda: validate_record(ent(span=[2, 2])), (RecordError, "(or empty)")),
    ("val-ent-span-neg", lambda: validate_record(ent(span=[-1, 3])), (RecordError, "field 'ans.ent[0].span'")),
    ("val-ent-span-str", lambda: validate_record(ent(span=["0", 3])), (RecordError, "expected [start, end] integers")),
    ("val-ent-span-bool", lambda: validate_record(ent(span=[False, 3])), (RecordError, "expected [start, end] integers")),
    ("val-ent-span-3", lambda: validate_record(ent(span=[0, 1, 3])), (RecordError, "expected [start, end] integers")),
    ("val-ent-mention", lambda: validate_record(ent(text="Tim")), (RecordError, "!= mention 'Tim'")),
    ("val-rel-label", lambda: validate_record(rec(schema={"rel": ["r"]}, ans={"rel": [
        {"relation": "x", "head": {"text": "Tom", "span": [0, 3]}, "tail": {"text": "Ann", "span": [8, 11]}}]})),
     (RecordError, "field 'ans.rel[0].relation'")),
    ("val-rel-no-head", lambda: validate_record(rec(schema={"rel": ["r"]}, ans={"rel": [
        {"relation": "r", "tail": {"text": "Ann", "span": [8, 11]}}]})), (RecordError, "field 'ans.rel[0].head'")),
    ("val-event-role", lambda: validate_record(rec(schema={"event": {"meet": ["a"]}}, ans={"event": [
        {"event_type": "meet", "trigger": {"text": "met", "span": [4, 7]},
         "args": [{"role": "b", "text": "Ann", "span": [8, 11]}]}]})), (RecordError, "field 'ans.event[0].args[0].role'")),
    ("val-event-trigger", lambda: validate_record(rec(schema={"event": {"meet": ["a"]}}, ans={"event": [
        {"event_type": "meet", "trigger": {"text": "met", "span": [4, 8]}}]})), (RecordError, "field 'ans.event[0].trigger.text'")),
    ("val-hyper-qualifier", lambda: validate_record(rec(schema={"hyper_rel": {"r": ["q"]}}, ans={"hyper_rel": [
        {"relation": "r", "head": {"text": "Tom", "span": [0, 3]}, "tail": {"text": "Ann", "span": [8, 11]},
         "qualifiers": [{"label": "z", "text": "met", "span": [4, 7]}]}]})),
     (RecordError, "field 'ans.hyper_rel[0].qualifiers[0].label'")),
    ("val-disc-empty", lambda: validate_record(rec(schema={"discontinuous_ent": ["d"]}, ans={"discontinuous_ent": [
        {"type": "d", "span": []}]})), (RecordError, "field 'ans.discontinuous_ent[0].span'")),
    ("val-disc-part", lambda: validate_record(rec(schema={"discontinuous_ent": ["d"]}, ans={"discontinuous_ent": [
        {"type": "d", "span": [[0, 3], [9, 99]]}]})), (RecordError, "field 'ans.discontinuous_ent[0].span[1].span'")),
    ("val-cls-label", lambda: validate_record(rec(schema={"cls": ["a"]}, ans={"cls": ["b"]})), (RecordError, "field 'ans.cls[0]'")),
    ("val-span-out", lambda: validate_record(rec(schema={}, ans={"span": [{"text": "x", "span": [20, 21]}]})),
     (RecordError, "field 'ans.span[0].span'")),
]


def _run(call, expected, *args):
    kind, fragment = expected
    if kind is OK:
        out = call(*args)
        for ans in out if isinstance(out, list) else [out]:
            assert_spans_ok(ans, fragment)
        return out
    with pytest.raises(kind) as err:
        call(*args)
    assert fragment in str(err.value), str(err.value)
    return err.value


@pytest.mark.parametrize("case, call, expected", PIPELINE_CASES, ids=[c[0] for c in PIPELINE_CASES])
def test_pipeline(ie, case, call, expected):
    _run(call, expected, ie)
    assert (ie.processor.overflow, ie.processor.window_stride) == ("window", 8)  # nothing leaked


@pytest.mark.parametrize("case, call, expected", PROCESSOR_CASES, ids=[c[0] for c in PROCESSOR_CASES])
def test_processor(proc, case, call, expected):
    _run(call, expected, proc)


@pytest.mark.parametrize("case, call, expected", VALIDATE_CASES, ids=[c[0] for c in VALIDATE_CASES])
def test_validate_record(case, call, expected):
    err = _run(call, expected)
    if isinstance(err, RecordError) and err.record_id is not None:
        assert f"record {err.record_id!r}, field {err.field!r}" in str(err)


def test_validate_record_accepts_and_canonicalises():
    out = validate_record({"id": 3, "text": "Tom met Ann .", "schema": {"event": [{"name": "meet", "labels": ["a"]}]},
                           "instruction": None, "bg": None, "ans": None})
    assert out == {"id": 3, "instruction": "", "text": "Tom met Ann .", "bg": "", "schema": {"event": {"meet": ["a"]}},
                   "ans": {}}


def test_nan_scores_in_padding_are_not_an_error(proc):
    enc = proc([rec(), rec(id="r2", text="Tom met Ann and Bob in Paris .", ans={})], return_tensors="pt")
    logits = torch.full((2, 3, enc["input_ids"].shape[1], enc["input_ids"].shape[1]), -10.0)
    short = enc["meta"][0].length
    logits[0, :, short:, :] = math.nan  # padding rows of the shorter record: never read
    assert proc.post_process_extraction(logits, enc) == [{}, {}]
    logits[1, 2, 3, 4] = math.nan
    with pytest.raises(ValueError, match=r"NaN for record\(s\) 'r2';"):
        proc.post_process_extraction(logits, enc)


def test_from_encoder_names_a_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="LDNetModel.from_encoder: no encoder folder at '/no/such/dir'"):
        LDNetModel.from_encoder("/no/such/dir")
    with pytest.raises(FileNotFoundError, match="no encoder folder at './nope'"):
        LDNetModel.from_encoder("./nope")
    # an existing folder without a model, and an id the offline Hub cache lacks: an OSError naming the path
    with pytest.raises(OSError) as err:
        LDNetModel.from_encoder(str(tmp_path))
    assert f"LDNetModel.from_encoder({str(tmp_path)!r}): could not load an encoder" in str(err.value)
    with pytest.raises(OSError, match="from_encoder\\('no-such-org/no-such-encoder'\\): could not load"):
        LDNetModel.from_encoder("no-such-org/no-such-encoder")
    with pytest.raises(TypeError, match="encoder_name_or_path must be a path or a Hub id, got int"):
        LDNetModel.from_encoder(5)


def test_from_encoder_sizes_embeddings_for_the_tag_tokens(minilm, tmp_path):
    model = LDNetModel.from_encoder(str(minilm)).eval()
    p = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm))
    assert model.get_input_embeddings().num_embeddings == len(p.tokenizer) == 30522 + 7
    enc = p(text="Tom met Ann .", schema={"ent": ["person"]}, instruction="Find.", return_tensors="pt")
    with torch.no_grad():  # used to be an IndexError inside the embedding lookup
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    assert out.logits.shape == (1, 3, enc["input_ids"].shape[1], enc["input_ids"].shape[1])
    # a folder holding only the encoder (no tokenizer): refused with the fix in the message
    from transformers import AutoModel

    AutoModel.from_pretrained(minilm).save_pretrained(tmp_path / "enc")
    with pytest.raises(ValueError, match="tokenizer files missing.*pass tokenizer=processor.tokenizer"):
        LDNetModel.from_encoder(str(tmp_path / "enc"))


# ---------------------------------------------------------------------------------------------------------------
# trainer data loading (trainers/data.py, read only)
# ---------------------------------------------------------------------------------------------------------------


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(x + "\n" for x in lines))
    return path


LOAD_CASES = [
    ("load-missing-file", lambda d: load_records(d / "nope.jsonl"), (FileNotFoundError, "nope.jsonl")),
    ("load-empty-folder", lambda d: load_records((d / "empty").mkdir() or d / "empty", "train"),
     (FileNotFoundError, "no .jsonl or .parquet split files")),
    ("load-folder-no-split", lambda d: load_records(_write(d / "f" / "train.jsonl", [json.dumps(rec())]).parent),
     (ValueError, "name the split")),
    ("load-folder-bad-split", lambda d: load_records(_write(d / "f" / "train.jsonl", [json.dumps(rec())]).parent, "test"),
     (KeyError, "no split 'test'")),
    ("load-bad-json", lambda d: load_records(_write(d / "bad.jsonl", ["{not json"])), (ValueError, "bad.jsonl")),
    ("load-record-no-text", lambda d: load_records(_write(d / "nt.jsonl", [json.dumps({"id": "q1", "schema": ENT})])),
     (RecordError, "record 'q1', field 'text'")),
    ("load-record-bad-span", lambda d: load_records(_write(d / "bs.jsonl", [json.dumps(ent(span=[0, 99]))])),
     (RecordError, "record 'r1', field 'ans.ent[0].span'")),
    ("load-record-schema-typo", lambda d: load_records(_write(d / "st.jsonl", [json.dumps(rec(schema={"entity": ["person"]}))])),
     (RecordError, "did you mean 'ent'")),
]


@pytest.mark.parametrize("case, call, expected", LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_load_records(tmp_path, case, call, expected):
    _run(call, expected, tmp_path)


def test_load_records_round_trip(tmp_path):
    records = [rec(id=f"r{i}") for i in range(3)]
    ds = load_records(_write(tmp_path / "ok.jsonl", [json.dumps(r) for r in records]))
    assert len(ds) == 3 and ds[2]["id"] == "r2" and ds[0]["ans"]["ent"][0]["span"] == [0, 3]


def test_matrix_size():
    n = len(PIPELINE_CASES) + len(PROCESSOR_CASES) + len(VALIDATE_CASES) + len(LOAD_CASES)
    assert n >= 80, n


# ---------------------------------------------------------------------------------------------------------------
# soak: hypothesis records through encode -> decode -> offsets
# ---------------------------------------------------------------------------------------------------------------

CHARS = list("abcdefgHIJ0123 -'.,") + ["  ", "\t", "\n", "北", "京", "😀", "é", "e\u0301", "ß", "[LM]", "[SEP]", "\u200b"]


@st.composite
def soak_record(draw, rid: int):
    text = "".join(draw(st.lists(st.sampled_from(CHARS), min_size=0, max_size=60)))

    def span():
        s = draw(st.integers(0, len(text) - 1))
        e = draw(st.integers(s + 1, min(len(text), s + 12)))
        return {"text": text[s:e], "span": [s, e]}

    n_lab = draw(st.integers(1, 12))  # up to 12 labels per task: with max_length 32 the schema is often split
    labels = [f"l{i}" for i in range(n_lab)]
    schema = {"ent": labels, "rel": labels[:3], "discontinuous_ent": ["d"], "hyper_rel": {"h": ["q"]},
              "event": {f"e{i}": ["a", "b"] for i in range(draw(st.integers(1, 3)))}, "cls": ["c0", "c1"]}
    ans: dict = {"cls": draw(st.lists(st.sampled_from(["c0", "c1"]), unique=True, max_size=2))}
    if text:
        n = draw(st.integers(0, 4))
        ans["ent"] = [{"type": draw(st.sampled_from(labels)), **span()} for _ in range(n)]
        ans["rel"] = [{"relation": draw(st.sampled_from(labels[:3])), "head": span(), "tail": span()}
                      for _ in range(draw(st.integers(0, 2)))]
        ans["discontinuous_ent"] = [{"type": "d", "span": [span()["span"] for _ in range(draw(st.integers(1, 3)))]}
                                    for _ in range(draw(st.integers(0, 1)))]
        ans["hyper_rel"] = [{"relation": "h", "head": span(), "tail": span(),
                             "qualifiers": [{"label": "q", **span()}]} for _ in range(draw(st.integers(0, 1)))]
        ans["event"] = [{"event_type": draw(st.sampled_from(sorted(schema["event"]))), "trigger": span(),
                         "args": [{"role": draw(st.sampled_from(["a", "b"])), **span()}]}
                        for _ in range(draw(st.integers(0, 2)))]
    return {"id": f"soak.{rid}", "instruction": draw(st.sampled_from(["", "Find."])), "schema": schema, "text": text,
            "bg": draw(st.sampled_from(["", "some background text"])), "ans": ans}


BATCH = 50


@st.composite
def soak_batch(draw):
    return [draw(soak_record(i)) for i in range(BATCH)]


def soak_check(p: LDNetProcessor, records: list[dict], seed: int, seen: dict) -> None:
    enc = p(records, return_tensors="pt", return_gold=True)
    rep = enc["encoding_report"]
    seen["records"] += rep.records
    seen["split"] += rep.split_records
    seen["windowed"] += rep.windowed_records
    seen["items"] += rep.items
    # nothing lost: every unique gold unit is encoded or counted with a reason
    for r, gold in zip(records, enc["gold_items"]):
        assert {g.key for g in gold} == ans_keys(validate_record(r)["ans"])
    assert rep.items == rep.encoded + sum(rep.unencodable.values())
    assert rep.records == len(records) and set(enc["overflow_to_sample_mapping"].tolist()) == set(range(len(records)))
    assert enc["input_ids"].shape[1] <= p.max_length
    # gold links decode back: offsets in bounds, mentions equal; and whatever is lost has a named reason
    for r, ans in zip(records, p.post_process_extraction(gold_logits(enc), enc)):
        assert_spans_ok(ans, r["text"])
    rt = roundtrip(p, records)
    assert rt.items == rt.exact + sum(rt.misses.values())
    # arbitrary scores decode to in-bounds offsets too
    g = torch.Generator().manual_seed(seed)
    n, length = enc["input_ids"].shape
    noise = torch.randn((n, 3, length, length), generator=g) * 4
    for r, ans in zip(records, p.post_process_extraction(noise, enc, threshold=0.9)):
        assert_spans_ok(ans, r["text"])


@pytest.fixture(scope="module")
def soak_processors(minilm):
    tok = AutoTokenizer.from_pretrained(minilm)
    return [LDNetProcessor(tokenizer=tok, max_length=32, window_stride=4, max_parts=4, decode_budget=2000),
            LDNetProcessor(tokenizer=tok, max_length=128, window_stride=16)]


def _soak(soak_processors, examples: int) -> None:
    seen = dict.fromkeys(("records", "split", "windowed", "items"), 0)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(soak_batch(), st.integers(0, 1), st.integers(0, 2**31))
    def run(records, which, seed):
        soak_check(soak_processors[which], records, seed, seen)

    run()
    # the generated records did exercise split schemas, windows and many gold items
    assert seen["records"] >= examples * BATCH
    assert seen["split"] > 0 and seen["windowed"] > 0 and seen["items"] > seen["records"], seen


def test_soak_500_records(soak_processors):
    _soak(soak_processors, 500 // BATCH)


@pytest.mark.full
def test_soak_10000_records(soak_processors):
    _soak(soak_processors, 10000 // BATCH)
