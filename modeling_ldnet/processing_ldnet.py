"""LDNetProcessor: unified records -> model inputs + sparse gold span graph; scores -> unified answers.

Sequence layout (SPEC §2): ``[CLS] ([I] instruction) (TAG label)* ([TL]|[TP] text) ([B] bg) [SEP]``.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import AddedToken, ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature

from .answers_ldnet import ans_units, decode_extraction
from .configuration_ldnet import DEFAULT_SPECIAL_TOKENS
from .schema import (
    RecordError,
    check_int,
    check_overflow,
    check_schema_fields,
    check_threshold,
    normalize_record,
    validate_record,
)
from .span_graph import Chain, LabelInfo, chain_links

logger = logging.getLogger(__name__)

_TAG_OF_NS = {"lc": "cls_label", "lm": "mention_label", "lr": "relation_label"}
#: Reasons a gold item is not encoded (counted in :class:`EncodingReport`, never silently dropped).
UNENCODABLE_REASONS = ("truncated", "no_token", "too_many_parts")
#: Text tokens of room (beyond the stride) that a window must add; below it the schema is split into label groups.
MIN_WINDOW_STEP_FRACTION = 8  # max_length // 8: 64 tokens at max_length=512
#: Text tokens that must fit beside instruction + schema (fewer would leave no useful room).
MIN_TEXT_TOKENS = 8
# Process-wide locks: the Rust tokenizer may not be used while another thread flips its settings, and the
# cumulative ``processor.report`` is updated by merging one call's report (module level: processors are deep-copied
# and pickled, locks are not).
_TOKENIZER_LOCK = threading.RLock()
_REPORT_LOCK = threading.Lock()


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

    def __str__(self) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in sorted(self.unencodable.items())) or "none"
        split = (
            f"; schemas split into label groups: {self.split_records} records, {self.schema_passes} passes"
            if self.split_records
            else ""
        )
        return (
            f"{self.records} records -> {self.features} features; gold items {self.items}, encoded {self.encoded}, "
            f"unencodable: {bad}; snapped to token boundaries: {self.misaligned}; "
            f"label-namespace collisions: {self.label_collisions}; windowed records: {self.windowed_records}{split}"
        )

    def merge(self, other: "EncodingReport") -> None:
        """Add ``other``'s counts to this report."""
        for name in ("records", "features", "items", "encoded", "misaligned", "label_collisions", "windowed_records",
                     "truncated_bg", "schema_passes", "split_records"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unencodable.update(other.unencodable)


class LDNetProcessor(ProcessorMixin):
    r"""Turns unified records (SPEC §1) into LDNet inputs and decodes LDNet scores back into unified answers.

    Args:
        tokenizer: a fast tokenizer (offsets needed). The 7 tag tokens are added when missing; resize the model's
            embeddings to ``len(processor.tokenizer)`` afterwards (``LDNetModel.from_encoder(..., tokenizer=)``).
        max_length: longest sequence (tokens, ``[CLS]``/``[SEP]`` included).
        overflow: ``"window"`` (split long texts into overlapping windows, merged back at decoding), ``"error"``
            (raise naming the record id) or ``"truncate"`` (keep the first window; lost gold is counted).
        window_stride: overlap in text tokens between consecutive windows (must be smaller than the text room of a
            window; a record where it is not raises naming ``window_stride``).

    A text that does not fit in one window while instruction + schema leave fewer than
    ``window_stride + max_length // 8`` text tokens per window is encoded with the schema split into label groups
    (an event type stays with its roles, a relation with its qualifiers): each group is one extra pass over the
    text, exactly as if the record held that group alone, and decoding merges the passes like windows (set union).
    ``FeatureMeta.schema_group`` / ``EncodingReport.schema_passes`` say so. Per-call ``overflow`` / ``window_stride``
    never change the processor: calls may run concurrently from several threads.
        special_tokens: tag strings (see ``DEFAULT_SPECIAL_TOKENS``).
        threshold: default decoding threshold on ``sigmoid(logits)``.
        max_parts: longest chain the decoder searches (discontinuous entities).
        max_links_per_row: NNW top-k per row at decoding.
        decode_budget: search steps per record; bounds decoding time on any scores.
        image_config: timm data config for images (``input_size``, ``mean``, ``std``, ``interpolation``,
            ``crop_pct``, ``crop_mode``), usually ``timm.data.resolve_data_config(model=vit)``; None = text only.
    """

    tokenizer_class = "AutoTokenizer"

    def __init__(
        self,
        tokenizer: Any = None,
        max_length: int = 512,
        overflow: str = "window",
        window_stride: int = 128,
        special_tokens: dict[str, str] | None = None,
        threshold: float = 0.5,
        max_parts: int = 8,
        max_links_per_row: int = 16,
        decode_budget: int = 20000,
        image_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if tokenizer is None:
            raise ValueError("LDNetProcessor needs a tokenizer")
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("LDNetProcessor needs a fast tokenizer (character offsets)")
        # [CLS] + one label tag + the text tag + one text token + [SEP]
        self.max_length = check_int(max_length, "max_length", 5)
        self.overflow = check_overflow(overflow)
        self.window_stride = check_int(window_stride, "window_stride", 0)
        self.special_tokens = {**DEFAULT_SPECIAL_TOKENS, **(special_tokens or {})}
        self.threshold = check_threshold(threshold)
        self.max_parts = check_int(max_parts, "max_parts", 2)
        self.max_links_per_row = check_int(max_links_per_row, "max_links_per_row", 1)
        self.decode_budget = check_int(decode_budget, "decode_budget", 1)
        self.image_config = dict(image_config) if image_config else None
        missing = [t for t in self.special_tokens.values() if t not in tokenizer.get_vocab()]
        if missing:
            tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
        super().__init__(tokenizer, **kwargs)
        self._tag_ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in self.special_tokens.items()}
        self._piece_cache: dict[str, list[int]] = {}
        self._transform = None
        self.report = EncodingReport()

    # -- tokenization helpers ------------------------------------------------------------------------------
    def _pieces(self, strings: Sequence[str]) -> list[list[int]]:
        # read through a local dict: another thread may swap the cache while we look up
        cache = self._piece_cache
        found = {s: cache.get(s) for s in dict.fromkeys(strings)}
        todo = [s for s, ids in found.items() if ids is None]
        if todo:
            with _TOKENIZER_LOCK:
                out = self.tokenizer(todo, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            found.update(zip(todo, out))
            if len(cache) > 50000:
                self._piece_cache = cache = {}
            cache.update(zip(todo, out))
        return [found[s] for s in strings]

    def _tokenize_text(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        with _TOKENIZER_LOCK:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True)
        return enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]

    # -- encoding ------------------------------------------------------------------------------------------
    def _prefix(self, rec: dict) -> tuple[list[int], dict[int, LabelInfo], dict[tuple[str, str], int], dict]:
        schema = rec["schema"]
        labels: list[tuple[str, str, str]] = []  # (ns, task, string) in SPEC §2 order
        labels += [("lc", "cls", x) for x in schema.get("cls", [])]
        labels += [("lm", "ent", x) for x in schema.get("ent", [])]
        labels += [("lm", "discontinuous_ent", x) for x in schema.get("discontinuous_ent", [])]
        labels += [("lr", "rel", x) for x in schema.get("rel", [])]
        for r, quals in schema.get("hyper_rel", {}).items():
            labels.append(("lr", "hyper_rel", r))
            labels += [("lr", "hyper_rel", q) for q in quals]
        for etype, roles in schema.get("event", {}).items():
            labels.append(("lm", "event", etype))
            labels += [("lr", "event", r) for r in roles]
        strings = [rec["instruction"]] + [x[2] for x in labels]
        pieces = self._pieces(strings)
        ids = [self.tokenizer.cls_token_id]
        if rec["instruction"]:
            ids += [self._tag_ids["instruction"]] + pieces[0]
        tags: dict[int, LabelInfo] = {}
        label_map: dict[tuple[str, str], int] = {}
        positions: dict[str, dict[str, int]] = {}
        for (ns, task, string), piece in zip(labels, pieces[1:]):
            if (ns, string) in label_map:
                continue
            label_map[(ns, string)] = len(ids)
            tags[len(ids)] = LabelInfo(ns, task, string)
            positions.setdefault(task, {})[string] = len(ids)
            ids += [self._tag_ids[_TAG_OF_NS[ns]]] + piece
        return ids, tags, label_map, positions

    def _gold_items(
        self, rec: dict, label_map: dict, tags: dict[int, LabelInfo], starts: list[int], ends: list[int]
    ) -> list[GoldItem]:
        """One :class:`GoldItem` per unit of ``rec["ans"]`` (:func:`answers_ldnet.ans_units`, the units the metric
        compares), with its chain (SPEC §3.1)."""
        items: list[GoldItem] = []
        for key in ans_units(rec["ans"]):
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
                if len(key[2]) + 1 > self.max_parts:
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

    def _windows(
        self, rid: Any, n_text: int, budget: int, overflow: str | None = None, window_stride: int | None = None
    ) -> list[tuple[int, int]]:
        overflow = self.overflow if overflow is None else overflow
        stride = self.window_stride if window_stride is None else window_stride
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
                f"instruction + schema (+ bg) at max_length={self.max_length}; use a smaller window_stride",
            )
        step = budget - stride
        wins, start = [], 0
        while True:
            wins.append((start, min(start + budget, n_text)))
            if start + budget >= n_text:
                return wins
            start += step

    def _fit_suffix(self, suffix: list[int], prefix_len: int, min_text: int) -> list[int]:
        """``[B] bg [SEP]`` shortened so that ``min_text`` text tokens fit (bg yields its room to the text)."""
        if prefix_len + len(suffix) + min_text <= self.max_length:
            return suffix
        keep = self.max_length - prefix_len - min_text - 2
        return (suffix[: max(keep, 0) + 1] if keep > 0 else []) + [self.tokenizer.sep_token_id]

    # -- large schemas: label groups -----------------------------------------------------------------------
    @staticmethod
    def _schema_units(schema: dict) -> list[tuple[list[tuple[str, str]], list[tuple[str, str, str]]]]:
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

    @staticmethod
    def _pack(sizes: list[int], cap: int) -> list[list[int]]:
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

    def _schema_groups(self, rec: dict, n_text: int, stride: int, overflow: str = "window") -> list[dict] | None:
        """Split ``rec`` into one sub-record per label group when instruction + schema leave too little room for
        the text (see the class docstring); ``None`` when the record is encoded whole (the usual case)."""
        units = self._schema_units(rec["schema"])
        if len(units) < 2:
            return None
        min_text = min(n_text, MIN_TEXT_TOKENS)
        min_step = max(1, self.max_length // MIN_WINDOW_STEP_FRACTION)
        instr, bg = rec["instruction"], rec["bg"]
        base = 1 + (1 + len(self._pieces([instr])[0]) if instr else 0) + (1 if n_text else 0)
        suffix_len = (1 + len(self._pieces([bg])[0]) if bg else 0) + 1
        label_len: dict[tuple[str, str], int] = {}
        for _, labels in units:
            for ns, _, string in labels:
                label_len.setdefault((ns, string), 0)
        for (ns, string), piece in zip(label_len, self._pieces([k[1] for k in label_len])):
            label_len[(ns, string)] = 1 + len(piece)
        full = base + sum(label_len.values())  # == len(prefix) of the whole schema (one tag per (ns, string))
        hard = full + 1 + min_text > self.max_length
        if not hard:
            budget = self.max_length - full - len(self._fit_suffix([0] * suffix_len, full, min_text))
            if n_text <= budget or budget - stride >= min_step:
                return None
        cap_soft = self.max_length - base - suffix_len - stride - min_step
        cap_hard = self.max_length - base - 1 - min_text
        if cap_soft <= 0 and not hard:
            return None  # the room is taken by instruction / bg / stride, not by labels: splitting cannot help
        cap = min(cap_soft, cap_hard) if cap_soft > 0 else cap_hard
        if cap <= 0:
            return None  # the instruction alone leaves no room: the encoding error says so
        sizes = [sum(label_len[k] for k in dict.fromkeys((ns, s) for ns, _, s in labels)) for _, labels in units]
        g_min = len(self._pack(sizes, cap))
        if g_min < 2:
            return None

        def balanced(n_groups: int) -> list[list[int]]:
            # the smallest capacity giving at most n_groups groups: every pass has about the same text room
            lo, hi = -(-sum(sizes) // n_groups), cap
            while lo < hi:
                mid = (lo + hi) // 2
                if len(self._pack(sizes, mid)) <= n_groups:
                    hi = mid
                else:
                    lo = mid + 1
            return self._pack(sizes, max(hi, 1))

        def cost(groups: list[list[int]]) -> int:  # forward passes (features): each is one padded window
            total = 0
            for group in groups:
                p_len = base + sum(sizes[u] for u in group)
                budget = self.max_length - p_len - len(self._fit_suffix([0] * suffix_len, p_len, min_text))
                total += 1 if n_text <= budget else 1 + -(-(n_text - budget) // max(budget - stride, 1))
            return total

        # more, smaller groups mean more passes but longer windows (fewer of them): with windows, take the
        # cheapest count in [g_min, 2 g_min + 2] (the optimum lies near one group's labels ~ one window's step)
        candidates = range(g_min, min(len(units), 2 * g_min + 2) + 1) if overflow == "window" else [g_min]
        groups = min((balanced(k) for k in candidates), key=lambda gs: (cost(gs), len(gs)))
        schema, ans = rec["schema"], rec["ans"]
        out = []
        for group in groups:
            keys = {k for u in group for k in units[u][0]}
            sub_schema: dict[str, Any] = {}
            for f in ("cls", "ent", "discontinuous_ent", "rel"):
                kept = [x for x in schema.get(f, []) if (f, x) in keys]
                if kept:
                    sub_schema[f] = kept
            for f in ("hyper_rel", "event"):
                kept_d = {k: v for k, v in schema.get(f, {}).items() if (f, k) in keys}
                if kept_d:
                    sub_schema[f] = kept_d
            label_field = {"cls": None, "ent": "type", "discontinuous_ent": "type", "rel": "relation",
                           "hyper_rel": "relation", "event": "event_type"}
            sub_ans: dict[str, list] = {}
            for f, items in ans.items():
                if f == "span":
                    continue  # extractive QA has no labels, hence never a split schema
                lf = label_field[f]
                kept_a = [x for x in items if (f, x if lf is None else x[lf]) in keys]
                if kept_a:
                    sub_ans[f] = kept_a
            out.append({**rec, "schema": sub_schema, "ans": sub_ans})
        return out

    def encode_record(
        self,
        record: dict,
        index: int = 0,
        validate: bool = True,
        *,
        overflow: str | None = None,
        window_stride: int | None = None,
        report: EncodingReport | None = None,
    ) -> tuple[list[dict], list[GoldItem]]:
        """Encode one record into one feature per window (per label group when the schema is split); returns the
        features and the record's gold items.

        ``overflow`` / ``window_stride`` override the processor's for this record only. Counts go to ``report``
        when given, else to the cumulative ``self.report``.
        """
        overflow = self.overflow if overflow is None else check_overflow(overflow)
        stride = self.window_stride if window_stride is None else check_int(window_stride, "window_stride", 0)
        rec = validate_record(record) if validate else normalize_record(record)
        rep = EncodingReport() if report is None else report
        text_ids, offsets = self._tokenize_text(rec["text"]) if rec["text"] else ([], [])
        passes = self._schema_groups(rec, len(text_ids), stride, overflow) or [rec]
        feats: list[dict] = []
        gold: list[GoldItem] = []
        windowed = False
        for g, sub in enumerate(passes):
            f, gl = self._encode_pass(sub, index, text_ids, offsets, overflow, stride, rep, g, len(passes))
            windowed |= len(f) > 1
            feats.extend(f)
            gold.extend(gl)
        rep.records += 1
        rep.features += len(feats)
        rep.windowed_records += windowed
        rep.schema_passes += len(passes)
        rep.split_records += len(passes) > 1
        for g in gold:
            rep.items += 1
            if g.status == "ok":
                rep.encoded += 1
            else:
                rep.unencodable[g.status] += 1
            rep.misaligned += g.misaligned
            rep.label_collisions += g.label_collision
        if report is None:
            self._merge_report(rep)
        return feats, gold

    def _encode_pass(
        self,
        rec: dict,
        index: int,
        text_ids: list[int],
        offsets: list[tuple[int, int]],
        overflow: str,
        stride: int,
        report: EncodingReport,
        group: int = 0,
        n_groups: int = 1,
    ) -> tuple[list[dict], list[GoldItem]]:
        """One pass over the text with ``rec``'s (possibly partial) schema: one feature per window."""
        rid = rec["id"]
        prefix, tags, label_map, positions = self._prefix(rec)
        text, bg = rec["text"], rec["bg"]
        plain = not tags
        if text_ids:
            prefix = prefix + [self._tag_ids["text_plain" if plain else "text"]]
        text_offset = len(prefix)
        suffix = ([self._tag_ids["background"]] + self._pieces([bg])[0] if bg else []) + [self.tokenizer.sep_token_id]
        min_text = min(len(text_ids), MIN_TEXT_TOKENS)
        if len(prefix) + 1 + min_text > self.max_length:
            what = "instruction + schema" if n_groups == 1 else (
                f"instruction + schema label group {group + 1}/{n_groups} ({sorted(rec['schema'])})"
            )
            n_instr = 1 + len(self._pieces([rec["instruction"]])[0]) if rec["instruction"] else 0
            raise RecordError(
                rid,
                "schema",
                f"{what} take {len(prefix)} tokens (the instruction {n_instr}); max_length={self.max_length} "
                "leaves no room for text",
            )
        fitted = self._fit_suffix(suffix, len(prefix), min_text)
        if fitted is not suffix:
            report.truncated_bg += 1
        suffix = fitted
        budget = self.max_length - len(prefix) - len(suffix)
        windows = self._windows(rid, len(text_ids), budget, overflow, stride) if text_ids else [(0, 0)]
        starts = [o[0] for o in offsets]
        ends = [o[1] for o in offsets]
        gold = self._gold_items(rec, label_map, tags, starts, ends)
        placed = [False] * len(gold)
        feats = []
        for ws, we in windows:
            links: set[tuple[int, int, int]] = set()
            ld = [0.0] * (text_offset + (we - ws) + len(suffix))
            for gi, g in enumerate(gold):
                if g.status != "ok":
                    continue
                text_idx = [i for kind, p in g.chain if kind == "text" for i in p]
                if any(not ws <= i < we for i in text_idx):
                    continue
                chain: Chain = tuple(p if kind == "tag" else tuple(text_offset + i - ws for i in p) for kind, p in g.chain)
                links.update(chain_links(chain))
                for part, (kind, _) in zip(chain, g.chain):
                    for i in range(part[0], part[-1] + 1) if kind == "text" else part:
                        ld[i] = 1.0
                placed[gi] = True
            ids = prefix + text_ids[ws:we] + suffix
            feats.append(
                {
                    "input_ids": ids,
                    "attention_mask": [1] * len(ids),
                    "span_graph_links": sorted(links),
                    "label_drop_targets": ld,
                    "meta": FeatureMeta(
                        record_index=index,
                        record_id=rid,
                        length=len(ids),
                        text=text,
                        text_offset=text_offset,
                        window=(ws, we),
                        token_offsets=offsets,
                        tags=tags,
                        schema=rec["schema"],
                        plain_text_mode=plain,
                        label_positions=positions,
                        schema_group=group,
                        schema_groups=n_groups,
                    ),
                }
            )
        for gi, g in enumerate(gold):
            if g.status == "ok" and not placed[gi]:
                g.status = "truncated"
        return feats, gold

    def __call__(
        self,
        records: dict | Sequence[dict] | None = None,
        *,
        text: str | Sequence[str] | None = None,
        schema: dict | None = None,
        instruction: str | None = None,
        bg: str = "",
        images: Any = None,
        return_tensors: str | None = None,
        validate: bool = True,
        return_gold: bool = False,
        overflow: str | None = None,
        window_stride: int | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Encode records (or ``text`` + ``schema`` + ``instruction``).

        ``overflow`` / ``window_stride`` override the processor's settings for this call only (nothing shared is
        changed, so concurrent calls with different settings are safe). The call's own ``encoding_report`` is
        returned with the encoding (and also added to the cumulative ``processor.report``).

        Returns a ``BatchFeature`` with ``input_ids``, ``attention_mask``, ``span_graph_links`` (``[n, 4]``:
        feature, channel, i, j), ``label_drop_targets``, ``overflow_to_sample_mapping`` and — kept as python
        objects — ``meta`` (one :class:`FeatureMeta` per feature) and ``encoding_report``. With
        ``return_tensors="pt"`` sequences are right-padded; otherwise per-feature lists are returned (for
        ``datasets.map`` + a padding collator). Images (``pixel_values``/``image_mask``) are added when the records
        carry ``image`` or ``images`` is given and the processor has an ``image_config``.
        """
        if overflow is not None:
            check_overflow(overflow)
        if window_stride is not None:
            window_stride = check_int(window_stride, "window_stride", 0)
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
            records = [
                {"id": i, "instruction": instruction or "", "schema": schema or {}, "text": t, "bg": bg, "ans": {}}
                for i, t in enumerate(texts)
            ]
        elif isinstance(records, dict):
            records = [records]
        elif isinstance(records, (str, bytes, bytearray)):
            raise TypeError("LDNetProcessor: `records` must be a dict or a list of dicts; pass a text as `text=`")
        report = EncodingReport()
        feats, golds = [], []
        for i, rec in enumerate(records):
            f, g = self.encode_record(
                rec, i, validate=validate, overflow=overflow, window_stride=window_stride, report=report
            )
            feats.extend(f)
            golds.append(g)
        self._merge_report(report)
        if report.unencodable:
            logger.warning("LDNetProcessor: %s", report)
        data: dict[str, Any] = {
            "input_ids": [f["input_ids"] for f in feats],
            "attention_mask": [f["attention_mask"] for f in feats],
            "span_graph_links": [f["span_graph_links"] for f in feats],
            "label_drop_targets": [f["label_drop_targets"] for f in feats],
            "overflow_to_sample_mapping": [f["meta"].record_index for f in feats],
        }
        imgs = self._images(records, images)
        if return_tensors == "pt":
            data = self.pad(data)
            if imgs is not None:
                pix, mask = imgs
                idx = torch.tensor(data["overflow_to_sample_mapping"].tolist())
                data["pixel_values"], data["image_mask"] = pix[idx], mask[idx]
        elif return_tensors is not None:
            raise ValueError("LDNetProcessor supports return_tensors='pt' or None")
        elif imgs is not None:
            data["pixel_values"] = [imgs[0][m] for m in data["overflow_to_sample_mapping"]]
            data["image_mask"] = [bool(imgs[1][m]) for m in data["overflow_to_sample_mapping"]]
        data["meta"] = [f["meta"] for f in feats]
        data["encoding_report"] = report
        if return_gold:
            data["gold_items"] = golds
        return BatchFeature(data=data, tensor_type=None)

    def _merge_report(self, r: EncodingReport) -> None:
        with _REPORT_LOCK:
            self.report.merge(r)

    def pad(self, data: dict[str, Any]) -> dict[str, Any]:
        """Right-pad per-feature lists into tensors; sparse links become ``[n, 4]`` with the feature index first."""
        n = len(data["input_ids"])
        length = max((len(x) for x in data["input_ids"]), default=0)
        pad_id = self.tokenizer.pad_token_id or 0
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

    # -- images --------------------------------------------------------------------------------------------
    @staticmethod
    def _no_image(img: Any) -> bool:
        """``None`` or ``""`` (never compares arrays/tensors elementwise)."""
        return img is None or (isinstance(img, (str, bytes)) and len(img) == 0)

    def _images(self, records: Sequence[dict], images: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
        paths = [r.get("image") if isinstance(r, dict) else None for r in records]
        if images is None and all(self._no_image(p) for p in paths):
            return None
        if self.image_config is None:
            raise ValueError("records carry images but the processor has no image_config (text-only processor)")
        if images is not None and not isinstance(images, (list, tuple)):
            images = [images]
        if images is not None and len(images) != len(records):
            raise ValueError(f"got {len(images)} images for {len(records)} records")
        import os

        try:  # inside try: the remote-code import check then does not demand these from text-only checkpoints
            from PIL import Image
            from timm.data import create_transform
        except ImportError as exc:  # pragma: no cover - both are dependencies of the package
            raise ImportError("LDNetProcessor images need `pillow` and `timm`") from exc

        if self._transform is None:
            self._transform = create_transform(**self.image_config, is_training=False)
        size = tuple(self.image_config["input_size"])
        pix = torch.zeros((len(records), *size))
        mask = torch.zeros(len(records), dtype=torch.bool)
        for i, rec in enumerate(records):
            img = images[i] if images is not None else paths[i]
            if self._no_image(img):
                continue
            if isinstance(img, (str, bytes)) or hasattr(img, "__fspath__"):
                if not os.path.isfile(img):
                    rid = rec.get("id") if isinstance(rec, dict) else i
                    raise RecordError(rid, "image", f"image file not found: {os.fsdecode(img)}")
                with Image.open(img) as opened:
                    img = opened.convert("RGB")
            elif isinstance(img, np.ndarray):
                img = Image.fromarray(img)
            elif isinstance(img, torch.Tensor):
                if tuple(img.shape) != size:
                    rid = rec.get("id") if isinstance(rec, dict) else i
                    raise RecordError(rid, "image", f"pixel tensor of shape {tuple(img.shape)}, expected {size}")
                pix[i], mask[i] = img, True
                continue
            pix[i] = self._transform(img.convert("RGB"))
            mask[i] = True
        return pix, mask

    # -- decoding: answers_ldnet --------------------------------------------------------------------------
    def post_process_extraction(
        self,
        logits: torch.Tensor,
        encoding: dict,
        threshold: float | None = None,
        return_scores: bool = False,
    ) -> list[dict]:
        """Decode ``[B, 3, L, L]`` logits (as the model returns them) into one unified ``ans`` dict per record.

        See :func:`answers_ldnet.decode_extraction`: windows (and schema passes) of one record are merged, spans
        are character offsets into the record's ``text``, ``return_scores`` adds each item's ``score`` (smallest
        link probability of its chain). A record whose search ran out of ``decode_budget`` carries
        ``"decode_truncated": True``, and the call logs one warning.
        """
        answers, report = decode_extraction(
            logits,
            encoding["meta"],
            self.threshold if threshold is None else threshold,
            max_parts=self.max_parts,
            max_links_per_row=self.max_links_per_row,
            budget=self.decode_budget,
            return_scores=return_scores,
        )
        # windows cut in the last call (the trainer's eval counter); the per-record flag is the thread-safe signal
        self.last_decode_budget_exhausted = report.windows_cut
        return answers
