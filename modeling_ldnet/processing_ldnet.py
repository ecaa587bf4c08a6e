"""LDNetProcessor: unified records -> model inputs + sparse gold span graph; scores -> unified answers.

Sequence layout (SPEC §2): ``[CLS] ([I] instruction) (TAG label)* ([TL]|[TP] text) ([B] bg) [SEP]``.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import AddedToken, ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature

from .configuration_ldnet import DEFAULT_SPECIAL_TOKENS
from .schema import RecordError, normalize_record, validate_record
from .span_graph import (
    Chain,
    LabelInfo,
    chain_links,
    decode_chains,
    interpret_chains,
    threshold_logits,
)

logger = logging.getLogger(__name__)

_TAG_OF_NS = {"lc": "cls_label", "lm": "mention_label", "lr": "relation_label"}
#: Reasons a gold item is not encoded (counted in :class:`EncodingReport`, never silently dropped).
UNENCODABLE_REASONS = ("truncated", "no_token", "too_many_parts")


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

    def __str__(self) -> str:
        bad = ", ".join(f"{k}={v}" for k, v in sorted(self.unencodable.items())) or "none"
        return (
            f"{self.records} records -> {self.features} features; gold items {self.items}, encoded {self.encoded}, "
            f"unencodable: {bad}; snapped to token boundaries: {self.misaligned}; "
            f"label-namespace collisions: {self.label_collisions}; windowed records: {self.windowed_records}"
        )


def _span(item: dict) -> tuple[int, int]:
    return int(item["span"][0]), int(item["span"][1])


class LDNetProcessor(ProcessorMixin):
    r"""Turns unified records (SPEC §1) into LDNet inputs and decodes LDNet scores back into unified answers.

    Args:
        tokenizer: a fast tokenizer (offsets needed). The 7 tag tokens are added when missing; resize the model's
            embeddings to ``len(processor.tokenizer)`` afterwards (``LDNetModel.from_encoder(..., tokenizer=)``).
        max_length: longest sequence (tokens, ``[CLS]``/``[SEP]`` included).
        overflow: ``"window"`` (split long texts into overlapping windows, merged back at decoding), ``"error"``
            (raise naming the record id) or ``"truncate"`` (keep the first window; lost gold is counted).
        window_stride: overlap in text tokens between consecutive windows.
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
        if overflow not in ("window", "error", "truncate"):
            raise ValueError(f"overflow must be 'window', 'error' or 'truncate', got {overflow!r}")
        self.max_length = int(max_length)
        self.overflow = overflow
        self.window_stride = int(window_stride)
        self.special_tokens = {**DEFAULT_SPECIAL_TOKENS, **(special_tokens or {})}
        self.threshold = float(threshold)
        self.max_parts = int(max_parts)
        self.max_links_per_row = int(max_links_per_row)
        self.decode_budget = int(decode_budget)
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
        todo = [s for s in dict.fromkeys(strings) if s not in self._piece_cache]
        if todo:
            out = self.tokenizer(todo, add_special_tokens=False, split_special_tokens=True)["input_ids"]
            if len(self._piece_cache) > 50000:
                self._piece_cache.clear()
            self._piece_cache.update(zip(todo, out))
        return [self._piece_cache[s] for s in strings]

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
        ans = rec["ans"]
        items: dict[tuple, GoldItem] = {}

        def text_part(s: int, e: int, item: GoldItem) -> tuple[str, tuple[int, ...]] | None:
            ts = bisect.bisect_right(ends, s)  # first token ending after s
            te = bisect.bisect_left(starts, e) - 1  # last token starting before e
            if ts >= len(ends) or te < ts:
                item.status = "no_token"
                return None
            if starts[ts] != s or ends[te] != e:
                item.misaligned = True
            return ("text", (ts,) if ts == te else (ts, te))

        def tag_part(ns: str, task: str, label: str, item: GoldItem) -> tuple[str, tuple[int, ...]]:
            idx = label_map[(ns, label)]
            if tags[idx].task != task:
                item.label_collision = True
            return ("tag", (idx,))

        def add(key: tuple, build) -> None:
            if key in items:
                return
            item = GoldItem(key=key, chain=[])
            chain = build(item)
            if item.status == "ok" and any(p is None for p in chain):
                item.status = "no_token"
            if item.status == "ok":
                item.chain = chain
            items[key] = item

        for c in ans.get("cls", []):
            add(("cls", c), lambda it, c=c: [tag_part("lc", "cls", c, it)])
        for x in ans.get("ent", []):
            s = _span(x)
            add(("ent", x["type"], s), lambda it, x=x, s=s: [tag_part("lm", "ent", x["type"], it), text_part(*s, it)])
        for x in ans.get("discontinuous_ent", []):
            spans = tuple((int(a), int(b)) for a, b in x["span"])

            def build_disc(it, x=x, spans=spans):
                if len(spans) + 1 > self.max_parts:
                    it.status = "too_many_parts"
                    return []
                return [tag_part("lm", "discontinuous_ent", x["type"], it)] + [text_part(*sp, it) for sp in spans]

            add(("discontinuous_ent", x["type"], spans), build_disc)
        for x in ans.get("rel", []):
            h, t = _span(x["head"]), _span(x["tail"])
            add(
                ("rel", x["relation"], h, t),
                lambda it, x=x, h=h, t=t: [tag_part("lr", "rel", x["relation"], it), text_part(*h, it), text_part(*t, it)],
            )
        for x in ans.get("hyper_rel", []):
            h, t, r = _span(x["head"]), _span(x["tail"]), x["relation"]

            def base(it, r=r, h=h, t=t):
                return [tag_part("lr", "hyper_rel", r, it), text_part(*h, it), text_part(*t, it)]

            quals = x.get("qualifiers") or []
            if not quals:
                add(("hyper_rel", r, h, t, None, None), base)
            for q in quals:
                qs = _span(q)
                add(
                    ("hyper_rel", r, h, t, q["label"], qs),
                    lambda it, q=q, qs=qs, base=base: base(it)
                    + [tag_part("lr", "hyper_rel", q["label"], it), text_part(*qs, it)],
                )
        for x in ans.get("event", []):
            et, trig = x["event_type"], _span(x["trigger"])
            add(
                ("event_trigger", et, trig),
                lambda it, et=et, trig=trig: [tag_part("lm", "event", et, it), text_part(*trig, it)],
            )
            for a in x.get("args") or []:
                sp = _span(a)
                add(
                    ("event_arg", et, trig, a["role"], sp),
                    lambda it, a=a, trig=trig, sp=sp: [
                        tag_part("lr", "event", a["role"], it),
                        text_part(*trig, it),
                        text_part(*sp, it),
                    ],
                )
        for x in ans.get("span", []):
            s = _span(x)
            add(("span", s), lambda it, s=s: [text_part(*s, it)])
        return list(items.values())

    def _windows(self, rid: Any, n_text: int, budget: int) -> list[tuple[int, int]]:
        if n_text <= budget:
            return [(0, n_text)]
        if self.overflow == "error":
            raise RecordError(rid, "text", f"{n_text} text tokens exceed the {budget} that fit in max_length")
        if self.overflow == "truncate":
            return [(0, budget)]
        step = max(1, budget - self.window_stride)
        wins, start = [], 0
        while True:
            wins.append((start, min(start + budget, n_text)))
            if start + budget >= n_text:
                return wins
            start += step

    def encode_record(self, record: dict, index: int = 0, validate: bool = True) -> tuple[list[dict], list[GoldItem]]:
        """Encode one record into one feature per window; returns the features and the record's gold items."""
        rec = validate_record(record) if validate else normalize_record(record)
        rid = rec["id"]
        prefix, tags, label_map, positions = self._prefix(rec)
        text, bg = rec["text"], rec["bg"]
        plain = not tags
        if text:
            enc = self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True
            )
            text_ids, offsets = enc["input_ids"], [tuple(o) for o in enc["offset_mapping"]]
            prefix = prefix + [self._tag_ids["text_plain" if plain else "text"]]
        else:
            text_ids, offsets = [], []
        text_offset = len(prefix)
        suffix = ([self._tag_ids["background"]] + self._pieces([bg])[0] if bg else []) + [self.tokenizer.sep_token_id]
        min_text = min(len(text_ids), 8)
        if len(prefix) + 1 + min_text > self.max_length:
            raise RecordError(
                rid,
                "schema",
                f"instruction + schema take {len(prefix)} tokens; max_length={self.max_length} leaves no room for text",
            )
        if len(prefix) + len(suffix) + min_text > self.max_length:  # bg yields its room to the text
            keep = self.max_length - len(prefix) - min_text - 2
            suffix = (suffix[: max(keep, 0) + 1] if keep > 0 else []) + [self.tokenizer.sep_token_id]
            self.report.truncated_bg += 1
        budget = self.max_length - len(prefix) - len(suffix)
        windows = self._windows(rid, len(text_ids), budget) if text_ids else [(0, 0)]
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
                    ),
                }
            )
        for gi, g in enumerate(gold):
            if g.status == "ok" and not placed[gi]:
                g.status = "truncated"
        r = self.report
        r.records += 1
        r.features += len(feats)
        r.windowed_records += len(feats) > 1
        for g in gold:
            r.items += 1
            if g.status == "ok":
                r.encoded += 1
            else:
                r.unencodable[g.status] += 1
            r.misaligned += g.misaligned
            r.label_collisions += g.label_collision
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
        **kwargs: Any,
    ) -> BatchFeature:
        """Encode records (or ``text`` + ``schema`` + ``instruction``).

        Returns a ``BatchFeature`` with ``input_ids``, ``attention_mask``, ``span_graph_links`` (``[n, 4]``:
        feature, channel, i, j), ``label_drop_targets``, ``overflow_to_sample_mapping`` and — kept as python
        objects — ``meta`` (one :class:`FeatureMeta` per feature) and ``encoding_report``. With
        ``return_tensors="pt"`` sequences are right-padded; otherwise per-feature lists are returned (for
        ``datasets.map`` + a padding collator). Images (``pixel_values``/``image_mask``) are added when the records
        carry ``image`` or ``images`` is given and the processor has an ``image_config``.
        """
        if records is None:
            if text is None:
                raise ValueError("LDNetProcessor: pass `records` or `text` (+ `schema`)")
            texts = [text] if isinstance(text, str) else list(text)
            records = [
                {"id": i, "instruction": instruction or "", "schema": schema or {}, "text": t, "bg": bg, "ans": {}}
                for i, t in enumerate(texts)
            ]
        elif isinstance(records, dict):
            records = [records]
        before = self.report
        self.report = EncodingReport()
        feats, golds = [], []
        for i, rec in enumerate(records):
            f, g = self.encode_record(rec, i, validate=validate)
            feats.extend(f)
            golds.append(g)
        report, self.report = self.report, before
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
        t = self.report
        for name in ("records", "features", "items", "encoded", "misaligned", "label_collisions", "windowed_records"):
            setattr(t, name, getattr(t, name) + getattr(r, name))
        t.truncated_bg += r.truncated_bg
        t.unencodable.update(r.unencodable)

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

    # -- decoding ------------------------------------------------------------------------------------------
    def post_process_extraction(
        self,
        logits: torch.Tensor,
        encoding: dict,
        threshold: float | None = None,
        return_scores: bool = False,
    ) -> list[dict]:
        """Decode ``[B, 3, L, L]`` logits (as the model returns them) into one unified ``ans`` dict per record.

        Windows of one record are merged (set union). Spans are character offsets into the record's ``text``.
        With ``return_scores`` every item carries ``score``: the smallest link probability of its chain.
        """
        metas: list[FeatureMeta] = encoding["meta"]
        if logits.shape[0] != len(metas):
            raise ValueError(f"logits batch {logits.shape[0]} != {len(metas)} encoded features")
        thr = self.threshold if threshold is None else float(threshold)
        lengths = [m.length for m in metas]
        y = threshold_logits(logits, lengths, thr, self.max_links_per_row)
        n_records = max((m.record_index for m in metas), default=-1) + 1
        merged: list[dict[tuple, float]] = [{} for _ in range(n_records)]
        records_meta: dict[int, FeatureMeta] = {}
        self.last_decode_budget_exhausted = 0
        for b, meta in enumerate(metas):
            n = meta.length
            probs = torch.sigmoid(logits[b, :, :n, :n].detach().float()).cpu().numpy()
            lo = meta.text_offset
            hi = lo + meta.window[1] - meta.window[0]
            res = decode_chains(
                y[b, :, :n, :n], probs[0], meta.tags, (lo, hi), meta.plain_text_mode, self.max_parts, self.decode_budget
            )
            self.last_decode_budget_exhausted += res.budget_exhausted
            records_meta.setdefault(meta.record_index, meta)
            chain_score = {
                chain: float(min(probs[c, i, j] for c, i, j in chain_links(chain))) for chain in res.chains
            }
            for chain, score in chain_score.items():
                for item in interpret_chains([chain], meta.tags, meta.schema, meta.plain_text_mode):
                    if item[0] == "event":
                        continue
                    key = self._char_item(item, meta)
                    merged[meta.record_index][key] = max(score, merged[meta.record_index].get(key, 0.0))
            # events need all chains of the window together (triggers + arguments); the event's score is the
            # smallest link probability over its trigger chain and its argument chains
            tag_of = {(info.ns, info.string): idx for idx, info in meta.tags.items()}
            for item in interpret_chains(res.chains, meta.tags, meta.schema, meta.plain_text_mode):
                if item[0] == "event":
                    _, etype, trig, args = item
                    parts = [((tag_of[("lm", etype)],), trig)]
                    parts += [((tag_of[("lr", role)],), trig, arg) for role, arg in args]
                    score = min(chain_score.get(ch, 1.0) for ch in parts)
                    key = self._char_item(item, meta)
                    merged[meta.record_index][key] = max(score, merged[meta.record_index].get(key, 0.0))
        return [
            self._to_ans(merged[r], records_meta[r].text if r in records_meta else "", return_scores)
            for r in range(n_records)
        ]

    @staticmethod
    def _char_span(part: tuple[int, ...], meta: FeatureMeta) -> tuple[int, int]:
        base = meta.window[0] - meta.text_offset
        return meta.token_offsets[part[0] + base][0], meta.token_offsets[part[-1] + base][1]

    def _char_item(self, item: tuple, meta: FeatureMeta) -> tuple:
        cs = lambda p: self._char_span(p, meta)  # noqa: E731
        kind = item[0]
        if kind == "cls":
            return item
        if kind == "ent":
            return ("ent", item[1], cs(item[2]))
        if kind == "discontinuous_ent":
            return ("discontinuous_ent", item[1], tuple(cs(p) for p in item[2]))
        if kind == "rel":
            return ("rel", item[1], cs(item[2]), cs(item[3]))
        if kind == "hyper_rel":
            return ("hyper_rel", item[1], cs(item[2]), cs(item[3]), item[4], cs(item[5]) if item[5] else None)
        if kind == "event":
            return ("event", item[1], cs(item[2]), tuple(sorted((r, cs(p)) for r, p in item[3])))
        if kind == "span":
            return ("span", cs(item[1]))
        raise ValueError(kind)

    @staticmethod
    def _to_ans(items: dict[tuple, float], text: str, return_scores: bool) -> dict:
        def sp(s: tuple[int, int]) -> dict:
            return {"text": text[s[0] : s[1]], "span": [s[0], s[1]]}

        def scored(d: dict, score: float) -> dict:
            if return_scores:
                d["score"] = round(score, 6)
            return d

        ans: dict[str, list] = {}
        events: dict[tuple, dict] = {}
        for key in sorted(items, key=repr):
            score = items[key]
            kind = key[0]
            if kind == "cls":
                ans.setdefault("cls", []).append(key[1])
            elif kind == "ent":
                ans.setdefault("ent", []).append(scored({"type": key[1], **sp(key[2])}, score))
            elif kind == "discontinuous_ent":
                d = {"type": key[1], "text": " ".join(text[a:b] for a, b in key[2]), "span": [list(s) for s in key[2]]}
                ans.setdefault("discontinuous_ent", []).append(scored(d, score))
            elif kind == "rel":
                d = {"relation": key[1], "head": sp(key[2]), "tail": sp(key[3])}
                ans.setdefault("rel", []).append(scored(d, score))
            elif kind == "hyper_rel":
                fact = ("hyper_rel", key[1], key[2], key[3])
                d = events.setdefault(
                    fact, {"relation": key[1], "head": sp(key[2]), "tail": sp(key[3]), "qualifiers": []}
                )
                if key[4] is not None:
                    d["qualifiers"].append({"label": key[4], **sp(key[5])})
                if return_scores:
                    d["score"] = max(d.get("score", 0.0), round(score, 6))
            elif kind == "event":
                ev = ("event", key[1], key[2])
                d = events.setdefault(ev, {"event_type": key[1], "trigger": sp(key[2]), "args": []})
                for role, s in key[3]:
                    arg = {"role": role, **sp(s)}
                    if arg not in d["args"]:
                        d["args"].append(arg)
                if return_scores:
                    d["score"] = max(d.get("score", 0.0), round(score, 6))
            elif kind == "span":
                ans.setdefault("span", []).append(scored(sp(key[1]), score))
        for key, d in events.items():
            ans.setdefault("hyper_rel" if key[0] == "hyper_rel" else "event", []).append(d)
        return ans
