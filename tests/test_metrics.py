"""Hand-computed checks of the ``ldnet_uie`` metric (trainers/metrics/ldnet_uie) and ``trainers.metrics``.

Every expected number is worked out by hand in the comments (units are matched per record as sets).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from fractions import Fraction as F

import pytest
import torch

from trainers.metrics import (
    METRIC_DIR,
    _impl,
    compute_uie_metrics,
    flatten,
    label_drop_accuracy,
    load_uie_metric,
)


def ent(t, s, e):
    return {"type": t, "text": "x" * (e - s), "span": [s, e]}


def arg(s, e):
    return {"text": "x" * (e - s), "span": [s, e]}


def rel(r, h, t):
    return {"relation": r, "head": arg(*h), "tail": arg(*t)}


def ev(etype, trig, args):
    return {"event_type": etype, "trigger": arg(*trig), "args": [{"role": ro, **arg(s, e)} for ro, s, e in args]}


def prf_of(res):
    return {k: res[k] for k in ("tp", "fp", "fn")}, (res["precision"], res["recall"], res["f1"])


def check(res, tp, fp, fn, p, r, f):
    assert (res["tp"], res["fp"], res["fn"]) == (tp, fp, fn)
    assert res["precision"] == pytest.approx(float(p), abs=1e-12)
    assert res["recall"] == pytest.approx(float(r), abs=1e-12)
    assert res["f1"] == pytest.approx(float(f), abs=1e-12)


# ---------------------------------------------------------------------------------------------------- NER

NER_GOLD = [
    {"ent": [ent("person", 0, 11), ent("person", 27, 30), ent("loc", 40, 45)]},
    {"ent": [ent("org", 5, 8)]},
    {"ent": []},
    {"ent": [ent("person", 3, 5)]},
]
NER_PRED = [
    # (person,0-11) ok; (loc,27-30) wrong type; (loc,40-45) ok, given twice -> collapses
    {"ent": [ent("person", 0, 11), ent("loc", 27, 30), ent("loc", 40, 45), ent("loc", 40, 45)]},
    {"ent": []},  # misses (org,5-8)
    {"ent": [ent("org", 1, 2), ent("org", 3, 4)]},  # two false positives
    {"ent": [ent("person", 3, 5)]},
]


def test_ner_strict_micro_per_type_macro():
    res = compute_uie_metrics(NER_PRED, NER_GOLD)
    assert set(res) == {"ent", "general"}
    # r1: tp 2 (person 0-11, loc 40-45), fp 1 (loc 27-30), fn 1 (person 27-30)
    # r2: fn 1; r3: fp 2; r4: tp 1  => tp 3, fp 3, fn 2
    # P = 3/6 = 1/2, R = 3/5, F1 = 2*3/(2*3+3+2) = 6/11
    check(res["ent"], 3, 3, 2, F(1, 2), F(3, 5), F(6, 11))
    pt = res["ent"]["per_type"]
    assert set(pt) == {"person", "loc", "org"}
    # person: gold {r1 0-11, r1 27-30, r4 3-5}, pred {r1 0-11, r4 3-5}: tp 2 fp 0 fn 1 -> P 1, R 2/3, F1 4/5
    check(pt["person"], 2, 0, 1, 1, F(2, 3), F(4, 5))
    # loc: gold {r1 40-45}, pred {r1 27-30, r1 40-45}: tp 1 fp 1 fn 0 -> P 1/2, R 1, F1 2/3
    check(pt["loc"], 1, 1, 0, F(1, 2), 1, F(2, 3))
    # org: gold {r2 5-8}, pred {r3 1-2, r3 3-4}: tp 0 fp 2 fn 1 -> all 0
    check(pt["org"], 0, 2, 1, 0, 0, 0)
    # macro-F1 = (4/5 + 2/3 + 0) / 3 = 22/45
    assert res["ent"]["macro_f1"] == pytest.approx(22 / 45, abs=1e-12)
    # general = the same units here
    check(res["general"], 3, 3, 2, F(1, 2), F(3, 5), F(6, 11))


def test_duplicates_collapse_in_gold_and_pred():
    gold = [{"ent": [ent("person", 0, 3), ent("person", 0, 3)]}]
    pred = [{"ent": [ent("person", 0, 3), ent("person", 0, 3), ent("person", 0, 3)]}]
    # both sides collapse to {(person, (0,3))}: tp 1, fp 0, fn 0
    check(compute_uie_metrics(pred, gold)["ent"], 1, 0, 0, 1, 1, 1)


def test_empty_predictions_no_zero_division():
    gold = [{"ent": [ent("person", 0, 3), ent("loc", 5, 8)]}, {"ent": []}]
    res = compute_uie_metrics([{}, {}], gold)
    # tp 0, fp 0, fn 2: P = 0/0 := 0, R = 0/2 = 0, F1 = 0
    check(res["ent"], 0, 0, 2, 0, 0, 0)
    assert res["ent"]["macro_f1"] == 0.0
    # nothing at all, but the task is forced: every ratio 0.0
    res = compute_uie_metrics([{}], [{}], tasks=["ent", "rel", "event", "cls", "span", "hyper_rel"])
    check(res["ent"], 0, 0, 0, 0, 0, 0)
    check(res["rel"]["strict"], 0, 0, 0, 0, 0, 0)
    check(res["event"]["arg_cls"], 0, 0, 0, 0, 0, 0)
    assert res["cls"]["acc"] == 0.0 and res["cls"]["mcc"] == 0.0 and res["cls"]["n"] == 0
    # MRC: empty gold and empty pred is a correct "unanswerable" answer
    assert res["span"]["squad_em"] == 1.0 and res["span"]["em"] == 1.0 and res["span"]["f1"] == 0.0
    # zero records
    res = compute_uie_metrics([], [], tasks=["ent"])
    check(res["ent"], 0, 0, 0, 0, 0, 0)


def test_task_detection_and_arrow_style_rows():
    # Arrow rows carry every field (empty lists / None): only non-empty fields activate a task
    row = {
        "cls": [],
        "ent": [ent("person", 0, 3)],
        "discontinuous_ent": [],
        "rel": [],
        "hyper_rel": None,
        "event": [],
        "span": [],
    }
    res = compute_uie_metrics([row], [row])
    assert set(res) == {"ent", "general"}
    res = compute_uie_metrics([row], [row], tasks=["rel"])
    assert set(res) == {"ent", "rel", "general"}
    with pytest.raises(ValueError):
        compute_uie_metrics([row], [row], tasks=["nope"])
    # a whole unified record is accepted (its `ans` is used), as are JSON strings
    rec = {"id": "a", "text": "Tom", "schema": {"ent": ["person"]}, "ans": {"ent": [ent("person", 0, 3)]}}
    assert compute_uie_metrics([json.dumps(rec["ans"])], [rec])["ent"]["f1"] == 1.0
    with pytest.raises(ValueError):
        compute_uie_metrics([{}], [{}, {}])


# ---------------------------------------------------------------------------------------------------- RE / ABSA

RE_GOLD = [
    {"rel": [rel("live in", (0, 11), (21, 29)), rel("work for", (0, 11), (40, 45))]},
    {"rel": [rel("kill", (1, 3), (5, 7))]},
    {"rel": [rel("kill", (10, 12), (14, 16))]},
]
RE_PRED = [
    # A ok, (live in, 0-11, 40-45) = right pair / wrong label, A repeated
    {"rel": [rel("live in", (0, 11), (21, 29)), rel("live in", (0, 11), (40, 45)), rel("live in", (0, 11), (21, 29))]},
    {"rel": [rel("kill", (1, 3), (6, 7))]},  # tail boundary wrong
    {"rel": []},
]


def test_re_strict_boundary_and_entity_bag():
    res = compute_uie_metrics(RE_PRED, RE_GOLD)
    assert set(res) == {"rel", "general"}
    r = res["rel"]
    # strict (rel, head, tail): r1 tp1 fp1 fn1; r2 tp0 fp1 fn1; r3 fn1 => tp1 fp2 fn3
    # P = 1/3, R = 1/4, F1 = 2/(2+2+3) = 2/7
    check(r["strict"], 1, 2, 3, F(1, 3), F(1, 4), F(2, 7))
    # boundary (head, tail): r1 tp2; r2 fp1 fn1; r3 fn1 => tp2 fp1 fn2: P 2/3, R 1/2, F1 4/7
    check(r["boundary"], 2, 1, 2, F(2, 3), F(1, 2), F(4, 7))
    # entity bag: r1 gold {0-11, 21-29, 40-45} = pred -> tp3; r2 gold {1-3, 5-7} pred {1-3, 6-7} -> tp1 fp1 fn1;
    # r3 fn 2 => tp4 fp1 fn3: P 4/5, R 4/7, F1 8/12 = 2/3
    check(r["ent"], 4, 1, 3, F(4, 5), F(4, 7), F(2, 3))
    fl = flatten(res)
    assert fl["rel_strict_f1"] == pytest.approx(2 / 7, abs=1e-12)


def test_absa_triplet_is_rel_strict():
    # "The pizza was great but the service was slow ."  aspect = head, opinion = tail, polarity = relation
    gold = [{"rel": [rel("positive", (4, 9), (14, 19)), rel("negative", (28, 35), (40, 44))]}]
    pred = [{"rel": [rel("positive", (4, 9), (14, 19)), rel("positive", (28, 35), (40, 44))]}]
    res = compute_uie_metrics(pred, gold)
    # strict: tp1 (pizza/great/positive), fp1, fn1 -> 1/2 each; boundary: both pairs right -> 1
    check(res["rel"]["strict"], 1, 1, 1, F(1, 2), F(1, 2), F(1, 2))
    check(res["rel"]["boundary"], 2, 0, 0, 1, 1, 1)


# ---------------------------------------------------------------------------------------------------- EE

EE_GOLD = [
    {
        "event": [
            ev("attack", (7, 15), [("attacker", 0, 6), ("target", 16, 24)]),
            ev("die", (30, 34), [("victim", 16, 24)]),
        ]
    }
]
EE_PRED = [
    {
        "event": [
            ev("attack", (7, 15), [("attacker", 0, 6), ("attacker", 16, 24)]),  # second arg: wrong role
            ev("transport", (30, 34), [("artifact", 16, 24)]),  # wrong event type
        ]
    }
]


def test_event_trigger_and_argument():
    res = compute_uie_metrics(EE_PRED, EE_GOLD)
    e = res["event"]
    # Trig-I: gold {7-15, 30-34} = pred -> tp2
    check(e["trigger_id"], 2, 0, 0, 1, 1, 1)
    # Trig-C: gold {(7-15,attack),(30-34,die)}, pred {(7-15,attack),(30-34,transport)}: tp1 fp1 fn1
    check(e["trigger_cls"], 1, 1, 1, F(1, 2), F(1, 2), F(1, 2))
    # Arg-I (type, span): gold {(attack,0-6),(attack,16-24),(die,16-24)},
    #                     pred {(attack,0-6),(attack,16-24),(transport,16-24)}: tp2 fp1 fn1 -> 2/3
    check(e["arg_id"], 2, 1, 1, F(2, 3), F(2, 3), F(2, 3))
    # Arg-C (type, role, span): only (attack,attacker,0-6) matches: tp1 fp2 fn2 -> 1/3
    check(e["arg_cls"], 1, 2, 2, F(1, 3), F(1, 3), F(1, 3))
    # general = Trig-C units + Arg-C units: tp 1+1, fp 1+2, fn 1+2 -> 2/5
    check(res["general"], 2, 3, 3, F(2, 5), F(2, 5), F(2, 5))


def _reference_arg_id_counts(gold_events, pred_events):
    """The reference's Arg-I counting (SPEC §6/§8.11), restated: role kept in the sets, ignored in the match."""
    g = {(a["role"], tuple(a["span"]), e["event_type"]) for e in gold_events for a in e["args"]}
    p = {(a["role"], tuple(a["span"]), e["event_type"]) for e in pred_events for a in e["args"]}
    g_wo_role = {x[1:] for x in g}
    tp = sum(1 for x in p if x[1:] in g_wo_role)
    return tp, len(p) - tp, len(g) - tp


