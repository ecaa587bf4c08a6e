"""What one encoding holds besides the tensors: per-window :class:`FeatureMeta`, the call's :class:`EncodingReport`,
and the gold units with their chains (:class:`GoldItem`, :func:`gold_items`, SPEC §3.1).

This file is shipped as remote code (imported by ``processing_ldnet``): only relative imports of the package.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .answers_ldnet import ans_units
from .schema import check_schema_fields
from .span_graph import LabelInfo

#: Reasons a gold item is not encoded (counted in :class:`EncodingReport`, never silently dropped).
UNENCODABLE_REASONS = ("truncated", "no_token", "too_many_parts")
#: Text tokens of room (beyond the stride) that a window must add; below it the schema is split into label groups.
MIN_WINDOW_STEP_FRACTION = 8  # max_length // 8: 64 tokens at max_length=512
#: Text tokens that must fit beside instruction + schema (fewer would leave no useful room).
MIN_TEXT_TOKENS = 8


@dataclass
class GoldItem:
    """One gold unit (the metric's unit, char level) and its chain (text parts relative to the text tokens)."""

    key: tuple
    chain: list[tuple[str, tuple[int, ...]]]  # ("tag", (abs,)) or ("text", (ts,) | (ts, te)) relative token ids
    status: str = "ok"
    misaligned: bool = False
    label_collision: bool = False


@dataclass
class FeatureMeta:
    """Everything the decoder needs for one encoded window of one record (kept out of the tensors)."""

    record_index: int
    record_id: Any
    length: int
    text: str
    text_offset: int
    window: tuple[int, int]
    token_offsets: list[tuple[int, int]]
    tags: dict[int, LabelInfo]
    schema: dict
    plain_text_mode: bool
    label_positions: dict[str, dict[str, int]] = field(default_factory=dict)
    schema_group: int = 0  # which label group of a split schema this feature encodes (0 when not split)
    schema_groups: int = 1  # how many label groups (passes) the record's schema was split into


@dataclass
class EncodingReport:
    """Counts of gold items per status for one call (``items`` = unique gold units)."""

    records: int = 0
    features: int = 0
    items: int = 0
    encoded: int = 0
    unencodable: Counter = field(default_factory=Counter)
    misaligned: int = 0
    label_collisions: int = 0
    windowed_records: int = 0
    truncated_bg: int = 0
    #: passes over the text, summed over records (1 per record, more when a large schema is split into groups)
    schema_passes: int = 0
    #: records whose schema was split into label groups (instruction + schema left too little room for text)
    split_records: int = 0
    #: label descriptions encoded, and those cut to the processor's ``max_description_tokens`` (per pass)
    described_labels: int = 0
    descriptions_cut: int = 0
    #: schema labels the model never saw in training (``LDNetConfig.trained_labels``), ``{task: [labels]}``; filled
    #: by ``pipeline("universal-ie")``, which also warns once per call
    unseen_labels: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in sorted(self.unencodable.items())) or "none"
        split = (
            f"; schemas split into label groups: {self.split_records} records, {self.schema_passes} passes"
            if self.split_records
            else ""
        )
        cut = (
            f"; label descriptions cut to max_description_tokens: {self.descriptions_cut} of {self.described_labels}"
            if self.descriptions_cut
            else ""
        )
        unseen = (
            "; labels the model never saw in training: "
            + ", ".join(f"{t}: {labels}" for t, labels in self.unseen_labels.items())
            if self.unseen_labels
            else ""
        )
        return (
            f"{self.records} records -> {self.features} features; gold items {self.items}, encoded {self.encoded}, "
            f"unencodable: {bad}; snapped to token boundaries: {self.misaligned}; "
            f"label-namespace collisions: {self.label_collisions}; windowed records: {self.windowed_records}{split}"
            f"{cut}{unseen}"
        )

    def merge(self, other: "EncodingReport") -> None:
        """Add ``other``'s counts to this report."""
        for name in ("records", "features", "items", "encoded", "misaligned", "label_collisions", "windowed_records",
                     "truncated_bg", "schema_passes", "split_records", "described_labels", "descriptions_cut"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unencodable.update(other.unencodable)
        self.add_unseen(other.unseen_labels)

    def add_unseen(self, unseen: dict[str, list[str]]) -> None:
        """Union ``unseen`` (``{task: [labels]}``) into :attr:`unseen_labels`, first-seen order."""
        for task, labels in unseen.items():
            have = self.unseen_labels.setdefault(task, [])
            have.extend(x for x in labels if x not in have)

    def add_record(self, n_features: int, n_passes: int, windowed: bool, gold: Sequence[GoldItem]) -> None:
        """Count one encoded record: its features, schema passes and gold items by status."""
        self.records += 1
        self.features += n_features
        self.windowed_records += windowed
        self.schema_passes += n_passes
        self.split_records += n_passes > 1
        for g in gold:
            self.items += 1
            if g.status == "ok":
                self.encoded += 1
            else:
                self.unencodable[g.status] += 1
            self.misaligned += g.misaligned
            self.label_collisions += g.label_collision


def as_records(
    records: dict | Sequence[dict] | None, text: Any, schema: dict | None, instruction: str | None, bg: str
) -> Sequence[dict]:
    """The processor's inputs as a list of records: ``records`` as given, or one record per ``text`` (ids 0..n-1)."""
    if records is None:
        if text is None:
            raise ValueError("LDNetProcessor: pass `records` or `text` (+ `schema`)")
        if isinstance(text, str):
            texts = [text]
        elif isinstance(text, (list, tuple)):
            texts = list(text)
        else:
            raise TypeError(f"LDNetProcessor: `text` must be a string or a list of strings, got {type(text).__name__}")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"LDNetProcessor: text[{i}] must be a string, got {type(t).__name__} {t!r:.60}")
        check_schema_fields(schema, "LDNetProcessor: schema")
        return [
            {"id": i, "instruction": instruction or "", "schema": schema or {}, "text": t, "bg": bg, "ans": {}}
            for i, t in enumerate(texts)
        ]
    if isinstance(records, dict):
        return [records]
    if isinstance(records, (str, bytes, bytearray)):
        raise TypeError("LDNetProcessor: `records` must be a dict or a list of dicts; pass a text as `text=`")
    if not isinstance(records, Iterable):  # processor(5) used to fail with "'int' object is not iterable"
        raise TypeError(f"LDNetProcessor: `records` must be a dict or a list of dicts, got {type(records).__name__} "
                        f"{records!r:.60}")
    return records


