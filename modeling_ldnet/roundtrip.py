"""Gold -> span-graph links -> decode round trip, with every miss put in a named category.

Used by the tests of the processor and of every converter: a record set "round-trips" when decoding the gold
links (as +/-10 logits) gives back the gold answers exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

#: Why a gold item may not come back. ``truncated``: outside every window / max_length; ``no_token``: the span
#: covers no token (whitespace only); ``too_many_parts``: more fragments than ``max_parts``;
#: ``subword_boundary``: a span boundary falls inside a token, so the decoded offsets snap to the token;
#: ``label_collision``: one label string used by two tasks of the same tag namespace (the first task types it);
#: ``link_interference``: encoded correctly but links of other tuples of the record change the decoded chain.
MISS_CATEGORIES = (
    "truncated",
    "no_token",
    "too_many_parts",
    "subword_boundary",
    "label_collision",
    "link_interference",
)


def _sp(x: dict) -> tuple[int, int]:
    return int(x["span"][0]), int(x["span"][1])


def ans_keys(ans: dict) -> set[tuple]:
    """The set of char-level units of an ``ans`` dict (the same units the processor encodes)."""
    keys: set[tuple] = set()
    for c in ans.get("cls") or []:
        keys.add(("cls", c))
    for x in ans.get("ent") or []:
        keys.add(("ent", x["type"], _sp(x)))
    for x in ans.get("discontinuous_ent") or []:
        keys.add(("discontinuous_ent", x["type"], tuple((int(a), int(b)) for a, b in x["span"])))
    for x in ans.get("rel") or []:
        keys.add(("rel", x["relation"], _sp(x["head"]), _sp(x["tail"])))
    for x in ans.get("hyper_rel") or []:
        h, t = _sp(x["head"]), _sp(x["tail"])
        quals = x.get("qualifiers") or []
        if not quals:
            keys.add(("hyper_rel", x["relation"], h, t, None, None))
        for q in quals:
            keys.add(("hyper_rel", x["relation"], h, t, q["label"], _sp(q)))
    for x in ans.get("event") or []:
        trig = _sp(x["trigger"])
        keys.add(("event_trigger", x["event_type"], trig))
        for a in x.get("args") or []:
            keys.add(("event_arg", x["event_type"], trig, a["role"], _sp(a)))
    for x in ans.get("span") or []:
        keys.add(("span", _sp(x)))
    return keys


@dataclass
class RoundTripReport:
    records: int = 0
    items: int = 0
    exact: int = 0
    extra: int = 0
    misses: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.exact / self.items if self.items else 1.0

    def __str__(self) -> str:
        miss = ", ".join(f"{k}={v}" for k, v in self.misses.most_common()) or "-"
        return f"{self.records} records, {self.items} items, exact {100 * self.rate:.2f}%, misses: {miss}, extra: {self.extra}"


def gold_logits(enc: dict, value: float = 10.0) -> torch.Tensor:
    """``[B, 3, L, L]`` logits that are +value exactly on the gold links and -value elsewhere."""
    b, length = enc["input_ids"].shape
    logits = torch.full((b, 3, length, length), -value)
    links = enc["span_graph_links"]
    if links.numel():
        logits[links[:, 0], links[:, 1], links[:, 2], links[:, 3]] = value
    return logits


def roundtrip(processor, records: Sequence[dict], batch_size: int = 64, max_examples: int = 3) -> RoundTripReport:
    """Encode ``records`` with gold, decode the gold links, and compare with the gold answers item by item."""
    rep = RoundTripReport()
    for start in range(0, len(records), batch_size):
        batch = list(records[start : start + batch_size])
        enc = processor(batch, return_tensors="pt", return_gold=True)
        decoded = processor.post_process_extraction(gold_logits(enc), enc)
        for gold_items, pred in zip(enc["gold_items"], decoded):
            rep.records += 1
            pred_keys = ans_keys(pred)
            gold_keys = {g.key for g in gold_items}
            rep.items += len(gold_keys)
            rep.extra += len(pred_keys - gold_keys)
            for g in gold_items:
                if g.key in pred_keys:
                    rep.exact += 1
                    continue
                if g.status != "ok":
                    cat = g.status
                elif g.misaligned:
                    cat = "subword_boundary"
                elif g.label_collision:
                    cat = "label_collision"
                else:
                    cat = "link_interference"
                rep.misses[cat] += 1
                rep.examples.setdefault(cat, [])
                if len(rep.examples[cat]) < max_examples:
                    rep.examples[cat].append(g.key)
    return rep