def test_arg_id_one_to_one_where_reference_overcounts():
    gold = [{"event": [ev("attack", (7, 15), [("attacker", 0, 6)])]}]
    # the same argument span predicted under two roles
    pred = [{"event": [ev("attack", (7, 15), [("attacker", 0, 6), ("target", 0, 6)])]}]
    # the reference: 2 predicted (role, span, type) triples, both match (span, type) -> tp 2 > |gold| = 1, fn = -1
    assert _reference_arg_id_counts(gold[0]["event"], pred[0]["event"]) == (2, 0, -1)
    e = compute_uie_metrics(pred, gold)["event"]
    # ours: Arg-I sets {(attack, 0-6)} vs {(attack, 0-6)} -> tp1 fp0 fn0
    check(e["arg_id"], 1, 0, 0, 1, 1, 1)
    # Arg-C: gold {(attack,attacker,0-6)}, pred {.. attacker .., (attack,target,0-6)}: tp1 fp1 fn0
    # P 1/2, R 1, F1 2/3
    check(e["arg_cls"], 1, 1, 0, F(1, 2), 1, F(2, 3))


def test_event_trigger_aware_flag():
    gold = [{"event": [ev("attack", (7, 15), [("attacker", 0, 6)])]}]
    pred = [{"event": [ev("attack", (8, 15), [("attacker", 0, 6)])]}]  # trigger boundary off by one
    plain = compute_uie_metrics(pred, gold)["event"]
    check(plain["trigger_id"], 0, 1, 1, 0, 0, 0)
    check(plain["arg_id"], 1, 0, 0, 1, 1, 1)  # (attack, 0-6) matches: the trigger is not checked
    check(plain["arg_cls"], 1, 0, 0, 1, 1, 1)
    aware = compute_uie_metrics(pred, gold, event_trigger_aware=True)["event"]
    # (attack, 7-15, 0-6) vs (attack, 8-15, 0-6): tp0 fp1 fn1
    check(aware["arg_id"], 0, 1, 1, 0, 0, 0)
    check(aware["arg_cls"], 0, 1, 1, 0, 0, 0)


