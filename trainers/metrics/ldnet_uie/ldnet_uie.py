"""``ldnet_uie``: set-based micro P/R/F1 (and friends) for universal information extraction.

Self-contained ``evaluate`` metric (no imports from the ``ldnet`` repository: ``evaluate.load`` copies this file).

Every prediction / reference is one record's unified ``ans`` dict (SPEC §1, character-offset spans ``[start, end)``),
serialised as a JSON string. Matching is done per record on **sets** of hashable units (duplicates collapse) and
micro-averaged over the data set (``tp``/``fp``/``fn`` summed). See ``README.md`` next to this file for the full
definition of every unit.

The pure-python entry points (``compute_uie``, ``flatten``, ``squad_normalize``, ``matthews_corrcoef``,
``record_units``) can be used without ``evaluate`` by importing this file directly.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections import Counter
from collections.abc import Iterable
from typing import Any

import datasets
import evaluate

ANS_FIELDS = ("cls", "ent", "discontinuous_ent", "rel", "hyper_rel", "event", "span")
UNIT_KEYS = (
    "ent",
    "rel_strict",
    "rel_typed",
    "rel_boundary",
    "rel_ent",
    "trigger_id",
    "trigger_cls",
    "arg_id",
    "arg_cls",
    "discontinuous_ent",
    "hyper_rel",
    "hyper_rel_triple",
    "cls",
    "span",
)

_CITATION = """\
@article{yang2025labeldrop,
  title   = {Label Drop for Multi-Aspect Relation Modeling in Universal Information Extraction},
  author  = {Yang, Lu and Li, Jiajia and Ci, En and Zhang, Lefei and Li, Zuchao and Wang, Ping},
  journal = {arXiv preprint arXiv:2502.12614},
  year    = {2025}
}
"""

_DESCRIPTION = """\
Set-based micro-averaged metrics for universal information extraction on unified `ans` records (character-offset
spans): NER (strict, per type, macro), RE / ABSA triplets (strict, boundary, entity bag), event extraction
(trigger identification / classification, one-to-one argument identification / classification), discontinuous NER,
hyper-relational extraction (per qualifier, and triples), classification (accuracy, micro-F1, MCC), extractive MRC
(SQuAD-official EM/F1 and the set-level EM / character-overlap F1), and a `general` micro score over every unit.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of JSON strings, one per record, each a unified `ans` dict (python dicts are accepted by
        `compute_uie` / `trainers.metrics.compute_uie_metrics`).
    references: list of JSON strings, same format, gold answers.
    tasks: optional list of task names among ("cls", "ent", "discontinuous_ent", "rel", "hyper_rel", "event",
        "span") that are always reported, in addition to every task that has a non-empty field in some reference
        or prediction.
    event_trigger_aware: bool (default False). If True the event argument units also contain the trigger span.
Returns:
    nested dict, e.g. {"ent": {"precision", "recall", "f1", "tp", "fp", "fn", "per_type": {...}, "macro_f1"},
    "rel": {"strict": {...}, "boundary": {...}, "ent": {...}}, "event": {"trigger_id", "trigger_cls", "arg_id",
    "arg_cls"}, "discontinuous_ent": {...}, "hyper_rel": {...}, "hyper_rel_triple": {...},
    "cls": {"acc", "mcc", "micro_f1", "micro_precision", "micro_recall", "tp", "fp", "fn", "n"},
    "span": {"squad_em", "squad_f1", "em", "f1", "precision", "recall", "tp", "fp", "fn", "n"},
    "general": {...}}. Only active tasks appear. Use `flatten` for a flat {str: float} dict.
Examples:
    >>> import json, evaluate
    >>> m = evaluate.load("trainers/metrics/ldnet_uie")
    >>> gold = {"ent": [{"type": "person", "text": "Tom", "span": [27, 30]}]}
    >>> r = m.compute(predictions=[json.dumps(gold)], references=[json.dumps(gold)])
    >>> r["ent"]["f1"]
    1.0
