"""Gold -> span-graph links -> decode round trip, with every miss put in a named category.

Used by the tests of the processor and of every converter: a record set "round-trips" when decoding the gold
links (as +/-10 logits) gives back the gold answers exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .answers_ldnet import ans_units
from .span_graph import is_simple_chain

#: Why a gold item may not come back. ``truncated``: outside every window / max_length; ``no_token``: the span
#: covers no token (whitespace only); ``too_many_parts``: more fragments than ``max_parts``;
#: ``subword_boundary``: a span boundary falls inside a token, so the decoded offsets snap to the token;
#: ``label_collision``: one label string used by two tasks of the same tag namespace (the first task types it);
#: ``repeated_span``: the tuple names one span twice (head == tail of several tokens, a fragment listed twice):
#: decoding returns simple chains only (``span_graph.is_simple_chain``, docs/decoding.md);
#: ``link_interference``: encoded correctly but links of other tuples of the record change the decoded chain.
MISS_CATEGORIES = (
    "truncated",
    "no_token",
    "too_many_parts",
    "subword_boundary",
    "label_collision",
    "repeated_span",
    "link_interference",
)


def ans_keys(ans: dict) -> set[tuple]:
    """The set of char-level units of an ``ans`` dict (the same units the processor encodes and the metric
    compares: :func:`answers_ldnet.ans_units`)."""
    return set(ans_units(ans))


_TEXT_BASE = 1 << 30


def _gold_chain(g) -> tuple:
    """A gold item's chain with text tokens moved past every tag index (they are relative to the text)."""
    return tuple(p if kind == "tag" else tuple(_TEXT_BASE + i for i in p) for kind, p in g.chain)


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
                elif not is_simple_chain(_gold_chain(g)):
                    cat = "repeated_span"
                else:
                    cat = "link_interference"
                rep.misses[cat] += 1
                rep.examples.setdefault(cat, [])
                if len(rep.examples[cat]) < max_examples:
                    rep.examples[cat].append(g.key)
    return rep