# ---------------------------------------------------------------------------------------------------- discontinuous NER


def test_discontinuous_ner_exact_fragments():
    gold = [
        {"discontinuous_ent": [{"type": "ADR", "span": [[7, 21]]}, {"type": "ADR", "span": [[7, 16], [26, 30]]}]},
        {"discontinuous_ent": [{"type": "ADR", "span": [[0, 5]]}]},
    ]
    pred = [
        {
            "discontinuous_ent": [
                {"type": "ADR", "span": [[7, 16], [26, 30]]},
                {"type": "ADR", "span": [[7, 16]]},  # one fragment only -> wrong
                {"type": "ADR", "span": [[26, 30], [7, 16]]},  # same fragments listed in another order -> duplicate
            ]
        },
        {"discontinuous_ent": [{"type": "ADR", "span": [0, 5]}]},  # flat [s, e] == one fragment
    ]
    res = compute_uie_metrics(pred, gold)
    # r1: tp1 fp1 fn1 (7-21 missed); r2: tp1  => tp2 fp1 fn1: 2/3 each
    check(res["discontinuous_ent"], 2, 1, 1, F(2, 3), F(2, 3), F(2, 3))


# ---------------------------------------------------------------------------------------------------- hyper-relational


def test_hyper_rel_per_qualifier_and_triples():
    E, N, U = (0, 8), (22, 44), (80, 90)

    def fact(r, h, t, quals):
        return {**rel(r, h, t), "qualifiers": [{"label": lb, "text": "q", "span": list(sp)} for lb, sp in quals]}

    gold = [
        {
            "hyper_rel": [
                fact("award", E, N, [("point in time", (48, 52)), ("for work", (60, 70))]),
                fact("educated at", E, U, []),  # zero qualifiers: one unit (award.., None, None) in OUR metric
            ]
        }
    ]
    pred = [
        {
            "hyper_rel": [
                fact("award", E, N, [("point in time", (48, 52))]),
                fact("educated at", E, U, [("end time", (95, 99))]),
            ]
        }
    ]
    res = compute_uie_metrics(pred, gold)
    # gold units {(award,E,N,pit,48-52), (award,E,N,for work,60-70), (educated at,E,U,None,None)}
    # pred units {(award,E,N,pit,48-52), (educated at,E,U,end time,95-99)}
    # tp1 fp1 fn2: P 1/2, R 1/3, F1 2/(2+1+2) = 2/5
    # (the reference would drop the zero-qualifier fact: gold 2 units, tp1 fp1 fn1)
    check(res["hyper_rel"], 1, 1, 2, F(1, 2), F(1, 3), F(2, 5))
    # triples (rel, head, tail): both right
    check(res["hyper_rel_triple"], 2, 0, 0, 1, 1, 1)


