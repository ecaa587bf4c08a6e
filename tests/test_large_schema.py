"""Large schemas: split into label groups (one extra pass each) when instruction + schema crowd out the text.

Exact behaviour: a split record is encoded pass by pass exactly as the record holding one label group alone, gold
round-trips through every group and window, and the pipeline's answer is the union of the group-alone answers.
"""

from __future__ import annotations

import json

import pytest
import torch
from ldnet_tiny import assert_same_answers, decoding_model, strip_scores, tiny_processor
from transformers import AutoTokenizer, pipeline

from modeling_ldnet import LDNetProcessor
from modeling_ldnet.pipeline_ldnet import default_instruction
from modeling_ldnet.processing_ldnet import MIN_WINDOW_STEP_FRACTION
from modeling_ldnet.roundtrip import ans_keys, gold_logits, roundtrip

INSTRUCTION = "Find things."
BIG_SCHEMA = {
    "cls": ["news", "sport"],
    "ent": [f"kind {i}" for i in range(12)] + ["attack"],
    "rel": [f"link {i}" for i in range(6)],
    "hyper_rel": {"award received": ["point in time", "for work"]},
    "event": {"attack": ["attacker", "target", "place"], "move": ["place", "destination"]},
}


BLOCK = "alice met bob in paris and carl went home ."


def long_text(n_blocks: int = 14) -> str:
    """Blocks of 10 one-token words (so every gold item fits in some window)."""
    return " ".join([BLOCK] * n_blocks)


def gold_record(text: str) -> dict:
    """Gold of every task, one task per block (no shared mentions: no link interference), spread over the text
    (and so over several windows and label groups)."""

    def sp(block: int, word: str) -> dict:
        s = block * (len(BLOCK) + 1) + BLOCK.index(word)
        assert text[s : s + len(word)] == word
        return {"text": word, "span": [s, s + len(word)]}

    ents, rels, events, hyper = [], [], [], []
    for k in range(text.count(BLOCK)):
        if k % 4 == 0:
            ents.append({"type": f"kind {k % 12}", **sp(k, "alice")})
        elif k % 4 == 1:
            rels.append({"relation": f"link {k % 6}", "head": sp(k, "alice"), "tail": sp(k, "paris")})
        elif k % 4 == 2:
            events.append({"event_type": "move", "trigger": sp(k, "went"), "args": [
                {"role": "destination", **sp(k, "home")}, {"role": "place", **sp(k, "paris")}]})
        elif not hyper:
            hyper.append({"relation": "award received", "head": sp(k, "carl"), "tail": sp(k, "bob"),
                          "qualifiers": [{"label": "for work", **sp(k, "paris")}]})
        else:
            ents.append({"type": "attack", **sp(k, "bob")})
    return {"id": "big", "instruction": INSTRUCTION, "schema": BIG_SCHEMA, "text": text, "bg": "",
            "ans": {"cls": ["sport"], "ent": ents, "rel": rels, "event": events, "hyper_rel": hyper}}


def sub_record(rec: dict, schema: dict) -> dict:
    """``rec`` with one label group's schema and the gold items of that group."""
    keys = {(f, x) for f, v in schema.items() for x in v}
    label = {"ent": "type", "rel": "relation", "hyper_rel": "relation", "event": "event_type"}
    ans = {}
    for f, items in rec["ans"].items():
        kept = [x for x in items if (f, x if f == "cls" else x[label[f]]) in keys]
        if kept:
            ans[f] = kept
    return {**rec, "schema": schema, "ans": ans}


@pytest.fixture(scope="module")
def proc(minilm):
    return tiny_processor(minilm, max_length=64, window_stride=8)


def groups_of(enc) -> list[dict]:
    out = {}
    for m in enc["meta"]:
        out.setdefault(m.schema_group, m.schema)
    return [out[g] for g in sorted(out)]