"""


# --------------------------------------------------------------------------------------------------------------
# small helpers


def _div(num: float, den: float) -> float:
    """Safe division: ``x / 0 -> 0.0`` (P = 0 for empty predictions, R = 0 for empty gold)."""
    return num / den if den else 0.0


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision / recall / F1 from counts; every ratio is 0.0 when its denominator is 0.

    F1 is computed as ``2tp / (2tp + fp + fn)`` (identical to ``2PR / (P + R)``, with a single rounding).
    """
    return {
        "precision": _div(tp, tp + fp),
        "recall": _div(tp, tp + fn),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
    }


class _Counts:
    __slots__ = ("fn", "fp", "tp")

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0

    def add(self, gold: set, pred: set) -> None:
        inter = len(gold & pred)
        self.tp += inter
        self.fp += len(pred) - inter
        self.fn += len(gold) - inter

    def result(self) -> dict:
        return prf(self.tp, self.fp, self.fn)


def _items(ans: dict, field: str) -> list:
    v = ans.get(field)
    return list(v) if isinstance(v, (list, tuple)) else []


def as_ans(obj: Any) -> dict:
    """Accept an ``ans`` dict, a JSON string of one, a whole unified record (its ``ans`` is used) or ``None``."""
    if obj is None:
        return {}
    if isinstance(obj, (str, bytes)):
        obj = json.loads(obj) if obj else {}
    if not isinstance(obj, dict):
        raise TypeError(f"expected an `ans` dict or its JSON string, got {type(obj).__name__}")
    if "ans" in obj and isinstance(obj.get("ans"), (dict, type(None))) and not any(f in obj for f in ANS_FIELDS):
        return obj.get("ans") or {}
    return obj


# --------------------------------------------------------------------------------------------------------------
# unit extraction


# vendored: a verbatim copy of ``modeling_ldnet/answers_ldnet.py::ans_units`` (THE ``ans`` -> units function the
# processor and the round-trip tool use; ``evaluate.load`` ships this folder alone). tests/test_decoding.py checks it.
def ans_units(ans: dict, strict: bool = True) -> list[tuple]:
    """The comparable units of one ``ans`` dict, unique, in the order of the dict (see the module docstring).

    A fact without qualifiers is one ``hyper_rel`` unit with ``None`` qualifier; a flat ``[s, e]`` discontinuous
    span is one fragment. ``strict``: a malformed item (not a dict, a span that is not ``[s, e]``) raises
    ``ValueError`` naming it; otherwise it is skipped (the metric scores predictions of any shape), and an argument
    keeps its event's malformed trigger as ``None``.
    """
    units: dict[tuple, None] = {}

    def bad(where: str, value: Any) -> None:
        if strict:
            raise ValueError(f"ans.{where}: malformed answer item {value!r}")

    def span_of(x: Any) -> tuple[int, int] | None:
        if isinstance(x, (list, tuple)) and len(x) == 2 and all(isinstance(v, (int, float)) for v in x):
            return (int(x[0]), int(x[1]))
        return None

    def arg(x: Any, where: str) -> tuple[int, int] | None:
        sp = span_of(x.get("span")) if isinstance(x, dict) else None
        if sp is None:
            bad(where, x)
        return sp

    def items(name: str) -> list[tuple[str, Any]]:
        v = ans.get(name)
        if isinstance(v, (list, tuple)):
            return [(f"{name}[{i}]", x) for i, x in enumerate(v)]
        if v is not None:
            bad(name, v)
        return []

    for where, c in items("cls"):
        if c is None or (strict and not isinstance(c, str)):
            bad(where, c)
        else:
            units[("cls", str(c))] = None
    for where, x in items("ent"):
        sp = arg(x, where)
        if sp is not None:
            units[("ent", x.get("type"), sp)] = None
    for where, x in items("discontinuous_ent"):
        raw = x.get("span") if isinstance(x, dict) else None
        one = span_of(raw)
        frags = [one] if one is not None else [span_of(f) for f in raw] if isinstance(raw, (list, tuple)) else []
        if not frags or None in frags:
            bad(where, x)
        else:
            units[("discontinuous_ent", x.get("type"), tuple(frags))] = None
    for where, x in items("rel"):
        h = arg(x.get("head"), f"{where}.head") if isinstance(x, dict) else bad(where, x)
        t = arg(x.get("tail"), f"{where}.tail") if isinstance(x, dict) else None
        if h is not None and t is not None:
            units[("rel", x.get("relation"), h, t)] = None
    for where, x in items("hyper_rel"):
        h = arg(x.get("head"), f"{where}.head") if isinstance(x, dict) else bad(where, x)
        t = arg(x.get("tail"), f"{where}.tail") if isinstance(x, dict) else None
        if h is None or t is None:
            continue
        quals = []
        for j, q in enumerate(x.get("qualifiers") or []):
            qs = arg(q, f"{where}.qualifiers[{j}]")
            if qs is not None:
                quals.append((q.get("label"), qs))
        for label, qs in quals or [(None, None)]:
            units[("hyper_rel", x.get("relation"), h, t, label, qs)] = None
    for where, x in items("event"):
        if not isinstance(x, dict):
            bad(where, x)
            continue
        etype = x.get("event_type")
        trig = arg(x.get("trigger"), f"{where}.trigger")
        if trig is not None:
            units[("event_trigger", etype, trig)] = None
        for j, a in enumerate(x.get("args") or []):
            sp = arg(a, f"{where}.args[{j}]")
            if sp is not None:
                units[("event_arg", etype, trig, a.get("role"), sp)] = None
    for where, x in items("span"):
        sp = arg(x, where)
        if sp is not None:
            units[("span", sp)] = None
    return list(units)