# ---------------------------------------------------------------------------------------------------- classification


def test_mcc_small_confusion_matrices():
    mcc = _impl().matthews_corrcoef
    # binary: TP 3, FN 1, TN 2, FP 1 -> (3*2 - 1*1) / sqrt(4*4*3*3) = 5/12
    yt = [1, 1, 1, 1, 0, 0, 0]
    yp = [1, 1, 1, 0, 0, 0, 1]
    assert mcc(yt, yp) == pytest.approx(5 / 12, abs=1e-12)
    # 3 classes: true a a b b c, pred a b b b c. s=5, correct c=4; t=(a2,b2,c1), p=(a1,b3,c1)
    # sum p_k t_k = 2+6+1 = 9; num = 4*5-9 = 11; s^2-sum p^2 = 25-11 = 14; s^2-sum t^2 = 25-9 = 16
    # MCC = 11 / sqrt(14*16)
    yt = list("aabbc")
    yp = list("abbbc")
    assert mcc(yt, yp) == pytest.approx(11 / (14 * 16) ** 0.5, abs=1e-12)
    assert mcc(list("aaa"), list("aaa")) == 0.0  # zero denominator
    assert mcc(list("ab"), list("ba")) == pytest.approx(-1.0)
    try:
        from sklearn.metrics import matthews_corrcoef as sk
    except ImportError:
        return
    assert mcc(yt, yp) == pytest.approx(sk(yt, yp), abs=1e-12)


