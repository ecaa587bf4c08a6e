"""Answers: LDNet scores -> decoded chains -> unified ``ans`` dicts, and ``ans`` dicts -> comparable units.

One home for both directions of the answer format (SPEC §1, §5):

* :func:`decode_extraction` (behind ``LDNetProcessor.post_process_extraction``): threshold the ``[B, 3, L, L]``
  logits, decode each window's chains (:func:`span_graph.decode_chains`), type them once
  (:func:`span_graph.type_chains`), map them to character-level *units*, merge the windows of a record, and build
  its ``ans`` dict (:func:`units_to_ans`). A record whose search ran out of decode budget carries
  ``"decode_truncated": True`` and the call logs one warning (docs/decoding.md).
* :func:`ans_units`: THE ``ans`` -> units function. The processor's gold items, the round-trip tool
  (``roundtrip.ans_keys``) and the ``ldnet_uie`` metric (``record_units``, which holds a verbatim copy, checked by
  ``tests/test_decoding.py``, because ``evaluate.load`` ships that folder alone) all compare these units.

Units (hashable tuples, character offsets ``[start, end)``): ``("cls", label)``, ``("ent", type, span)``,
``("discontinuous_ent", type, (span, ...))``, ``("rel", relation, head, tail)``,
``("hyper_rel", relation, head, tail, qualifier_label | None, qualifier_span | None)``,
``("event_trigger", type, trigger)``, ``("event_arg", type, trigger, role, span)``, ``("span", span)``.

Shipped as remote code: relative imports of the package only.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .schema import check_threshold
from .span_graph import chain_links, decode_chains, threshold_logits, type_chains

if TYPE_CHECKING:  # the processor imports this module: type hints only
    from .processing_ldnet import FeatureMeta

logger = logging.getLogger(__name__)

#: Key of the per-record flag set when the decoder's step budget cut a search (absent when nothing was cut).
DECODE_TRUNCATED = "decode_truncated"
#: Key of ``{label: score}`` of the predicted classes, beside ``cls`` (``cls_scores=True``).
CLS_SCORES = "cls_scores"

#: Span hygiene modes (:func:`span_hygiene`): ``"merge"`` keeps the best-scored of a span's punctuation variants,
#: ``"suppress"`` keeps the variant closest to the bare span; ``None`` keeps them all (the paper's decoder).
SPAN_HYGIENE_MODES: tuple[str, ...] = ("merge", "suppress")


# ------------------------------------------------------------------------------------------------------------
# ans -> units. Stdlib only and self-contained: trainers/metrics/ldnet_uie/ldnet_uie.py holds a verbatim copy.


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


# ------------------------------------------------------------------------------------------------------------
# units -> ans


def units_to_ans(units: dict[tuple, float], text: str, return_scores: bool = False, cls_scores: bool = False) -> dict:
    """The ``ans`` dict of a record's decoded ``units`` (unit -> score); the inverse of :func:`ans_units`.

    Qualifiers of one fact and arguments of one event are grouped; a fact's (event's) score is the best over its
    units (an event trigger unit carries its event's score: the smallest link probability over its chains).
    Classes stay plain label strings (SPEC §1); ``cls_scores`` adds ``"cls_scores": {label: score}`` beside them
    (a single-label task picks its best class by it).
    """

    def sp(s: tuple[int, int]) -> dict:
        return {"text": text[s[0] : s[1]], "span": [s[0], s[1]]}

    def scored(d: dict, score: float) -> dict:
        if return_scores:
            d["score"] = max(d.get("score", 0.0), round(score, 6))
        return d

    ans: dict[str, list] = {}
    grouped: dict[tuple, dict] = {}  # facts and events, appended after the flat fields (sorted like the units)
    args: dict[tuple, list] = {}
    for key in sorted(units, key=repr):
        score, kind = units[key], key[0]
        if kind == "cls":
            ans.setdefault("cls", []).append(key[1])
            if cls_scores:
                ans.setdefault(CLS_SCORES, {})[key[1]] = round(float(score or 0.0), 6)
        elif kind == "ent":
            ans.setdefault("ent", []).append(scored({"type": key[1], **sp(key[2])}, score))
        elif kind == "discontinuous_ent":
            d = {"type": key[1], "text": " ".join(text[a:b] for a, b in key[2]), "span": [list(s) for s in key[2]]}
            ans.setdefault("discontinuous_ent", []).append(scored(d, score))
        elif kind == "rel":
            ans.setdefault("rel", []).append(scored({"relation": key[1], "head": sp(key[2]), "tail": sp(key[3])}, score))
        elif kind == "hyper_rel":
            d = grouped.setdefault(
                ("hyper_rel", *key[1:4]), {"relation": key[1], "head": sp(key[2]), "tail": sp(key[3]), "qualifiers": []}
            )
            if key[4] is not None:
                d["qualifiers"].append({"label": key[4], **sp(key[5])})
            scored(d, score)
        elif kind == "event_trigger":
            scored(grouped.setdefault(("event", *key[1:]), {"event_type": key[1], "trigger": sp(key[2]), "args": []}), score)
        elif kind == "event_arg":
            args.setdefault(("event", key[1], key[2]), []).append((key[3], key[4]))
        elif kind == "span":
            ans.setdefault("span", []).append(scored(sp(key[1]), score))
        else:
            raise ValueError(f"unknown answer unit {key!r}")
    for gkey, d in grouped.items():
        if gkey[0] == "event":
            d["args"] = [{"role": role, **sp(s)} for role, s in sorted(args.get(gkey, []))]
        ans.setdefault(gkey[0], []).append(d)
    return ans


# ------------------------------------------------------------------------------------------------------------
# span hygiene: one answer per span, not one per punctuation variant of it (docs/decoding.md)

#: Unit kind -> positions of its spans (a discontinuous entity's position holds a tuple of fragments).
_SPAN_SLOTS: dict[str, tuple[int, ...]] = {
    "ent": (2,), "discontinuous_ent": (2,), "rel": (2, 3), "hyper_rel": (2, 3, 5), "event_trigger": (2,),
    "event_arg": (2, 4), "span": (1,),
}
#: Slots that are arguments (may point at an entity span): relation heads / tails / qualifiers, event arguments.
_ARG_SLOTS: dict[str, tuple[int, ...]] = {"rel": (2, 3), "hyper_rel": (2, 3, 5), "event_arg": (4,)}


def _is_punctuation(token: str) -> bool:
    return all(unicodedata.category(ch).startswith("P") for ch in token)


def punctuation_core(span: tuple[int, int], text: str) -> tuple[int, int]:
    """``span`` without the whitespace-separated tokens of punctuation only at its edges (``"Boston ."`` ->
    ``"Boston"``, ``"( BoA )"`` -> ``"BoA"``). Punctuation attached to a word stays (``"Ethiopia."``, ``"U.S."``:
    pre-tokenized gold such as CoNLL04's includes it; bench/RESULTS.md §14); a span of punctuation only is its own
    core."""
    s, e = span
    tokens = [(s + m.start(), s + m.end()) for m in re.finditer(r"\S+", text[s:e])]
    while tokens and _is_punctuation(text[tokens[0][0] : tokens[0][1]]):
        tokens.pop(0)
    while tokens and _is_punctuation(text[tokens[-1][0] : tokens[-1][1]]):
        tokens.pop()
    return (tokens[0][0], tokens[-1][1]) if tokens else (span[0], span[1])


def _map_spans(unit: tuple, slots: tuple[int, ...], fn: Callable[[tuple[int, int]], tuple[int, int]]) -> tuple:
    out = list(unit)
    for i in slots:
        v = out[i]
        if v is None:
            continue
        out[i] = tuple(fn(f) for f in v) if unit[0] == "discontinuous_ent" else fn(v)
    return tuple(out)


def _size(unit: tuple) -> int:
    total = 0
    for i in _SPAN_SLOTS.get(unit[0], ()):
        v = unit[i]
        for s, e in ([] if v is None else v if unit[0] == "discontinuous_ent" else [v]):
            total += e - s
    return total


def _dedupe(units: dict[tuple, float], text: str, mode: str) -> tuple[dict[tuple, float], dict[tuple, tuple]]:
    """Group units equal up to punctuation around their spans; keep one per group. Returns (kept, moved), where
    ``moved`` maps every dropped unit to the unit kept in its place."""
    groups: dict[tuple, list[tuple]] = {}
    for u in units:
        groups.setdefault(_map_spans(u, _SPAN_SLOTS[u[0]], lambda sp: punctuation_core(sp, text)), []).append(u)
    kept: dict[tuple, float] = {}
    moved: dict[tuple, tuple] = {}
    for members in groups.values():
        if mode == "merge":  # the best-scored variant; on a tie the one closest to the bare span
            best = min(members, key=lambda u: (-units[u], _size(u), repr(u)))
        else:  # "suppress": drop the extensions, keep the variant closest to the bare span
            best = min(members, key=lambda u: (_size(u), -units[u], repr(u)))
        kept[best] = units[best]
        moved.update((u, best) for u in members if u != best)
    return kept, moved


def span_hygiene(units: dict[tuple, float], text: str, mode: str | None) -> tuple[dict[tuple, float], int]:
    """One answer per span instead of one per punctuation variant (``Boston`` / ``Boston .``) of it.

    Units that differ only in whitespace-separated punctuation tokens at the edges of their spans
    (:func:`punctuation_core`), with the same kind, type and other fields, are *variants*; ``mode`` keeps one of each group: ``"merge"`` the best-scored (ties: the one
    closest to the bare span), ``"suppress"`` the one closest to the bare span (its own score). A relation or event
    argument on a dropped entity variant moves to the kept entity span (when that is unambiguous and the dropped
    span is no entity of another type), and event
    arguments follow their trigger. Genuinely nested spans (``Bank of America`` / ``America``) differ in more
    than punctuation and are all kept. ``None`` returns ``units`` unchanged. Returns ``(units, dropped)``.
    """
    if mode is None:
        return units, 0
    if mode not in SPAN_HYGIENE_MODES:
        raise ValueError(f"span_hygiene must be one of {SPAN_HYGIENE_MODES} or None, got {mode!r}")
    by_kind: dict[str, dict[tuple, float]] = {}
    for u, score in units.items():
        by_kind.setdefault(u[0], {})[u] = score
    out: dict[tuple, float] = dict(by_kind.pop("cls", {}))
    ents, moved = _dedupe(by_kind.pop("ent", {}), text, mode)
    # a dropped entity span -> the span kept for it (only when every type of that span went to the same one)
    # (and not when that span is still an entity of another type: the argument may be that one)
    ent_span: dict[tuple[int, int], tuple[int, int] | None] = {}
    kept_spans = {u[2] for u in ents}
    for old, new in moved.items():
        if old[2] not in kept_spans:
            ent_span[old[2]] = new[2] if ent_span.get(old[2], new[2]) == new[2] else None
    triggers, moved_trig = _dedupe(by_kind.pop("event_trigger", {}), text, mode)
    trig_of = {(old[1], old[2]): new[2] for old, new in moved_trig.items()}
    out.update(ents)
    out.update(triggers)
    for kind, group in by_kind.items():
        rewritten: dict[tuple, float] = {}
        for u, score in group.items():
            if kind == "event_arg":
                u = (*u[:2], trig_of.get((u[1], u[2]), u[2]), *u[3:])
            u = _map_spans(u, _ARG_SLOTS.get(kind, ()), lambda sp: ent_span.get(sp) or sp)
            rewritten[u] = max(score, rewritten.get(u, 0.0))
        out.update(_dedupe(rewritten, text, mode)[0])
    return out, len(units) - len(out)


_span_hygiene = span_hygiene  # decode_extraction's parameter of the same name shadows the function


# ------------------------------------------------------------------------------------------------------------
# logits -> units -> ans


def _char_span(part: tuple[int, ...], meta: FeatureMeta) -> tuple[int, int]:
    """A token part (absolute indices of this window) -> character offsets in the record's text."""
    base = meta.window[0] - meta.text_offset
    return meta.token_offsets[part[0] + base][0], meta.token_offsets[part[-1] + base][1]


def item_units(item: tuple, meta: FeatureMeta) -> list[tuple]:
    """A typed token-level item (:func:`span_graph.type_chains`) -> its character-level units."""
    kind = item[0]

    def cs(part: tuple[int, ...]) -> tuple[int, int]:
        return _char_span(part, meta)

    if kind == "cls":
        return [item]
    if kind == "ent":
        return [("ent", item[1], cs(item[2]))]
    if kind == "discontinuous_ent":
        return [("discontinuous_ent", item[1], tuple(cs(p) for p in item[2]))]
    if kind == "rel":
        return [("rel", item[1], cs(item[2]), cs(item[3]))]
    if kind == "hyper_rel":
        return [("hyper_rel", item[1], cs(item[2]), cs(item[3]), item[4], cs(item[5]) if item[5] else None)]
    if kind == "event":
        trig = cs(item[2])
        return [("event_trigger", item[1], trig)] + [("event_arg", item[1], trig, r, cs(p)) for r, p in item[3]]
    if kind == "span":
        return [("span", cs(item[1]))]
    raise ValueError(f"unknown item kind {kind!r}")


@dataclass
class DecodeReport:
    """What the step budget cut in one decoding call: windows cut, and per record index the labels cut; and per
    record index how many punctuation variants :func:`span_hygiene` folded away (records with none are absent)."""

    windows: int = 0
    windows_cut: int = 0
    cut: dict[int, set[str]] = field(default_factory=dict)
    record_ids: dict[int, Any] = field(default_factory=dict)
    variants_dropped: dict[int, int] = field(default_factory=dict)
    #: per record index, relations dropped because an argument lacked a declared type (:func:`typed_arguments`)
    untyped_dropped: dict[int, int] = field(default_factory=dict)

    def __str__(self) -> str:
        recs = ", ".join(f"{self.record_ids.get(r, r)!r} ({', '.join(sorted(labels))})" for r, labels in sorted(self.cut.items()))
        return (
            f"the decode step budget ran out in {self.windows_cut} of {self.windows} windows; partial answers "
            f"(flagged {DECODE_TRUNCATED!r}) for records: {recs}. Raise `decode_budget` or the threshold."
        )


def decode_extraction(
    logits: torch.Tensor,
    metas: Sequence[FeatureMeta],
    threshold: float | Sequence[float] = 0.5,
    *,
    max_parts: int = 8,
    max_links_per_row: int | None = 16,
    budget: int = 20000,
    return_scores: bool = False,
    warn: bool = True,
    span_hygiene: str | None = None,
    cls_scores: bool = False,
) -> tuple[list[dict], DecodeReport]:
    """Decode ``[B, 3, L, L]`` logits (one row per encoded window) into one ``ans`` dict per record.

    Windows of one record are merged (set union; a unit's score is its best over the windows). Spans are character
    offsets into the record's text; with ``return_scores`` every item carries ``score``, the smallest link
    probability of its chain(s). A record whose search was cut by ``budget`` (steps per window, shared by the labels)
    gets ``"decode_truncated": True``; with ``warn`` one warning per call names them. ``span_hygiene``
    (``"merge"`` / ``"suppress"``; ``None``: off, the exact decoder) folds punctuation variants of one answer
    (:func:`span_hygiene`) after the windows are merged; ``report.variants_dropped`` counts them per record.
    ``cls_scores`` adds ``"cls_scores": {label: score}`` to answers with classes (:func:`units_to_ans`).
    """
    threshold = check_threshold(threshold)  # one value, or one per channel
    if span_hygiene is not None and span_hygiene not in SPAN_HYGIENE_MODES:
        raise ValueError(f"span_hygiene must be one of {SPAN_HYGIENE_MODES} or None, got {span_hygiene!r}")
    if logits.dim() != 4 or logits.shape[1] != 3 or logits.shape[2] != logits.shape[3]:
        raise ValueError(f"logits must be [batch, 3, L, L], got {tuple(logits.shape)}")
    if logits.shape[0] != len(metas):
        raise ValueError(f"logits batch {logits.shape[0]} != {len(metas)} encoded features")
    too_long = [m.record_id for m in metas if m.length > logits.shape[-1]]
    if too_long:
        raise ValueError(f"logits length {logits.shape[-1]} is shorter than the encoding of records {too_long}")
    y = threshold_logits(logits, [m.length for m in metas], threshold, max_links_per_row)
    n_records = max((m.record_index for m in metas), default=-1) + 1
    merged: list[dict[tuple, float]] = [{} for _ in range(n_records)]
    texts = [""] * n_records
    report = DecodeReport(windows=len(metas))
    for b, meta in enumerate(metas):
        n = meta.length
        probs = torch.sigmoid(logits[b, :, :n, :n].detach().float()).cpu().numpy()
        lo = meta.text_offset
        hi = lo + meta.window[1] - meta.window[0]
        res = decode_chains(y[b, :, :n, :n], probs[0], meta.tags, (lo, hi), meta.plain_text_mode, max_parts, budget)
        texts[meta.record_index] = meta.text
        report.record_ids[meta.record_index] = meta.record_id
        if res.budget_exhausted:
            report.windows_cut += 1
            report.cut.setdefault(meta.record_index, set()).update(meta.tags[t].string for t in res.cut_tags)
        chain_score = {ch: float(min(probs[c, i, j] for c, i, j in chain_links(ch))) for ch in res.chains}
        units = merged[meta.record_index]
        for item, support in type_chains(res.chains, meta.tags, meta.schema, meta.plain_text_mode).items():
            score = min(chain_score[ch] for ch in support)
            for unit in item_units(item, meta):
                units[unit] = max(score, units.get(unit, 0.0))
    typed: dict[int, tuple[list[dict], bool]] = {}
    for meta in metas:  # typed relation arguments per record (the same on every window / schema pass)
        entry = typed.setdefault(meta.record_index, (getattr(meta, "arg_types", None) or [], False))
        typed[meta.record_index] = (entry[0], entry[1] or bool(meta.schema.get("ent")))
    answers = []
    for r in range(n_records):
        arg_types, with_entities = typed.get(r, ([], False))
        if arg_types and with_entities:
            merged[r], filtered = typed_arguments(merged[r], arg_types)
            if filtered:
                report.untyped_dropped[r] = filtered
        units, dropped = _span_hygiene(merged[r], texts[r], span_hygiene)
        if dropped:
            report.variants_dropped[r] = dropped
        answers.append(units_to_ans(units, texts[r], return_scores, cls_scores))
    for r in report.cut:
        answers[r][DECODE_TRUNCATED] = True
    if warn and report.cut:
        logger.warning("LDNet decoding: %s", report)
    return answers, report


#: the label key of each answer field that per-label thresholds apply to
LABEL_KEYS: dict[str, str] = {"ent": "type", "discontinuous_ent": "type", "rel": "relation", "hyper_rel": "relation",
                              "event": "event_type"}


def apply_label_thresholds(normal: dict, low: dict | None, thresholds: dict[str, dict[str, float]], floor: float) -> dict:
    """One answer under per-label thresholds ``{task: {label: t}}``: a named label's items come from ``low`` (the same
    logits decoded at the lowest threshold) when ``t`` is below ``floor`` (the channels' smallest threshold), else from
    ``normal``, and are kept when their ``score`` reaches ``t``; every other label's items are ``normal``'s as decoded.
    Answers need scores (decode with ``return_scores=True``)."""
    out = dict(normal)
    for task, key in LABEL_KEYS.items():
        own = thresholds.get(task) or {}
        if not own:
            continue
        items = []
        for src_name, src in (("normal", normal), ("low", low)):
            for item in (src or {}).get(task, []):
                t = own.get(item[key])
                from_low = low is not None and t is not None and t < floor
                if (src_name == "low") == from_low and (t is None or item.get("score", 1.0) >= t):
                    items.append(item)
        if items:
            out[task] = items
        else:
            out.pop(task, None)
    return out


def typed_arguments(units: dict[tuple, float], arg_types: Sequence[dict]) -> tuple[dict[tuple, float], int]:
    """Drop the relation units whose head (tail) span is not an extracted entity of a declared type
    (``[{"relation", "head": [types], "tail": [types]}]``, a missing side allows any); returns the kept units and how
    many were dropped. Applied only when the call extracts entities too."""
    spans: dict[tuple, set[str]] = {}
    for key in units:
        if key[0] == "ent":
            spans.setdefault(key[2], set()).add(key[1])
    declared = {a["relation"]: a for a in arg_types}
    kept: dict[tuple, float] = {}
    for key, score in units.items():
        spec = declared.get(key[1]) if key[0] == "rel" else None
        if spec is not None and any(side in spec and not spans.get(key[pos], set()) & set(spec[side])
                                    for side, pos in (("head", 2), ("tail", 3))):
            continue
        kept[key] = score
    return kept, len(units) - len(kept)


def check_finite_logits(logits: Any, metas: Sequence[Any]) -> None:
    """NaN scores (a broken model: fp16 overflow, diverged training) raise ``ValueError`` naming the records: they
    would otherwise decode to empty answers without a word. Only each feature's real length is checked."""
    if not isinstance(logits, torch.Tensor) or len(metas) != logits.shape[0]:
        return
    nan = [m.record_id for b, m in enumerate(metas) if torch.isnan(logits[b, :, : m.length, : m.length]).any()]
    if nan:
        ids = list(dict.fromkeys(nan))
        raise ValueError(
            f"LDNetProcessor.post_process_extraction: the logits hold NaN for record(s) "
            f"{', '.join(repr(r) for r in ids[:10])}{' ...' if len(ids) > 10 else ''}; the model's output is "
            "broken (fp16 overflow? diverged training?)"
        )
