"""Decoding (docs/decoding.md): simple chains, a fair and visible step budget, and the one answers module.

* issue #15.2: chains never repeat a node, in the fast decoder and in both references (exact decoded tuples for the
  reported cases; hypothesis fuzz over overlapping discontinuous entities and relations in both directions).
* issue #15.3: the step budget is shared round robin by the labels (none starves) and a cut is flagged in the
  answer (``decode_truncated``) and logged once per call, in the processor and in the pipeline.
* issue #18.2: ``answers_ldnet.ans_units`` is the one ``ans`` -> units function (the metric holds a verbatim copy).
* issue #24.6: span hygiene, punctuation variants of one answer (``Boston`` / ``Boston .``) merged or suppressed,
  genuinely nested spans kept, off with ``None`` (exact units, gold-logit decoding, the pipeline's config switch).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path

import ldnet_tiny
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import pipeline

from modeling_ldnet import answers_ldnet
from modeling_ldnet.answers_ldnet import (
    DECODE_TRUNCATED,
    ans_units,
    decode_extraction,
    punctuation_core,
    span_hygiene,
    units_to_ans,
)
from modeling_ldnet.configuration_ldnet import LDNetConfig
from modeling_ldnet.roundtrip import ans_keys, gold_logits, roundtrip
from modeling_ldnet.span_graph import (
    LabelInfo,
    chain_links,
    decode_chains,
    is_simple_chain,
    mirror_decode,
    plain_decode,
)

LOGGER = answers_ldnet.logger.name
METRIC_SCRIPT = Path(__file__).resolve().parents[1] / "trainers" / "metrics" / "ldnet_uie" / "ldnet_uie.py"


@pytest.fixture(scope="module")
def proc():
    return ldnet_tiny.processor(max_length=64)


def mk(rid, text, schema, ans):
    return {"id": rid, "instruction": "Find things", "schema": schema, "text": text, "ans": ans}


def sp(text, mention, start=0):
    s = text.index(mention, start)
    return {"text": mention, "span": [s, s + len(mention)]}


def decode_gold(proc, rec):
    enc = proc(rec, return_tensors="pt")
    return proc.post_process_extraction(gold_logits(enc), enc)[0]


def grid(chains, n):
    y = np.zeros((3, n, n), dtype=bool)
    for ch in chains:
        for c, i, j in chain_links(ch):
            y[c, i, j] = True
    return y


# ---------------------------------------------------------------------------------------------- simple chains


def test_simple_chain_rule():
    assert is_simple_chain(((0,), (5,), (7, 9)))
    assert is_simple_chain(((0,), (5,), (5,)))  # head == tail of one token: the token's self-loop
    assert is_simple_chain(((0,), (3, 5), (5, 7)))  # parts sharing a boundary token
    assert is_simple_chain(((0,), (3, 9), (3, 5)))  # nested spans (ASTE, MNRE gold): a token, not a span, repeats
    assert is_simple_chain(((0,), (5, 7), (6,), (7,)))
    assert not is_simple_chain(((0,), (5,), (5,), (5,)))  # the self-loop taken twice
    assert not is_simple_chain(((0,), (3, 5), (3, 5)))  # head == tail of two tokens
    assert not is_simple_chain(((0,), (5,), (7,), (5,)))  # A B A: a cycle walked again
    assert not is_simple_chain(((0,), (5, 6), (7,), (5, 6)))


A, B, D = 11, 15, 6  # two text tokens and a discontinuous-entity tag
TAGS = {D: LabelInfo("lm", "discontinuous_ent", "d"), 7: LabelInfo("lr", "rel", "r")}


def test_reversed_fragments_decode_simple_chains_in_every_decoder():
    """[A, B] and [B, A]: every walk A B A B ... used to be an entity (14 in all); now the two gold chains and the
    two one-fragment chains the graph itself closes (THW(A, d) and THW(B, d) are both gold links)."""
    gold = {((D,), (A,), (B,)), ((D,), (B,), (A,))}
    y = grid(gold, 20)
    expected = gold | {((D,), (A,)), ((D,), (B,))}
    fast = decode_chains(y, None, TAGS, (10, 20), False)
    assert fast.chains == expected and not fast.budget_exhausted
    assert plain_decode(y, TAGS, (10, 20), False) == expected
    # SPEC §5.1 needs a start node without incoming NNW edges; add one chain that gives it one (tag 7)
    y2 = grid(gold | {((7,), (A,), (B,))}, 20)
    assert all(is_simple_chain(ch) for ch in mirror_decode(y2))


def test_reported_case_reversed_fragments_exact_answers(proc):
    text = "Jerry Smith lives in New York ."
    a, b = sp(text, "Jerry")["span"], sp(text, "New")["span"]
    rec = mk("rev", text, {"discontinuous_ent": ["d"]},
             {"discontinuous_ent": [{"type": "d", "span": [a, b]}, {"type": "d", "span": [b, a]}]})
    assert ans_keys(decode_gold(proc, rec)) == {
        ("discontinuous_ent", "d", ((0, 5), (21, 24))),
        ("discontinuous_ent", "d", ((21, 24), (0, 5))),
        ("discontinuous_ent", "d", ((0, 5),)),  # graph ambiguity: THW(Jerry -> d) closes [Jerry] too
        ("discontinuous_ent", "d", ((21, 24),)),
    }


def test_reported_case_entity_plus_reversed_relation_exact_answers(proc):
    """A..B as a discontinuous entity plus a relation (B, A): two extra 4- and 6-fragment walks before; none now."""
    text = "Jerry Smith lives in New York ."
    a, b = sp(text, "Jerry"), sp(text, "New")
    rec = mk("ent+rel", text, {"discontinuous_ent": ["d"], "rel": ["r"]},
             {"discontinuous_ent": [{"type": "d", "span": [a["span"], b["span"]]}],
              "rel": [{"relation": "r", "head": b, "tail": a}]})
    ans = decode_gold(proc, rec)
    assert ans == {
        "discontinuous_ent": [{"type": "d", "text": "Jerry New", "span": [[0, 5], [21, 24]]}],
        "rel": [{"relation": "r", "head": {"text": "New", "span": [21, 24]}, "tail": {"text": "Jerry", "span": [0, 5]}}],
    }


def test_head_equal_tail_of_several_tokens_is_a_named_miss(proc):
    text = "New York is big ."
    ny = sp(text, "New York")
    rec = mk("same", text, {"rel": ["r"]}, {"rel": [{"relation": "r", "head": ny, "tail": ny}]})
    rep = roundtrip(proc, [rec])
    assert rep.exact == 0 and dict(rep.misses) == {"repeated_span": 1} and rep.extra == 0


# ---------------------------------------------------------------------------------------------- fuzz

N_GRID, TEXT_RANGE = 14, (4, 14)
FUZZ_TAGS = {0: LabelInfo("lm", "discontinuous_ent", "d"), 1: LabelInfo("lr", "rel", "r"),
             2: LabelInfo("lm", "ent", "e"), 3: LabelInfo("lr", "rel", "s")}


@st.composite
def token_part(draw):
    i = draw(st.integers(*TEXT_RANGE).filter(lambda x: x < TEXT_RANGE[1]))
    j = draw(st.integers(i, min(i + 2, TEXT_RANGE[1] - 1)))
    return (i,) if i == j else (i, j)


@st.composite
def overlapping_chains(draw):
    """Discontinuous entities with overlapping / reversed fragments, relations in both directions, entities."""
    chains = set()
    for _ in range(draw(st.integers(0, 3))):
        frags = draw(st.lists(token_part(), min_size=1, max_size=3))
        chains.add(((0,), *frags))
        if draw(st.booleans()):
            chains.add(((0,), *reversed(frags)))
    for _ in range(draw(st.integers(0, 3))):
        h, t = draw(token_part()), draw(token_part())
        tag = draw(st.sampled_from([1, 3]))
        chains.add(((tag,), h, t))
        if draw(st.booleans()):
            chains.add(((tag,), t, h))
    for _ in range(draw(st.integers(0, 2))):
        chains.add(((2,), draw(token_part())))
    return chains


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overlapping_chains())
def test_fuzz_fast_equals_reference_and_chains_are_simple(gold):
    y = grid(gold, N_GRID)
    fast = decode_chains(y, None, FUZZ_TAGS, TEXT_RANGE, False, max_parts=5, budget=10**7)
    assert not fast.budget_exhausted
    assert fast.chains == plain_decode(y, FUZZ_TAGS, TEXT_RANGE, False, max_parts=5)
    assert all(is_simple_chain(ch) for ch in fast.chains)
    nsw = {(i, j) for c, i, j in zip(*np.nonzero(y)) if c == 1}
    for ch in gold:  # a simple gold chain comes back unless another chain's NSW link splits one of its parts
        if is_simple_chain(ch) and not any(len(p) == 2 and (p[0], p[1]) in nsw for p in ch[1:]):
            assert ch in fast.chains, ch


WORDS = "the cat sat on a mat dog ran to big red house man saw old car".split()  # one MiniLM token each


@st.composite
def overlapping_record(draw):
    words = draw(st.lists(st.sampled_from(WORDS), min_size=4, max_size=9))
    text = " ".join(words)
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]

    def wspan():
        a = draw(st.integers(0, len(words) - 1))
        b = draw(st.integers(a, min(len(words) - 1, a + 2)))
        s, e = starts[a], starts[b] + len(words[b])
        return {"text": text[s:e], "span": [s, e]}

    disc, rels = [], []
    for _ in range(draw(st.integers(0, 3))):
        frags = [wspan()["span"] for _ in range(draw(st.integers(2, 3)))]
        disc.append({"type": draw(st.sampled_from(["d0", "d1"])), "span": frags})
        if draw(st.booleans()):
            disc.append({"type": disc[-1]["type"], "span": frags[::-1]})
    for _ in range(draw(st.integers(0, 3))):
        h, t, r = wspan(), wspan(), draw(st.sampled_from(["r0", "r1"]))
        rels.append({"relation": r, "head": h, "tail": t})
        if draw(st.booleans()):
            rels.append({"relation": r, "head": t, "tail": h})
    return mk("fz", text, {"discontinuous_ent": ["d0", "d1"], "rel": ["r0", "r1"]},
              {"discontinuous_ent": disc, "rel": rels}), starts


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overlapping_record())
def test_fuzz_round_trip_overlapping_and_reversed(proc, drawn):
    """Every gold unit's fate is predicted exactly (back / repeated_span / link_interference), and the decoded
    chains of the encoded grid are exactly the reference's (so every extra is a chain the graph really closes)."""
    rec, starts = drawn
    word_of = {s: i for i, s in enumerate(starts)}
    ends = {s + len(w): i for i, (s, w) in enumerate(zip(starts, rec["text"].split()))}

    def part(span):
        a, b = word_of[span[0]], ends[span[1]]
        return (a,) if a == b else (a, b)

    chains = {}
    for u in ans_units(rec["ans"]):
        parts = [part(s) for s in u[2]] if u[0] == "discontinuous_ent" else [part(u[2]), part(u[3])]
        chains[u] = ((-1 - len(u[1]),), *parts)  # a tag node distinct from every token
    nsw = {(p[-1], q[0]) for ch in chains.values() for p, q in zip(ch, ch[1:])}
    expected: dict[str, int] = {}
    for ch in chains.values():
        fate = ("repeated_span" if not is_simple_chain(ch)
                else "link_interference" if any(len(p) == 2 and (p[0], p[1]) in nsw for p in ch[1:]) else None)
        if fate:
            expected[fate] = expected.get(fate, 0) + 1
    rep = roundtrip(proc, [rec])
    assert dict(rep.misses) == expected, (rec, rep.examples)
    assert rep.exact == len(chains) - sum(expected.values())
    enc = proc(rec, return_tensors="pt")
    meta = enc["meta"][0]
    y = grid([], meta.length)
    for _, c, i, j in enc["span_graph_links"].tolist():
        y[c, i, j] = True
    text_range = (meta.text_offset, meta.text_offset + meta.window[1] - meta.window[0])
    fast = decode_chains(y, None, meta.tags, text_range, False, proc.max_parts, budget=10**7)
    assert fast.chains == plain_decode(y, meta.tags, text_range, False, proc.max_parts)