# end of vendored code


def record_units(ans: dict, event_trigger_aware: bool = False) -> dict:
    """All matching units of one record, as sets (duplicates collapse), derived from :func:`ans_units`.

    Keys: ent, rel_strict, rel_typed (head/tail entity types required), rel_boundary, rel_ent, trigger_id, trigger_cls, arg_id, arg_cls, discontinuous_ent
    (fragments as a sorted set: their order does not matter), hyper_rel, hyper_rel_triple, cls, span. Items whose
    span is malformed are skipped.
    """
    u: dict = {k: set() for k in UNIT_KEYS}
    for unit in ans_units(as_ans(ans), strict=False):
        kind = unit[0]
        if kind == "ent":
            u["ent"].add(unit[1:])
        elif kind == "rel":
            _, r, h, t = unit
            u["rel_strict"].add((r, h, t))
            u["rel_boundary"].add((h, t))
            u["rel_ent"].update((h, t))
        elif kind == "event_trigger":
            _, etype, trig = unit
            u["trigger_id"].add(trig)
            u["trigger_cls"].add((trig, etype))
        elif kind == "event_arg":
            _, etype, trig, role, sp = unit
            if event_trigger_aware:
                u["arg_id"].add((etype, trig, sp))
                u["arg_cls"].add((etype, trig, role, sp))
            else:
                u["arg_id"].add((etype, sp))
                u["arg_cls"].add((etype, role, sp))
        elif kind == "discontinuous_ent":
            u["discontinuous_ent"].add((unit[1], tuple(sorted(set(unit[2])))))
        elif kind == "hyper_rel":
            u["hyper_rel"].add(unit[1:])
            u["hyper_rel_triple"].add(unit[1:4])  # a fact without qualifiers is one unit too (our extension)
        elif kind == "cls":
            u["cls"].add(unit[1])
        elif kind == "span":
            u["span"].add(unit[1])
    # the stricter relation form of part of the literature: the entity types of head and tail must match too (read
    # from the record's own entities; a relation argument with no entity of that span has no type)
    ent_types: dict = {}
    for ty, sp in u["ent"]:
        ent_types.setdefault(sp, set()).add(ty)
    for r, h, t in u["rel_strict"]:
        u["rel_typed"].add((r, h, tuple(sorted(ent_types.get(h, ()))), t, tuple(sorted(ent_types.get(t, ())))))
    return u


def active_tasks(preds: list, refs: list, tasks: Iterable[str] | None = None) -> list:
    """Tasks with a non-empty field in some prediction or reference, plus those named in ``tasks``."""
    wanted = set()
    if tasks is not None:
        if isinstance(tasks, str):
            tasks = [tasks]
        for t in tasks:
            if t not in ANS_FIELDS:
                raise ValueError(f"unknown task {t!r}; expected one of {ANS_FIELDS}")
            wanted.add(t)
    for ans in list(preds) + list(refs):
        for f in ANS_FIELDS:
            if f not in wanted and _items(ans, f):
                wanted.add(f)
    return [f for f in ANS_FIELDS if f in wanted]