def test_classification_acc_micro_f1_mcc():
    gold = [
        {"cls": ["pos"]},
        {"cls": ["pos"]},
        {"cls": ["neg"]},
        {"cls": ["neg"]},
        {"cls": ["neu"]},
        {"cls": ["a", "b"]},
        {"ent": []},
    ]
    pred = [
        {"cls": ["pos"]},
        {"cls": ["neg"]},
        {"cls": ["neg"]},
        {"cls": ["neg", "neg"]},
        {"cls": []},
        {"cls": ["b", "a"]},
        {},
    ]
    c = compute_uie_metrics(pred, gold)["cls"]
    # the last record has no labels on either side and is not counted: n = 6
    assert c["n"] == 6
    # acc: r1 ok, r2 wrong, r3 ok, r4 ok (duplicate collapses), r5 wrong, r6 ok ({a,b} == {b,a}) -> 4/6
    assert c["acc"] == pytest.approx(4 / 6, abs=1e-12)
    # micro over labels: tp r1 1 + r3 1 + r4 1 + r6 2 = 5; fp r2 neg = 1; fn r2 pos + r5 neu = 2
    # P 5/6, R 5/7, F1 10/13
    assert (c["tp"], c["fp"], c["fn"]) == (5, 1, 2)
    assert c["micro_precision"] == pytest.approx(5 / 6, abs=1e-12)
    assert c["micro_recall"] == pytest.approx(5 / 7, abs=1e-12)
    assert c["micro_f1"] == pytest.approx(10 / 13, abs=1e-12)
    # MCC over label-set classes: true [pos,pos,neg,neg,neu,ab], pred [pos,neg,neg,neg,(none),ab]
    # s=6, correct 4; t = pos2 neg2 neu1 ab1; p = pos1 neg3 none1 ab1
    # sum p_k t_k = 2 + 6 + 0 + 1 = 9 -> num = 4*6 - 9 = 15
    # s^2 - sum p^2 = 36 - (1+9+1+1) = 24;  s^2 - sum t^2 = 36 - (4+4+1+1) = 26
    assert c["mcc"] == pytest.approx(15 / (24 * 26) ** 0.5, abs=1e-12)


# ---------------------------------------------------------------------------------------------------- MRC


def test_squad_normalisation():
    norm = _impl().squad_normalize
    assert norm("  The Quick, brown fox!  ") == "quick brown fox"
    assert norm("An apple a day") == "apple day"
    assert norm("The Eiffel-Tower.") == "eiffeltower"  # punctuation removed, not split on
    assert norm("theatre") == "theatre"  # articles only as whole words
    sq_f1 = _impl().squad_f1
    # gold [capital, of, france], pred [capital]: common 1, P 1, R 1/3, F1 = 2*(1/3)/(4/3) = 1/2
    assert sq_f1("capital of France", "the capital") == pytest.approx(0.5, abs=1e-12)
    assert sq_f1("", "") == 1.0 and sq_f1("", "Paris") == 0.0 and sq_f1("the", "") == 1.0


