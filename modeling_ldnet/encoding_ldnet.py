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

import torch

from .answers_ldnet import ans_units
from .schema import DESCRIPTIONS, RecordError, check_schema_fields, schema_labels
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
    arg_types: list[dict] = field(default_factory=list)  # typed relation arguments (schema.relation_arg_types)


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


# ---------------------------------------------------------------------------------------------------------------
# label descriptions, tag-like labels, text offsets (helpers of LDNetProcessor's encoding)
# ---------------------------------------------------------------------------------------------------------------

#: tag namespace of the schema fields whose labels may carry a description
NS_OF_TASK = {"cls": "lc", "ent": "lm", "discontinuous_ent": "lm", "rel": "lr"}
#: what separates a label from its description in the sequence
DESCRIPTION_SEPARATOR = ":"


def description_ids(rec: dict, pieces: Any, max_tokens: int) -> dict[tuple[str, str], tuple[list[int], bool]]:
    """``{(namespace, label): (": description" token ids, cut?)}`` of a normalised record, each capped at
    ``max_tokens``; the first description of a tag in SPEC order (labels of two tasks sharing a tag share one node).
    ``pieces``: the processor's ``strings -> token id lists``."""
    described = rec.get(DESCRIPTIONS) or []
    if not described:
        return {}
    out: dict[tuple[str, str], tuple[list[int], bool]] = {}
    sep = pieces([DESCRIPTION_SEPARATOR])[0]
    for d, ids in zip(described, pieces([d["description"] for d in described])):
        key = (NS_OF_TASK[d["task"]], d["label"])
        if key not in out:
            out[key] = (sep + ids[:max_tokens], len(ids) > max_tokens)
    return out


def check_tag_strings(rec: dict, tags: set[str], tokenizer: Any, checked: set[str]) -> None:
    """A schema label spelled like a tag (``[LM]``) or the tokenizer's own special tokens (``[SEP]``) is refused: the
    model could not tell it from the sequence structure. Labels found fine are added to ``checked`` (at most 100,000)
    and not checked again."""
    own = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for task, labels in schema_labels(rec["schema"]).items():
        for lab in labels:
            if lab in checked:
                continue
            hit = next((t for t in tags if t in lab), None) or (lab.strip() if lab.strip() in own else None)
            if hit is not None:
                raise RecordError(rec["id"], f"schema.{task}", f"label {lab!r} is spelled like the special token "
                                                               f"{hit!r}; rename the label")
            if len(checked) < 100000:
                checked.add(lab)


def text_offsets(text: str, offset_mapping: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    """Token character offsets that start after leading whitespace: SentencePiece tokenizers (DeBERTa-v2/v3) give
    ``▁German`` the offsets of `` German``."""
    out = []
    for s, e in offset_mapping:
        while s < e and text[s].isspace():
            s += 1
        out.append((s, e))
    return out


def pad_features(data: dict[str, Any], pad_id: int) -> dict[str, Any]:
    """Right-pad per-feature lists into tensors (``LDNetProcessor.pad``); sparse links become ``[n, 4]`` with the
    feature index first."""
    n = len(data["input_ids"])
    length = max((len(x) for x in data["input_ids"]), default=0)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    ld = torch.zeros((n, length), dtype=torch.float)
    for b, (x, m, t) in enumerate(zip(data["input_ids"], data["attention_mask"], data["label_drop_targets"])):
        ids[b, : len(x)] = torch.as_tensor(x)
        mask[b, : len(m)] = torch.as_tensor(m)
        ld[b, : len(t)] = torch.as_tensor(t, dtype=torch.float)
    links = [[b, *link] for b, ls in enumerate(data["span_graph_links"]) for link in ls]
    out = dict(data)
    out.update(
        input_ids=ids,
        attention_mask=mask,
        label_drop_targets=ld,
        span_graph_links=torch.tensor(links, dtype=torch.long).reshape(-1, 4),
        overflow_to_sample_mapping=torch.as_tensor(data["overflow_to_sample_mapping"], dtype=torch.long),
    )
    return out


def text_windows(rid: Any, n_text: int, budget: int, overflow: str, stride: int, max_length: int) -> list[tuple[int, int]]:
    """``[start, end)`` text-token windows of ``budget`` tokens overlapping by ``stride`` (SPEC §2, long texts)."""
    if n_text <= budget:
        return [(0, n_text)]
    if overflow == "error":
        raise RecordError(rid, "text", f"{n_text} text tokens exceed the {budget} that fit in max_length")
    if overflow == "truncate":
        return [(0, budget)]
    if budget <= stride:
        # a step of max(1, budget - stride) used to start a window at every text token (silent blow-up)
        raise RecordError(
            rid,
            "window_stride",
            f"window_stride={stride} leaves no new text per window: a window holds {budget} text tokens beside "
            f"instruction + schema (+ bg) at max_length={max_length}; use a smaller window_stride",
        )
    wins, start = [], 0
    while True:
        wins.append((start, min(start + budget, n_text)))
        if start + budget >= n_text:
            return wins
        start += budget - stride