# --------------------------------------------------------------------------------------------------------------
# classification


def matthews_corrcoef(y_true: list, y_pred: list) -> float:
    """Multiclass Matthews correlation coefficient (Gorodkin's R_K, same as ``sklearn.metrics.matthews_corrcoef``).

    With ``t_k`` = true count of class k, ``p_k`` = predicted count, ``c`` = correct, ``s`` = total:
    ``MCC = (c*s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2))``; 0.0 if the denominator is 0.
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    s = len(y_true)
    if s == 0:
        return 0.0
    t = Counter(y_true)
    p = Counter(y_pred)
    c = sum(1 for a, b in zip(y_true, y_pred) if a == b)
    cov_tp = c * s - sum(p[k] * t[k] for k in set(t) | set(p))
    cov_pp = s * s - sum(v * v for v in p.values())
    cov_tt = s * s - sum(v * v for v in t.values())
    den = cov_pp * cov_tt
    if den == 0:
        return 0.0
    return cov_tp / math.sqrt(den)


# --------------------------------------------------------------------------------------------------------------
# SQuAD (official v2.0 evaluation script semantics)

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def squad_normalize(s: str) -> str:
    """Lower-case, remove punctuation, remove articles (a/an/the), collapse whitespace (SQuAD official)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _squad_tokens(s: str) -> list:
    return squad_normalize(s).split() if s else []


def squad_exact(gold: str, pred: str) -> int:
    return int(squad_normalize(gold) == squad_normalize(pred))


def squad_f1(gold: str, pred: str) -> float:
    g, p = _squad_tokens(gold), _squad_tokens(pred)
    if not g or not p:  # unanswerable: 1 iff both empty
        return float(g == p)
    common = Counter(g) & Counter(p)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def _span_texts(ans: dict) -> list:
    out = []
    for s in _items(ans, "span"):
        if isinstance(s, dict):
            out.append(s.get("text") or "")
    return out


# --------------------------------------------------------------------------------------------------------------
# main computation