# ---------------------------------------------------------------------------------------------- the step budget


def half_positive(length=200, n_tags=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, length, length, generator=g)
    y = (logits > 0).numpy()
    kth = logits[0].topk(16, dim=-1).values[..., -1:]
    y[0] &= (logits[0] >= kth).numpy()
    tags = {i: LabelInfo("lr" if i % 2 else "lm", "rel" if i % 2 else "ent", f"l{i}") for i in range(1, n_tags + 1)}
    return y, torch.sigmoid(logits[0]).numpy(), tags, (n_tags + 2, length - 1)


def test_budget_is_shared_so_no_label_starves():
    y, scores, tags, text = half_positive()
    small = decode_chains(y, scores, tags, text, False, budget=600)
    assert small.budget_exhausted and small.steps == 600 and small.cut_tags
    found = {ch[0][0] for ch in small.chains}
    assert found == set(tags)  # the last relation label too (it starved when tags were searched one after another)
    # each tag got its share: 600 steps / 12 tags; an entity tag finishes early and gives its rest to the others
    assert small.cut_tags <= {t for t, info in tags.items() if info.task == "rel"}
    assert min(sum(ch[0][0] == t for ch in small.chains) for t in tags) >= 10


def test_enough_budget_is_the_unbounded_decoder():
    y, scores, tags, text = half_positive(length=40, n_tags=4)
    full = decode_chains(y, scores, tags, text, False, budget=10**9)
    assert not full.budget_exhausted and not full.cut_tags
    exact = decode_chains(y, scores, tags, text, False, budget=full.steps)
    assert exact.chains == full.chains and not exact.budget_exhausted
    short = decode_chains(y, scores, tags, text, False, budget=full.steps - 1)
    assert short.budget_exhausted and short.chains < full.chains