def test_split_keeps_units_together_and_reports_passes(proc):
    rec = gold_record(long_text())
    enc = proc(rec)
    groups = groups_of(enc)
    rep = enc["encoding_report"]
    assert len(groups) >= 3 and rep.schema_passes == len(groups) and rep.split_records == 1
    assert {m.schema_groups for m in enc["meta"]} == {len(groups)}
    # every label lands in exactly one group, SPEC order kept inside each group
    for f in ("cls", "ent", "rel"):
        assert [x for g in groups for x in g.get(f, [])] == BIG_SCHEMA[f]
    for f in ("hyper_rel", "event"):
        merged = {k: v for g in groups for k, v in g.get(f, {}).items()}
        assert merged == BIG_SCHEMA[f]  # an event type with all its roles, a relation with all its qualifiers
    # ent "attack" and event "attack" share the [LM] attack tag: they stay in one pass (decoded as together)
    assert any("attack" in g.get("ent", []) and "attack" in g.get("event", {}) for g in groups)
    # every window of every pass adds at least max_length // 8 new text tokens
    for g in range(len(groups)):
        wins = [m.window for m in enc["meta"] if m.schema_group == g]
        assert all(b[0] - a[0] >= 64 // MIN_WINDOW_STEP_FRACTION for a, b in zip(wins, wins[1:]))
    assert "schemas split into label groups: 1 records" in str(rep)


def test_each_pass_is_exactly_the_group_alone(proc):
    rec = gold_record(long_text())
    enc = proc(rec, return_gold=True)
    for g, schema in enumerate(groups_of(enc)):
        alone = proc(sub_record(rec, schema), return_gold=True)
        assert alone["encoding_report"].schema_passes == 1  # a group never splits again
        idx = [i for i, m in enumerate(enc["meta"]) if m.schema_group == g]
        for key in ("input_ids", "span_graph_links", "label_drop_targets"):
            assert [enc[key][i] for i in idx] == alone[key], (g, key)
        assert [enc["meta"][i].window for i in idx] == [m.window for m in alone["meta"]]
    # gold items: the union over the groups, none lost
    total = proc(rec)["encoding_report"]
    assert total.items == len(ans_keys(rec["ans"])) and total.encoded == total.items


def test_gold_round_trips_through_groups_and_windows(proc):
    rec = gold_record(long_text())
    rep = roundtrip(proc, [rec])
    assert rep.extra == 0 and rep.exact == len(ans_keys(rec["ans"]))
    enc = proc(rec, return_tensors="pt")
    assert enc["encoding_report"].split_records == 1 and len(enc["meta"]) > enc["encoding_report"].schema_passes
    out = proc.post_process_extraction(gold_logits(enc), enc)[0]
    assert ans_keys(out) == ans_keys(rec["ans"])


def test_no_window_explosion_with_a_large_schema(minilm):
    """The issue's case: MiniLM tokenizer, max_length 512, stride 128, a 2000-token text."""
    p = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(minilm), max_length=512, window_stride=128)
    text = " ".join(f"word{i % 50}" for i in range(1000))  # 2000 tokens
    counts = {}
    for n in (10, 80, 300):
        schema = {"ent": [f"entity type number {i}" for i in range(n)]}
        enc = p(text=text, schema=schema, instruction=default_instruction(schema))
        rep = enc["encoding_report"]
        counts[n] = (rep.schema_passes, rep.features)
        alone = sum(p(text=text, schema=g, instruction=default_instruction(schema))["encoding_report"].features
                    for g in groups_of(enc))
        assert rep.features == alone  # cost = the sum of one pass per group, nothing more
    assert counts[10] == (1, 6)
    # was 303 windows per 400 words and 1874 for 2000 tokens once the schema took > 383 tokens; now a few passes of
    # about a dozen windows each (each window adds >= 64 new tokens): linear in the number of groups
    assert counts[80] == (2, 24)
    assert counts[300] == (8, 87)


def test_overflow_error_and_truncate_also_split(proc):
    text = long_text(4)
    rec = {"id": "t", "instruction": INSTRUCTION, "schema": BIG_SCHEMA, "text": text}
    enc = proc(rec, overflow="truncate")
    assert enc["encoding_report"].split_records == 1
    assert all(m.window[0] == 0 for m in enc["meta"]) and len(enc["meta"]) == enc["encoding_report"].schema_passes


def merge_answers(answers: list[dict]) -> dict:
    out: dict[str, list] = {}
    for a in answers:
        for k, v in a.items():
            out.setdefault(k, []).extend(v)
    return {k: sorted(v, key=lambda x: json.dumps(x, sort_keys=True)) for k, v in out.items()}


def test_pipeline_split_equals_each_group_alone_merged(proc):
    model = decoding_model(len(proc.tokenizer), max_length=64, window_stride=8)
    ie = pipeline("universal-ie", model=model, processor=proc, device="cpu")
    text = long_text()
    whole = ie(text, schema=BIG_SCHEMA, instruction=INSTRUCTION)
    rep = ie.last_report
    assert rep.split_records == 1 and rep.schema_passes >= 3
    enc = proc(text=text, schema=BIG_SCHEMA, instruction=INSTRUCTION)
    alone = [ie(text, schema=g, instruction=INSTRUCTION) for g in groups_of(enc)]
    assert ie.last_report.schema_passes == 1
    expected = merge_answers(alone)
    got = {k: sorted(v, key=lambda x: json.dumps(x, sort_keys=True)) for k, v in whole.items()}
    assert got == expected and sum(len(v) for v in got.values()) > 0
    # a batch of records (mixed: split and not) decodes each like it alone
    small = ie(text, schema={"ent": ["kind 0"]}, instruction=INSTRUCTION)
    both = ie([{"text": text, "schema": BIG_SCHEMA, "instruction": INSTRUCTION},
               {"text": text, "schema": {"ent": ["kind 0"]}, "instruction": INSTRUCTION}], batch_size=2)
    assert strip_scores(both[0]) == strip_scores(whole) and strip_scores(both[1]) == strip_scores(small)
    assert ie.last_report.schema_passes == rep.schema_passes + 1


def test_grouping_is_deterministic_and_balanced(proc):
    rec = gold_record(long_text())
    a, b = proc(rec), proc(rec)
    assert groups_of(a) == groups_of(b)
    sizes = [len(m.tags) for m in a["meta"] if m.window[0] == 0]
    assert max(sizes) - min(sizes) <= 6  # about the same number of labels per pass
    assert torch.equal(proc(rec, return_tensors="pt")["input_ids"], proc(rec, return_tensors="pt")["input_ids"])


def test_pipeline_runs_many_rows_in_chunks_with_the_same_answers(proc, monkeypatch):
    model = decoding_model(len(proc.tokenizer), max_length=64, window_stride=8)
    ie = pipeline("universal-ie", model=model, processor=proc, device="cpu")
    text = long_text(40)
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: calls.append(k["input_ids"].shape[0]) or forward(*a, **k))
    whole = ie(text, schema=BIG_SCHEMA, instruction=INSTRUCTION)
    rows = ie.last_report.features
    step = ie.max_rows_per_forward
    assert rows > step and calls == [step] * (rows // step) + ([rows % step] if rows % step else [])
    calls.clear()
    ie.max_rows_per_forward = 4  # an instance setting (a class attribute by default)
    chunked = ie(text, schema=BIG_SCHEMA, instruction=INSTRUCTION)
    assert calls == [4] * (rows // 4) + ([rows % 4] if rows % 4 else [])
    assert_same_answers(chunked, whole)