def compute_uie(
    predictions: list,
    references: list,
    tasks: Iterable[str] | None = None,
    event_trigger_aware: bool = False,
) -> dict:
    """Compute every active task's metrics. ``predictions`` / ``references``: lists of ``ans`` dicts or JSON."""
    preds = [as_ans(p) for p in predictions]
    refs = [as_ans(r) for r in references]
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predictions but {len(refs)} references")
    active = active_tasks(preds, refs, tasks)
    keys = UNIT_KEYS
    counts = {k: _Counts() for k in keys}
    per_type: dict = {}
    general = _Counts()
    general_keys = {
        "ent": ("ent",),
        "rel": ("rel_strict",),
        "event": ("trigger_cls", "arg_cls"),
        "discontinuous_ent": ("discontinuous_ent",),
        "hyper_rel": ("hyper_rel",),
        "cls": ("cls",),
        "span": ("span",),
    }
    gen_from = [k for t in active for k in general_keys[t]]
    # cls per-record
    cls_true, cls_pred = [], []
    # span per-record
    n_span = span_em = 0
    sq_em = sq_f1 = 0.0
    char = _Counts()

    for p_ans, g_ans in zip(preds, refs):
        pu = record_units(p_ans, event_trigger_aware)
        gu = record_units(g_ans, event_trigger_aware)
        for k in keys:
            counts[k].add(gu[k], pu[k])
        if "ent" in active:
            types = {u[0] for u in gu["ent"]} | {u[0] for u in pu["ent"]}
            for ty in types:
                per_type.setdefault(ty, _Counts()).add(
                    {u for u in gu["ent"] if u[0] == ty}, {u for u in pu["ent"] if u[0] == ty}
                )
        general.add({(k, x) for k in gen_from for x in gu[k]}, {(k, x) for k in gen_from for x in pu[k]})
        if "cls" in active and (gu["cls"] or pu["cls"]):
            cls_true.append(json.dumps(sorted(gu["cls"])))
            cls_pred.append(json.dumps(sorted(pu["cls"])))
        if "span" in active:
            n_span += 1
            span_em += int(gu["span"] == pu["span"])
            gold_chars = {i for s, e in gu["span"] for i in range(s, e)}
            pred_chars = {i for s, e in pu["span"] for i in range(s, e)}
            char.add(gold_chars, pred_chars)
            gold_texts = [t for t in _span_texts(g_ans) if squad_normalize(t)] or [""]
            pred_texts = _span_texts(p_ans)
            pred_text = pred_texts[0] if pred_texts else ""
            sq_em += max(squad_exact(g, pred_text) for g in gold_texts)
            sq_f1 += max(squad_f1(g, pred_text) for g in gold_texts)

    out: dict = {}
    if "ent" in active:
        ent = counts["ent"].result()
        ent["per_type"] = {ty: c.result() for ty, c in sorted(per_type.items(), key=lambda kv: str(kv[0]))}
        ent["macro_f1"] = _div(sum(v["f1"] for v in ent["per_type"].values()), len(ent["per_type"]))
        out["ent"] = ent
    if "rel" in active:
        out["rel"] = {
            "strict": counts["rel_strict"].result(),
            "boundary": counts["rel_boundary"].result(),
            "ent": counts["rel_ent"].result(),
        }
        if "ent" in active:  # joint entities + relations: also require the argument entity types
            out["rel"]["typed"] = counts["rel_typed"].result()
    if "event" in active:
        out["event"] = {k: counts[k].result() for k in ("trigger_id", "trigger_cls", "arg_id", "arg_cls")}
    if "discontinuous_ent" in active:
        out["discontinuous_ent"] = counts["discontinuous_ent"].result()
    if "hyper_rel" in active:
        out["hyper_rel"] = counts["hyper_rel"].result()
        out["hyper_rel_triple"] = counts["hyper_rel_triple"].result()
    if "cls" in active:
        c = counts["cls"]
        micro = prf(c.tp, c.fp, c.fn)
        n = len(cls_true)
        out["cls"] = {
            "acc": _div(sum(1 for a, b in zip(cls_true, cls_pred) if a == b), n),
            "mcc": matthews_corrcoef(cls_true, cls_pred),
            "micro_f1": micro["f1"],
            "micro_precision": micro["precision"],
            "micro_recall": micro["recall"],
            "tp": c.tp,
            "fp": c.fp,
            "fn": c.fn,
            "n": n,
        }
    if "span" in active:
        ch = char.result()
        out["span"] = {
            "squad_em": _div(sq_em, n_span),
            "squad_f1": _div(sq_f1, n_span),
            "em": _div(span_em, n_span),
            "f1": ch["f1"],
            "precision": ch["precision"],
            "recall": ch["recall"],
            "tp": ch["tp"],
            "fp": ch["fp"],
            "fn": ch["fn"],
            "n": n_span,
        }
    out["general"] = general.result()
    return out


def flatten(results: dict, include_per_type: bool = False, sep: str = "_") -> dict:
    """Nested results -> flat ``{"ent_f1": .., "rel_strict_f1": .., "event_arg_cls_f1": ..}`` of floats.

    Counts become floats; ``per_type`` sub-dicts are dropped unless ``include_per_type`` (keys then contain the type
    strings verbatim); non-numeric values are dropped.
    """
    flat: dict = {}

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k == "per_type" and not include_per_type:
                    continue
                walk(f"{prefix}{sep}{k}" if prefix else str(k), v)
        elif isinstance(obj, bool) or obj is None:
            return
        elif isinstance(obj, (int, float)):
            flat[prefix] = float(obj)

    walk("", results)
    return flat


# --------------------------------------------------------------------------------------------------------------
# evaluate wrapper


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LdnetUie(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://arxiv.org/abs/2502.12614"],
        )

    def _compute(self, predictions, references, tasks=None, event_trigger_aware=False):
        return compute_uie(predictions, references, tasks=tasks, event_trigger_aware=event_trigger_aware)