def test_mrc_squad_and_set_level():
    # text = "Paris is the capital of France ."  capital 13-20, of 21-23, France 24-30
    def sp(t, s, e):
        return {"text": t, "span": [s, e]}

    gold = [
        {"span": [sp("Paris", 0, 5)]},
        {"span": [sp("capital of France", 13, 30)]},
        {"span": []},  # unanswerable
        {"span": []},  # unanswerable
        {"span": [sp("France", 24, 30), sp("of France", 21, 30)]},  # two gold answers
    ]
    pred = [
        {"span": [sp("Paris", 0, 5)]},
        {"span": [sp("capital", 13, 20)]},
        {"span": []},
        {"span": [sp("France", 24, 30)]},
        {"span": [sp("of france", 21, 30)]},
    ]
    s = compute_uie_metrics(pred, gold)["span"]
    assert s["n"] == 5
    # SQuAD EM: 1, 0, 1 (empty == empty), 0, 1 (max over golds: "of france" == "of France") -> 3/5
    assert s["squad_em"] == pytest.approx(3 / 5, abs=1e-12)
    # SQuAD F1: 1, 1/2, 1, 0, 1 -> 3.5/5 = 7/10
    assert s["squad_f1"] == pytest.approx(7 / 10, abs=1e-12)
    # set EM: r1 equal, r2 no, r3 equal (both empty), r4 no, r5 {24-30, 21-30} != {21-30} -> 2/5
    assert s["em"] == pytest.approx(2 / 5, abs=1e-12)
    # char overlap: r1 tp5; r2 gold 13..29 (17) pred 13..19 (7): tp7 fn10; r4 fp6; r5 gold = pred = 21..29: tp9
    # tp 21, fp 6, fn 10 -> P 21/27 = 7/9, R 21/31, F1 42/58 = 21/29
    assert (s["tp"], s["fp"], s["fn"]) == (21, 6, 10)
    assert s["precision"] == pytest.approx(7 / 9, abs=1e-12)
    assert s["recall"] == pytest.approx(21 / 31, abs=1e-12)
    assert s["f1"] == pytest.approx(21 / 29, abs=1e-12)


# ---------------------------------------------------------------------------------------------------- general / flatten


def test_general_mixes_tasks_and_flatten():
    gold = [{"ent": [ent("person", 0, 3)], "rel": [rel("r", (0, 3), (5, 8))]}]
    pred = [{"ent": [ent("person", 0, 3), ent("loc", 5, 8)]}]
    res = compute_uie_metrics(pred, gold)
    # units: gold {ent(person,0-3), rel(r,0-3,5-8)}, pred {ent(person,0-3), ent(loc,5-8)} -> tp1 fp1 fn1
    check(res["general"], 1, 1, 1, F(1, 2), F(1, 2), F(1, 2))
    fl = flatten(res)
    assert all(isinstance(v, float) for v in fl.values())
    assert fl["general_f1"] == 0.5 and fl["ent_f1"] == pytest.approx(2 / 3) and fl["rel_boundary_f1"] == 0.0
    assert fl["ent_tp"] == 1.0 and not any("per_type" in k for k in fl)
    assert flatten(res, include_per_type=True)["ent_per_type_loc_precision"] == 0.0
    ee = flatten(compute_uie_metrics(EE_PRED, EE_GOLD))
    assert {"event_trigger_id_f1", "event_trigger_cls_f1", "event_arg_id_f1", "event_arg_cls_f1"} <= set(ee)


# ---------------------------------------------------------------------------------------------------- label drop


def test_label_drop_accuracy_hand_example():
    # B=1, C=3, L=3; the last token is padding -> valid cells are rows {0,1} x cols {0,1} (4 per channel)
    probs = torch.tensor([[0.9, 0.5, 0.7]])  # > 0.5 strictly: columns predicted [1, 0, (1: pad)]
    mask = torch.tensor([[1, 1, 0]])
    g = torch.ones(1, 3, 3, 3, dtype=torch.uint8)  # 1s in padded cells must be ignored
    g[0, 0, :2, :2] = torch.tensor([[1, 0], [1, 0]])  # equals the prediction: 4/4
    g[0, 1, :2, :2] = torch.tensor([[0, 0], [1, 1]])  # row0: (1v0 x, 0v0 ok); row1: (1v1 ok, 0v1 x): 2/4
    g[0, 2, :2, :2] = torch.tensor([[0, 1], [0, 1]])  # every cell differs: 0/4
    # mean over channels = (1 + 1/2 + 0) / 3 = 1/2
    assert label_drop_accuracy(probs, g, mask) == pytest.approx(0.5, abs=1e-12)
    # without padding: 9 cells per channel, predicted columns [1, 0, 1]; padded row/col of G are all 1
    # ch0 rows [1,0,1] vs [1,0,1],[1,0,1],[1,1,1] -> 3+3+2 = 8; ch1 [0,0,1],[1,1,1],[1,1,1] -> 2+2+2 = 6;
    # ch2 [0,1,1],[0,1,1],[1,1,1] -> 1+1+2 = 4  => (8+6+4)/27 = 2/3
    assert label_drop_accuracy(probs, g, torch.ones(1, 3)) == pytest.approx(2 / 3, abs=1e-12)
    assert label_drop_accuracy(probs, g, torch.zeros(1, 3)) == 0.0