def gold_items(
    ans: dict,
    label_map: dict[tuple[str, str], int],
    tags: dict[int, LabelInfo],
    starts: list[int],
    ends: list[int],
    max_parts: int,
) -> list[GoldItem]:
    """One :class:`GoldItem` per unit of ``ans`` (:func:`answers_ldnet.ans_units`, the units the metric compares),
    with its chain (SPEC §3.1): tag positions from ``label_map``, text parts as token ids found from the text
    tokens' character ``starts`` / ``ends``. A discontinuous entity longer than ``max_parts`` is not encoded."""
    items: list[GoldItem] = []
    for key in ans_units(ans):
        item = GoldItem(key=key, chain=[])

        def text(sp: tuple[int, int], item: GoldItem = item) -> tuple[str, tuple[int, ...]] | None:
            s, e = sp
            ts = bisect.bisect_right(ends, s)  # first token ending after s
            te = bisect.bisect_left(starts, e) - 1  # last token starting before e
            if ts >= len(ends) or te < ts:
                item.status = "no_token"
                return None
            if starts[ts] != s or ends[te] != e:
                item.misaligned = True
            return ("text", (ts,) if ts == te else (ts, te))

        def tag(ns: str, task: str, label: str, item: GoldItem = item) -> tuple[str, tuple[int, ...]]:
            idx = label_map[(ns, label)]
            if tags[idx].task != task:
                item.label_collision = True
            return ("tag", (idx,))

        kind = key[0]
        if kind == "cls":
            chain = [tag("lc", "cls", key[1])]
        elif kind == "ent":
            chain = [tag("lm", "ent", key[1]), text(key[2])]
        elif kind == "discontinuous_ent":
            if len(key[2]) + 1 > max_parts:
                item.status, chain = "too_many_parts", []
            else:
                chain = [tag("lm", kind, key[1])] + [text(sp) for sp in key[2]]
        elif kind in ("rel", "hyper_rel"):
            chain = [tag("lr", kind, key[1]), text(key[2]), text(key[3])]
            if kind == "hyper_rel" and key[4] is not None:
                chain += [tag("lr", kind, key[4]), text(key[5])]
        elif kind == "event_trigger":
            chain = [tag("lm", "event", key[1]), text(key[2])]
        elif kind == "event_arg":
            chain = [tag("lr", "event", key[3]), text(key[2]), text(key[4])]
        else:  # "span"
            chain = [text(key[1])]
        if item.status == "ok" and any(p is None for p in chain):
            item.status = "no_token"
        if item.status == "ok":
            item.chain = chain
        items.append(item)
    return items
