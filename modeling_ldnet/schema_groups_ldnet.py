"""Large schemas: split a record's schema into label groups, each one extra pass over the text.

Used by ``LDNetProcessor.encode_record`` when a text does not fit in one window while instruction + schema leave
fewer than ``window_stride + max_length // MIN_WINDOW_STEP_FRACTION`` text tokens per window (or no room at all).
An event type stays with its roles, a relation with its qualifiers, and labels whose tag collides across tasks stay
together, so each group encodes (and decodes) exactly as if the record held that group alone. A label's
description is part of its label's room and travels with it (the sub-record keeps the record's ``descriptions``;
the processor encodes those of the labels each group holds).

This file is shipped as remote code (imported by ``processing_ldnet``): only relative imports of the package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .encoding_ldnet import MIN_TEXT_TOKENS, MIN_WINDOW_STEP_FRACTION

#: Field of an ``ans`` item that names its label (``cls`` items are the label itself).
_LABEL_FIELD = {"cls": None, "ent": "type", "discontinuous_ent": "type", "rel": "relation", "hyper_rel": "relation",
                "event": "event_type"}


def schema_units(schema: dict) -> list[tuple[list[tuple[str, str]], list[tuple[str, str, str]]]]:
    """Schema entries that must share a pass: ``([(field, name)], [(ns, task, label string)])`` in SPEC §2
    order. An event type keeps its roles, a relation its qualifiers; entries whose tag collides across tasks
    (same namespace and string, e.g. ``ent: attack`` and ``event: attack``) stay together, so a group decodes
    exactly as the whole schema would for them."""
    units: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for f, ns in (("cls", "lc"), ("ent", "lm"), ("discontinuous_ent", "lm"), ("rel", "lr")):
        for x in schema.get(f, []):
            units.setdefault((f, x), [(ns, f, x)])
    for r, quals in schema.get("hyper_rel", {}).items():
        units[("hyper_rel", r)] = [("lr", "hyper_rel", r)] + [("lr", "hyper_rel", q) for q in quals]
    for et, roles in schema.get("event", {}).items():
        units[("event", et)] = [("lm", "event", et)] + [("lr", "event", ro) for ro in roles]
    keys = list(units)
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], tuple[int, str]] = {}
    for u, key in enumerate(keys):
        for ns, task, string in units[key]:
            seen = first.setdefault((ns, string), (u, task))
            if seen[1] != task:  # a cross-task tag collision
                parent[find(u)] = find(seen[0])
    merged: dict[int, tuple[list, list]] = {}
    for u, key in enumerate(keys):
        entry = merged.setdefault(find(u), ([], []))
        entry[0].append(key)
        entry[1].extend(units[key])
    return list(merged.values())


def pack(sizes: list[int], cap: int) -> list[list[int]]:
    """Consecutive items into groups of total size <= ``cap`` (an item larger than ``cap`` goes alone)."""
    groups: list[list[int]] = []
    cur: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if cur and used + size > cap:
            groups.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += size
    if cur:
        groups.append(cur)
    return groups


def schema_groups(
    rec: dict,
    n_text: int,
    stride: int,
    overflow: str,
    *,
    max_length: int,
    pieces: Callable[[Sequence[str]], list[list[int]]],
    fit_suffix: Callable[[list[int], int, int], list[int]],
    description_lengths: dict[tuple[str, str], int] | None = None,
) -> list[dict] | None:
    """Split ``rec`` into one sub-record per label group when instruction + schema leave too little room for
    the text; ``None`` when the record is encoded whole (the usual case).

    ``pieces`` tokenizes strings (no special tokens) and ``fit_suffix`` shortens ``[B] bg [SEP]`` as the
    processor's encoding does, so the room computed here is the room the encoding will have;
    ``description_lengths``: tokens of each ``(namespace, label)``'s encoded description (separator included).
    """
    extra = description_lengths or {}
    schema = rec["schema"]
    # cheap test first (the usual record fits): one tag + pieces per distinct (namespace, label)
    label_keys = dict.fromkeys(
        [("lc", x) for x in schema.get("cls", [])]
        + [("lm", x) for f in ("ent", "discontinuous_ent") for x in schema.get(f, [])]
        + [("lr", x) for x in schema.get("rel", [])]
        + [k for r, qs in schema.get("hyper_rel", {}).items() for k in [("lr", r)] + [("lr", q) for q in qs]]
        + [k for e, rs in schema.get("event", {}).items() for k in [("lm", e)] + [("lr", r) for r in rs]]
    )
    if len(label_keys) < 2:
        return None
    min_text = min(n_text, MIN_TEXT_TOKENS)
    min_step = max(1, max_length // MIN_WINDOW_STEP_FRACTION)
    instr, bg = rec["instruction"], rec["bg"]
    base = 1 + (1 + len(pieces([instr])[0]) if instr else 0) + (1 if n_text else 0)
    suffix_len = (1 + len(pieces([bg])[0]) if bg else 0) + 1
    label_len = {k: 1 + len(p) + extra.get(k, 0) for k, p in zip(label_keys, pieces([k[1] for k in label_keys]))}
    full = base + sum(label_len.values())  # == len(prefix) of the whole schema (one tag per (ns, string))
    hard = full + 1 + min_text > max_length
    if not hard:
        budget = max_length - full - len(fit_suffix([0] * suffix_len, full, min_text))
        if n_text <= budget or budget - stride >= min_step:
            return None
    units = schema_units(schema)
    if len(units) < 2:
        return None
    cap_soft = max_length - base - suffix_len - stride - min_step
    cap_hard = max_length - base - 1 - min_text
    if cap_soft <= 0 and not hard:
        return None  # the room is taken by instruction / bg / stride, not by labels: splitting cannot help
    cap = min(cap_soft, cap_hard) if cap_soft > 0 else cap_hard
    if cap <= 0:
        return None  # the instruction alone leaves no room: the encoding error says so
    sizes = [sum(label_len[k] for k in dict.fromkeys((ns, s) for ns, _, s in labels)) for _, labels in units]
    g_min = len(pack(sizes, cap))
    if g_min < 2:
        return None

    def balanced(n_groups: int) -> list[list[int]]:
        # the smallest capacity giving at most n_groups groups: every pass has about the same text room
        lo, hi = -(-sum(sizes) // n_groups), cap
        while lo < hi:
            mid = (lo + hi) // 2
            if len(pack(sizes, mid)) <= n_groups:
                hi = mid
            else:
                lo = mid + 1
        return pack(sizes, max(hi, 1))

    def cost(groups: list[list[int]]) -> int:  # forward passes (features): each is one padded window
        total = 0
        for group in groups:
            p_len = base + sum(sizes[u] for u in group)
            budget = max_length - p_len - len(fit_suffix([0] * suffix_len, p_len, min_text))
            total += 1 if n_text <= budget else 1 + -(-(n_text - budget) // max(budget - stride, 1))
        return total

    # more, smaller groups mean more passes but longer windows (fewer of them): with windows, take the
    # cheapest count in [g_min, 2 g_min + 2] (the optimum lies near one group's labels ~ one window's step)
    candidates = range(g_min, min(len(units), 2 * g_min + 2) + 1) if overflow == "window" else [g_min]
    groups = min((balanced(k) for k in candidates), key=lambda gs: (cost(gs), len(gs)))
    return [split_record(rec, {k for u in group for k in units[u][0]}) for group in groups]


def split_record(rec: dict, keys: set[tuple[str, str]]) -> dict:
    """``rec`` with only the schema entries (and gold answers) whose ``(field, name)`` is in ``keys``."""
    schema, ans = rec["schema"], rec["ans"]
    sub_schema: dict[str, Any] = {}
    for f in ("cls", "ent", "discontinuous_ent", "rel"):
        kept = [x for x in schema.get(f, []) if (f, x) in keys]
        if kept:
            sub_schema[f] = kept
    for f in ("hyper_rel", "event"):
        kept_d = {k: v for k, v in schema.get(f, {}).items() if (f, k) in keys}
        if kept_d:
            sub_schema[f] = kept_d
    sub_ans: dict[str, list] = {}
    for f, items in ans.items():
        if f == "span":
            continue  # extractive QA has no labels, hence never a split schema
        lf = _LABEL_FIELD[f]
        kept_a = [x for x in items if (f, x if lf is None else x[lf]) in keys]
        if kept_a:
            sub_ans[f] = kept_a
    return {**rec, "schema": sub_schema, "ans": sub_ans}
