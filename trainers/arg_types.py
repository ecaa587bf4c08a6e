"""Relation argument types from training data (issue #21 item 2): which entity types the gold heads and tails of each
relation carry, as ``config.relation_arg_types`` (``ldnet-train --derive_arg_types``)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)


def _span(x: Any) -> tuple[int, int] | None:
    span = x.get("span") if isinstance(x, dict) else None
    return (int(span[0]), int(span[1])) if isinstance(span, (list, tuple)) and len(span) == 2 else None


def derive_arg_types(records: Iterable[dict], min_share: float = 0.0) -> tuple[dict[str, dict[str, list[str]]], dict[str, Any]]:
    """``{relation: {"head": [types], "tail": [types]}}`` from joint records (``ans.ent`` and ``ans.rel`` with spans):
    a gold argument's type is the type of the gold entity with the same span. A side keeps every type seen on at
    least ``min_share`` of the relation's typed arguments (0: every type seen), in order of frequency. Returns the
    table and a report: relations seen, arguments without a gold entity of their span (``untyped``: they constrain
    nothing), and the types left out by ``min_share``."""
    if not 0.0 <= min_share < 1.0:
        raise ValueError(f"derive_arg_types: min_share must be in [0, 1), got {min_share!r}")
    counts: dict[str, dict[str, Counter]] = {}
    untyped = Counter()
    for rec in records:
        ans = rec.get("ans") or {}
        types: dict[tuple[int, int], set[str]] = {}
        for e in ans.get("ent") or []:
            if (s := _span(e)) is not None:
                types.setdefault(s, set()).add(e["type"])
        for r in ans.get("rel") or []:
            sides = counts.setdefault(r["relation"], {"head": Counter(), "tail": Counter()})
            for side in ("head", "tail"):
                found = types.get(_span(r.get(side)), set())
                if not found:
                    untyped[r["relation"]] += 1
                sides[side].update(found)
    table: dict[str, dict[str, list[str]]] = {}
    left_out: dict[str, dict[str, list[str]]] = {}
    for rel, sides in counts.items():
        spec = {}
        for side, c in sides.items():
            total = sum(c.values())
            keep = [t for t, n in c.most_common() if total and n / total >= min_share]
            dropped = [t for t in c if t not in keep]
            if dropped:
                left_out.setdefault(rel, {})[side] = dropped
            if keep:
                spec[side] = keep
        if spec:
            table[rel] = spec
    report = {"relations": len(counts), "typed_relations": len(table), "untyped_arguments": dict(untyped),
              "left_out": left_out}
    logger.info("relation argument types from %d relations: %s", len(counts), table)
    return table, report