def test_decoding_is_bounded_on_all_positive_scores():
    length = 160
    y = np.ones((3, length, length), dtype=bool)
    y[0] = False
    y[0, :, :16] = True  # a full top-16 on every row
    tags = {i: LabelInfo("lm", "discontinuous_ent", f"d{i}") for i in range(1, 5)}
    res = decode_chains(y, None, tags, (6, length - 1), False, max_parts=8, budget=5000)
    assert res.budget_exhausted and res.steps == 5000 and {ch[0][0] for ch in res.chains} == set(tags)


SCHEMA = {"ent": ["person", "location", "organization"], "rel": ["live in", "work for"]}
TEXT = "Jerry Smith lives in New York and works for the big red house company ."


def random_logits(enc, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(gold_logits(enc).shape, generator=g)  # about half of all cells positive


def labels_of(ans):
    return {x["type"] for x in ans.get("ent", [])} | {x["relation"] for x in ans.get("rel", [])}


def test_processor_flags_and_warns_once_when_cut(caplog):
    p = ldnet_tiny.processor(max_length=64, decode_budget=100)
    enc = p([mk("a", TEXT, SCHEMA, {}), mk("b", TEXT, SCHEMA, {})], return_tensors="pt")
    logits = random_logits(enc)
    unbounded, report = decode_extraction(logits, enc["meta"], 0.5, budget=10**9, warn=False)
    assert report.windows_cut == 0 and not any(DECODE_TRUNCATED in a for a in unbounded)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        out = p.post_process_extraction(logits, enc)
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "'a'" in warnings[0].getMessage() and "'b'" in warnings[0].getMessage()
    assert all(a[DECODE_TRUNCATED] is True for a in out) and p.last_decode_budget_exhausted == 2
    for cut, full in zip(out, unbounded):  # a subset, and every label of the full answer still has results
        assert ans_keys(cut) < ans_keys(full) and labels_of(cut) == labels_of(full)
    assert labels_of(out[0]) == set(SCHEMA["ent"] + SCHEMA["rel"])
    # with enough budget: identical to the unbounded decoder, no flag, no warning
    big = ldnet_tiny.processor(max_length=64, decode_budget=200000)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert big.post_process_extraction(logits, enc) == unbounded
    assert not [r for r in caplog.records if r.name == LOGGER] and big.last_decode_budget_exhausted == 0


def test_pipeline_surfaces_the_flag(caplog):
    p = ldnet_tiny.processor(max_length=64, decode_budget=20)
    model = ldnet_tiny.tiny_model(p)  # untrained: logits near 0, about half of all links positive
    ie = pipeline("universal-ie", model=model, processor=p, device="cpu")
    with caplog.at_level(logging.WARNING, logger="modeling_ldnet"):
        out = ie(TEXT, schema=SCHEMA)
    assert out[DECODE_TRUNCATED] is True and labels_of(out) == set(SCHEMA["ent"] + SCHEMA["rel"])
    pipe_logger = "modeling_ldnet.pipeline_ldnet"
    assert [r.name for r in caplog.records if r.name in (LOGGER, pipe_logger)] == [pipe_logger]
    # one warning per call, however many batches the call decodes (5 texts, batches of 2: 3 decoding calls)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modeling_ldnet"):
        outs = ie([TEXT] * 5, schema=SCHEMA, batch_size=2)
    assert all(o[DECODE_TRUNCATED] is True for o in outs)
    warned = [r for r in caplog.records if r.name in (LOGGER, pipe_logger)]
    assert len(warned) == 1 and "5 record(s)" in warned[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modeling_ldnet"):  # a generator warns once, when it is used up
        gen = ie(iter([TEXT] * 3), schema=SCHEMA, batch_size=2)
        assert not caplog.records
        assert len(list(gen)) == 3
    assert len([r for r in caplog.records if r.name in (LOGGER, pipe_logger)]) == 1
    p.decode_budget = 10**7
    full = ie(TEXT, schema=SCHEMA)
    assert DECODE_TRUNCATED not in full and ans_keys(out) < ans_keys(full)


# ---------------------------------------------------------------------------------------------- ans <-> units

EVENT_TEXT = "Troops attacked the city and burned the town ."
ANS = {
    "cls": ["war"],
    "ent": [{"type": "person", **sp(EVENT_TEXT, "Troops")}],
    "discontinuous_ent": [{"type": "d", "text": "the city the town",
                           "span": [sp(EVENT_TEXT, "the city")["span"], sp(EVENT_TEXT, "the town")["span"]]}],
    "rel": [{"relation": "r", "head": sp(EVENT_TEXT, "Troops"), "tail": sp(EVENT_TEXT, "the city")}],
    "hyper_rel": [{"relation": "h", "head": sp(EVENT_TEXT, "Troops"), "tail": sp(EVENT_TEXT, "the city"),
                   "qualifiers": [{"label": "q", **sp(EVENT_TEXT, "town")}]},
                  {"relation": "h", "head": sp(EVENT_TEXT, "city"), "tail": sp(EVENT_TEXT, "town"), "qualifiers": []}],
    "event": [{"event_type": "attack", "trigger": sp(EVENT_TEXT, "attacked"),
               "args": [{"role": "attacker", **sp(EVENT_TEXT, "Troops")},
                        {"role": "target", **sp(EVENT_TEXT, "the city")}]}],
    "span": [sp(EVENT_TEXT, "burned")],
}


def test_ans_units_exact_and_inverse():
    assert ans_units(ANS) == [
        ("cls", "war"),
        ("ent", "person", (0, 6)),
        ("discontinuous_ent", "d", ((16, 24), (36, 44))),
        ("rel", "r", (0, 6), (16, 24)),
        ("hyper_rel", "h", (0, 6), (16, 24), "q", (40, 44)),
        ("hyper_rel", "h", (20, 24), (40, 44), None, None),
        ("event_trigger", "attack", (7, 15)),
        ("event_arg", "attack", (7, 15), "attacker", (0, 6)),
        ("event_arg", "attack", (7, 15), "target", (16, 24)),
        ("span", (29, 35)),
    ]
    back = units_to_ans(dict.fromkeys(ans_units(ANS), 0.9), EVENT_TEXT)
    assert back == ANS
    scored = units_to_ans(dict.fromkeys(ans_units(ANS), 0.25), EVENT_TEXT, return_scores=True)
    assert scored["event"][0]["score"] == 0.25 and "score" not in scored["event"][0]["args"][0]


def test_ans_units_strict_names_the_item_and_lenient_skips():
    bad = {"ent": [{"type": "x", "span": [0]}], "rel": [{"relation": "r", "head": {"span": [0, 1]}, "tail": 3}],
           "event": [{"event_type": "e", "trigger": {"span": "x"}, "args": [{"role": "a", "span": [2, 3]}]}]}
    with pytest.raises(ValueError, match=r"ans\.ent\[0\]"):
        ans_units(bad)
    assert ans_units(bad, strict=False) == [("event_arg", "e", None, "a", (2, 3))]


def test_metric_holds_a_verbatim_copy_of_ans_units():
    """``evaluate.load`` ships the metric folder alone, so it cannot import the package: it vendors the function."""
    metric_src = METRIC_SCRIPT.read_text(encoding="utf-8")
    assert inspect.getsource(answers_ldnet.ans_units) in metric_src


# ---------------------------------------------------------------------------------------------- span hygiene

HYG_TEXT = "John lives in Boston . He banks at Bank of America ( BoA ) ."


def at(mention: str, start: int = 0) -> tuple[int, int]:
    s = HYG_TEXT.index(mention, start)
    return (s, s + len(mention))


JOHN, BOSTON, BOSTON_DOT = at("John"), at("Boston"), at("Boston .")
BANK, AMERICA, BOA, BOA_PAREN = at("Bank of America"), at("America"), at("BoA"), at("( BoA )")
HYG_UNITS = {
    ("ent", "person", JOHN): 0.9,
    ("ent", "location", BOSTON): 0.6,
    ("ent", "location", BOSTON_DOT): 0.8,
    ("ent", "organization", BOSTON_DOT): 0.3,   # another type: not a variant of the location spans
    ("ent", "organization", BANK): 0.7,
    ("ent", "location", AMERICA): 0.5,          # genuinely nested: kept
    ("ent", "organization", BOA): 0.4,
    ("ent", "organization", BOA_PAREN): 0.45,
    ("rel", "live in", JOHN, BOSTON): 0.55,
    ("rel", "live in", JOHN, BOSTON_DOT): 0.4,
    ("event_trigger", "move", at("lives")): 0.7,
    ("event_trigger", "move", at("lives in")): 0.2,  # "in" is a word: not a variant
    ("event_arg", "move", at("lives"), "place", BOSTON_DOT): 0.35,
    ("cls", "news"): 1.0,
}


def test_punctuation_core():
    assert punctuation_core(BOSTON_DOT, HYG_TEXT) == BOSTON
    assert punctuation_core(BOA_PAREN, HYG_TEXT) == BOA
    assert punctuation_core(BANK, HYG_TEXT) == BANK
    assert punctuation_core(at("Boston . He"), HYG_TEXT) == at("Boston . He")  # inside: not an edge
    # attached punctuation is part of the word (CoNLL04 gold: "Ethiopia.", "U.S."): no variants of each other
    assert punctuation_core((0, 9), "Ethiopia. x") == (0, 9) and punctuation_core((0, 4), "U.S. troops") == (0, 4)
    assert punctuation_core((0, 11), "Ethiopia. , x") == (0, 9)
    assert punctuation_core((2, 3), "a . b") == (2, 3)  # punctuation only: its own core


def test_span_hygiene_merge_keeps_the_best_scored_variant():
    units, dropped = span_hygiene(HYG_UNITS, HYG_TEXT, "merge")
    assert dropped == 3
    assert units == {
        ("ent", "person", JOHN): 0.9,
        ("ent", "location", BOSTON_DOT): 0.8,       # 0.8 > 0.6
        ("ent", "organization", BOSTON_DOT): 0.3,
        ("ent", "organization", BANK): 0.7,
        ("ent", "location", AMERICA): 0.5,
        ("ent", "organization", BOA_PAREN): 0.45,   # 0.45 > 0.4
        # the relation on the dropped "Boston" moved to the kept entity span, best score of the two
        ("rel", "live in", JOHN, BOSTON_DOT): 0.55,
        ("event_trigger", "move", at("lives")): 0.7,
        ("event_trigger", "move", at("lives in")): 0.2,
        ("event_arg", "move", at("lives"), "place", BOSTON_DOT): 0.35,
        ("cls", "news"): 1.0,
    }


def test_span_hygiene_suppress_drops_the_extension():
    units, dropped = span_hygiene(HYG_UNITS, HYG_TEXT, "suppress")
    assert dropped == 3
    assert units == {
        ("ent", "person", JOHN): 0.9,
        ("ent", "location", BOSTON): 0.6,           # the bare span, its own score
        ("ent", "organization", BOSTON_DOT): 0.3,
        ("ent", "organization", BANK): 0.7,
        ("ent", "location", AMERICA): 0.5,
        ("ent", "organization", BOA): 0.4,
        ("rel", "live in", JOHN, BOSTON): 0.55,
        ("event_trigger", "move", at("lives")): 0.7,
        ("event_trigger", "move", at("lives in")): 0.2,
        # "Boston ." is still an organization entity: the argument may be that one, it stays
        ("event_arg", "move", at("lives"), "place", BOSTON_DOT): 0.35,
        ("cls", "news"): 1.0,
    }


def test_attached_punctuation_is_no_variant():
    """The dev measurement (bench/RESULTS.md §14): CoNLL04 gold holds "Ethiopia." and "Neil Estes." as tokens; the
    model also predicts "Ethiopia" (a word piece). Both stay, in either mode."""
    text = "He was in Addis Ababa , Ethiopia."
    units = {("ent", "location", (24, 32)): 0.9, ("ent", "location", (24, 33)): 0.6}
    for mode in ("merge", "suppress"):
        assert span_hygiene(units, text, mode) == (units, 0)


def test_span_hygiene_off_and_bad_mode():
    assert span_hygiene(HYG_UNITS, HYG_TEXT, None) == (HYG_UNITS, 0)
    with pytest.raises(ValueError, match="span_hygiene must be one of"):
        span_hygiene(HYG_UNITS, HYG_TEXT, "dedupe")


def test_event_arguments_follow_their_trigger():
    text = "Troops attacked . the city"
    trig, trig_dot, city = (7, 15), (7, 17), (18, 26)
    units = {("event_trigger", "attack", trig): 0.5, ("event_trigger", "attack", trig_dot): 0.9,
             ("event_arg", "attack", trig, "target", city): 0.4, ("event_arg", "attack", trig_dot, "target", city): 0.3}
    out, dropped = span_hygiene(units, text, "merge")
    assert (out, dropped) == ({("event_trigger", "attack", trig_dot): 0.9,
                               ("event_arg", "attack", trig_dot, "target", city): 0.4}, 2)
    assert units_to_ans(out, text)["event"] == [{"event_type": "attack", "trigger": {"text": "attacked .",
                                                 "span": [7, 17]}, "args": [{"role": "target", "text": "the city",
                                                                             "span": [18, 26]}]}]


def test_decode_extraction_span_hygiene_on_gold_logits(proc):
    """Gold with both Boston spans (what a noisy model predicts): off, both come back (the exact decoder); merge
    keeps the better-scored one, suppress the bare one; the report counts what was folded."""
    text = "John lives in Boston ."
    boston, boston_dot = sp(text, "Boston"), sp(text, "Boston .")
    rec = mk("b", text, {"ent": ["person", "location"], "rel": ["live in"]},
             {"ent": [{"type": "person", **sp(text, "John")}, {"type": "location", **boston},
                      {"type": "location", **boston_dot}],
              "rel": [{"relation": "live in", "head": sp(text, "John"), "tail": boston}]})
    enc = proc(rec, return_tensors="pt")
    logits = gold_logits(enc)
    meta = enc["meta"][0]
    base = meta.window[0] - meta.text_offset
    k = meta.token_offsets.index(tuple(boston["span"]))  # the token "Boston"
    row = logits[0, 2, k - base]
    row[row > 0] = 1.0  # its THW links (closing "Boston" and the relation) at probability 0.73, the rest 1.0

    def keys(mode):
        ans, report = decode_extraction(logits, enc["meta"], 0.5, span_hygiene=mode, return_scores=True)
        return ans_keys(ans[0]), report.variants_dropped

    john = (0, 4)
    assert keys(None) == ({("ent", "person", john), ("ent", "location", (14, 20)), ("ent", "location", (14, 22)),
                           ("rel", "live in", john, (14, 20))}, {})
    assert keys("merge") == ({("ent", "person", john), ("ent", "location", (14, 22)),
                              ("rel", "live in", john, (14, 22))}, {0: 1})
    assert keys("suppress") == ({("ent", "person", john), ("ent", "location", (14, 20)),
                                 ("rel", "live in", john, (14, 20))}, {0: 1})
    # the processor's default is the exact decoder (gold round trips); the mode is checked before any work
    assert ans_keys(proc.post_process_extraction(logits, enc)[0]) == keys(None)[0]
    with pytest.raises(ValueError, match="span_hygiene must be one of"):
        decode_extraction(logits, enc["meta"], 0.5, span_hygiene="yes")


def test_pipeline_reads_the_config_switch(monkeypatch):
    p = ldnet_tiny.processor(max_length=64)
    model = ldnet_tiny.tiny_model(p)
    ie = pipeline("universal-ie", model=model, processor=p, device="cpu")
    seen = []
    real = p.post_process_extraction

    def spy(logits, encoding, threshold=None, return_scores=False, warn=True, span_hygiene=None):
        seen.append(span_hygiene)
        return real(logits, encoding, threshold=threshold, return_scores=return_scores, warn=warn,
                    span_hygiene=span_hygiene)

    monkeypatch.setattr(p, "post_process_extraction", spy)
    assert model.config.decode_span_hygiene == "suppress"  # the default
    ie("Jerry lives in Paris .", schema={"ent": ["person"]}, threshold=0.9)
    model.config.decode_span_hygiene = None  # off: read on every call
    ie("Jerry lives in Paris .", schema={"ent": ["person"]}, threshold=0.9)
    model.config.decode_span_hygiene = "merge"
    ie("Jerry lives in Paris .", schema={"ent": ["person"]}, threshold=0.9)
    assert seen == ["suppress", None, "merge"]


def test_config_span_hygiene_field():
    assert LDNetConfig().decode_span_hygiene == "suppress"
    assert LDNetConfig(decode_span_hygiene=None).to_dict()["decode_span_hygiene"] is None
    assert LDNetConfig.from_dict(LDNetConfig(decode_span_hygiene="merge").to_dict()).decode_span_hygiene == "merge"
    with pytest.raises(ValueError, match="LDNetConfig.decode_span_hygiene"):
        LDNetConfig(decode_span_hygiene="drop")