# ---------------------------------------------------------------------------------------------------- evaluate


def _all_examples():
    preds = NER_PRED + RE_PRED + EE_PRED
    refs = NER_GOLD + RE_GOLD + EE_GOLD
    return preds, refs


def test_evaluate_module_in_process_matches_wrapper():
    preds, refs = _all_examples()
    m = load_uie_metric(keep_in_memory=True)
    out = m.compute(predictions=[json.dumps(p) for p in preds], references=[json.dumps(r) for r in refs])
    assert out == compute_uie_metrics(preds, refs)
    # add_batch path, and kwargs forwarding
    for p, r in zip(preds, refs):
        m.add(prediction=json.dumps(p), reference=json.dumps(r))
    out2 = m.compute(tasks=["cls"], event_trigger_aware=True)
    assert out2 == compute_uie_metrics(preds, refs, tasks=["cls"], event_trigger_aware=True)
    assert "cls" in out2


def test_evaluate_load_offline_in_fresh_process(tmp_path):
    """`evaluate.load(<local dir>)` with HF_HUB_OFFLINE=1, a fresh module cache and the repo NOT importable."""
    preds, refs = _all_examples()
    (tmp_path / "data.json").write_text(
        json.dumps({"p": [json.dumps(x) for x in preds], "r": [json.dumps(x) for x in refs]})
    )
    script = textwrap.dedent(
        f"""
        import json, os, sys
        sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != {str(METRIC_DIR.parents[2])!r}]
        sys.meta_path[:] = [f for f in sys.meta_path
                            if "editable" not in (str(getattr(f, "__module__", "")) + type(f).__module__).lower()]
        import evaluate
        import importlib.util
        assert importlib.util.find_spec("trainers") is None  # the script cannot lean on the repository
        d = json.load(open("data.json"))
        m = evaluate.load({str(METRIC_DIR)!r})
        print(json.dumps(m.compute(predictions=d["p"], references=d["r"])))
        """
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_EVALUATE_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_HOME": str(tmp_path / "hf"),
    }
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    # JSON turns the per-type dict keys into strings (they are already) and ints stay ints
    assert got == json.loads(json.dumps(compute_uie_metrics(preds, refs)))


def test_relation_f1_with_entity_types_required():
    # gold: two entities, one relation; prediction: right relation, but the tail's entity type is wrong
    gold = {"ent": [ent("people", 0, 5), ent("location", 10, 15)], "rel": [rel("live in", (0, 5), (10, 15))]}
    pred = {"ent": [ent("people", 0, 5), ent("organization", 10, 15)], "rel": [rel("live in", (0, 5), (10, 15))]}
    res = compute_uie_metrics([pred, gold], [gold, gold])
    check(res["rel"]["strict"], 2, 0, 0, 1, 1, 1)  # (type, head span, tail span) does not look at entity types
    check(res["rel"]["typed"], 1, 1, 1, F(1, 2), F(1, 2), F(1, 2))
    assert flatten(res)["rel_typed_f1"] == pytest.approx(0.5)
    # an argument with no entity of its span has no type: it cannot match a typed gold argument
    bare = {"ent": [ent("people", 0, 5)], "rel": [rel("live in", (0, 5), (10, 15))]}
    check(compute_uie_metrics([bare], [gold])["rel"]["typed"], 0, 1, 1, 0, 0, 0)
    # relation-only tasks (no entities anywhere) report no typed form
    only = {"rel": [rel("live in", (0, 5), (10, 15))]}
    assert "typed" not in compute_uie_metrics([only], [only])["rel"]
