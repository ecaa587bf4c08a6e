"""LDNetProcessor: unified records -> model inputs + sparse gold span graph; scores -> unified answers.

Sequence layout (SPEC §2): ``[CLS] ([I] instruction) (TAG label (: description)?)* ([TL]|[TP] text) ([B] bg) [SEP]``.
A label's description (``schema.normalize_record``'s ``descriptions``) follows its label tokens after a ``:``; it is
context only: the label's span-graph node stays its tag, and description tokens are never chain endpoints nor
label-drop targets (the decoder starts chains at tags and reads parts from the text segment only). Gold chains and
the report: ``encoding_ldnet``; label groups of large schemas: ``schema_groups_ldnet``; images:
``image_processing_ldnet``; decoding: ``answers_ldnet``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import torch
from transformers import AddedToken, ProcessorMixin
from transformers.feature_extraction_utils import BatchFeature

from .answers_ldnet import check_finite_logits, decode_extraction
from .configuration_ldnet import DEFAULT_SPECIAL_TOKENS
from .encoding_ldnet import (  # noqa: F401 - re-exported: FeatureMeta, EncodingReport, ... are imported from here
    MIN_TEXT_TOKENS,
    MIN_WINDOW_STEP_FRACTION,
    UNENCODABLE_REASONS,
    EncodingReport,
    FeatureMeta,
    GoldItem,
    as_records,
    check_tag_strings,
    description_ids,
    gold_items,
    pad_features,
    text_offsets,
    text_windows,
)
from .image_processing_ldnet import feature_images, image_transform, load_images
from .schema import RecordError, check_int, check_overflow, check_threshold, normalize_record, validate_record
from .schema_groups_ldnet import schema_groups
from .span_graph import Chain, LabelInfo, chain_links

logger = logging.getLogger(__name__)

_TAG_OF_NS = {"lc": "cls_label", "lm": "mention_label", "lr": "relation_label"}
# Process-wide locks: the Rust tokenizer may not be used while another thread flips its settings, and the
# cumulative ``processor.report`` is updated by merging one call's report (module level: processors are deep-copied
# and pickled, locks are not).
_TOKENIZER_LOCK = threading.RLock()
_REPORT_LOCK = threading.Lock()


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
        special_tokens: tag strings (see ``DEFAULT_SPECIAL_TOKENS``).
        threshold: default decoding threshold on ``sigmoid(logits)``.
        max_parts: longest chain the decoder searches (discontinuous entities).
        max_links_per_row: NNW top-k per row at decoding.
        decode_budget: search steps per record; bounds decoding time on any scores.
        image_config: timm data config for images (``input_size``, ``mean``, ``std``, ``interpolation``,
            ``crop_pct``, ``crop_mode``), usually ``timm.data.resolve_data_config(model=vit)``; None = text only.
        max_description_tokens: most tokens of one label description (``LDNetConfig.max_description_tokens``); a
            longer one is cut and counted (``EncodingReport.descriptions_cut``).

    A text that does not fit in one window while instruction + schema leave fewer than
    ``window_stride + max_length // 8`` text tokens per window is encoded with the schema split into label groups
    (``schema_groups_ldnet``): each group is one extra pass over the text, exactly as if the record held that group
    alone, and decoding merges the passes like windows (set union). ``FeatureMeta.schema_group`` /
    ``EncodingReport.schema_passes`` say so. Per-call ``overflow`` / ``window_stride`` never change the processor:
    calls may run concurrently from several threads.
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
        max_description_tokens: int = 32,
        **kwargs: Any,
    ) -> None:
        if tokenizer is None:
            raise ValueError("LDNetProcessor needs a tokenizer")
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(f"LDNetProcessor needs a fast tokenizer (character offsets); got {type(tokenizer).__name__}"
                             f" ({getattr(tokenizer, 'name_or_path', '') or 'no path'}), which has no offset mapping")
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
        self.max_description_tokens = check_int(max_description_tokens, "max_description_tokens", 1)
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
                # verbose=False: no "sequence length is longer than ... indexing errors" warning, long texts are windowed
                out = self.tokenizer(todo, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]
            found.update(zip(todo, out))
            if len(cache) > 50000:
                self._piece_cache = cache = {}
            cache.update(zip(todo, out))
        return [found[s] for s in strings]

    def _tokenize_text(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        with _TOKENIZER_LOCK:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True,
                                 verbose=False)  # windowed below: the too-long warning would be wrong
        return enc["input_ids"], text_offsets(text, enc["offset_mapping"])

    # -- encoding ------------------------------------------------------------------------------------------
    def _prefix(
        self, rec: dict, report: EncodingReport | None = None, descriptions: dict | None = None
    ) -> tuple[list[int], dict[int, LabelInfo], dict[tuple[str, str], int], dict]:
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
        if descriptions is None:
            descriptions = description_ids(rec, self._pieces, self.max_description_tokens)
        for (ns, task, string), piece in zip(labels, pieces[1:]):
            if (ns, string) in label_map:
                continue
            label_map[(ns, string)] = len(ids)
            tags[len(ids)] = LabelInfo(ns, task, string)
            positions.setdefault(task, {})[string] = len(ids)
            ids += [self._tag_ids[_TAG_OF_NS[ns]]] + piece
            if (ns, string) in descriptions:
                desc, cut = descriptions[(ns, string)]
                ids += desc
                if report is not None:
                    report.described_labels += 1
                    report.descriptions_cut += cut
        return ids, tags, label_map, positions

    def _fit_suffix(self, suffix: list[int], prefix_len: int, min_text: int) -> list[int]:
        """``[B] bg [SEP]`` shortened so that ``min_text`` text tokens fit (bg yields its room to the text)."""
        if prefix_len + len(suffix) + min_text <= self.max_length:
            return suffix
        keep = self.max_length - prefix_len - min_text - 2
        return (suffix[: max(keep, 0) + 1] if keep > 0 else []) + [self.tokenizer.sep_token_id]

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
        if validate:  # training schemas repeat: each label is checked once (the set is bounded)
            check_tag_strings(rec, set(self.special_tokens.values()), self.tokenizer, self.__dict__.setdefault("_labels_ok", set()))
        rep = EncodingReport() if report is None else report
        text_ids, offsets = self._tokenize_text(rec["text"]) if rec["text"] else ([], [])
        descriptions = description_ids(rec, self._pieces, self.max_description_tokens)  # once for every pass
        described = {k: len(ids) for k, (ids, _) in descriptions.items()}
        passes = schema_groups(
            rec, len(text_ids), stride, overflow, max_length=self.max_length, pieces=self._pieces,
            fit_suffix=self._fit_suffix, description_lengths=described,
        ) or [rec]
        feats: list[dict] = []
        gold: list[GoldItem] = []
        windowed = False
        for g, sub in enumerate(passes):
            f, gl = self._encode_pass(sub, index, text_ids, offsets, overflow, stride, rep, g, len(passes), descriptions)
            windowed |= len(f) > 1
            feats.extend(f)
            gold.extend(gl)
        rep.add_record(len(feats), len(passes), windowed, gold)
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
        descriptions: dict | None = None,
    ) -> tuple[list[dict], list[GoldItem]]:
        """One pass over the text with ``rec``'s (possibly partial) schema: one feature per window."""
        rid = rec["id"]
        prefix, tags, label_map, positions = self._prefix(rec, report, descriptions)
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
        windows = text_windows(rid, len(text_ids), budget, overflow, stride, self.max_length) if text_ids else [(0, 0)]
        starts = [o[0] for o in offsets]
        ends = [o[1] for o in offsets]
        gold = gold_items(rec["ans"], label_map, tags, starts, ends, self.max_parts)
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
                        arg_types=rec.get("arg_types") or [],
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
        records = as_records(records, text, schema, instruction, bg)
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
        elif report.descriptions_cut:
            logger.info("LDNetProcessor: %s", report)
        data: dict[str, Any] = {
            "input_ids": [f["input_ids"] for f in feats],
            "attention_mask": [f["attention_mask"] for f in feats],
            "span_graph_links": [f["span_graph_links"] for f in feats],
            "label_drop_targets": [f["label_drop_targets"] for f in feats],
            "overflow_to_sample_mapping": [f["meta"].record_index for f in feats],
        }
        imgs = load_images(records, images, self.image_config, self._image_transform)
        if return_tensors == "pt":
            data = self.pad(data)
        elif return_tensors is not None:
            raise ValueError("LDNetProcessor supports return_tensors='pt' or None")
        if imgs is not None:
            data.update(feature_images(imgs, data["overflow_to_sample_mapping"], stacked=return_tensors == "pt"))
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
        return pad_features(data, self.tokenizer.pad_token_id or 0)

    # -- images: image_processing_ldnet --------------------------------------------------------------------
    def _image_transform(self) -> Any:
        if self._transform is None:
            self._transform = image_transform(self.image_config)
        return self._transform

    # -- decoding: answers_ldnet --------------------------------------------------------------------------
    def post_process_extraction(
        self,
        logits: torch.Tensor,
        encoding: dict,
        threshold: float | None = None,
        return_scores: bool = False,
        warn: bool = True,
        span_hygiene: str | None = None,
        cls_scores: bool = False,
    ) -> list[dict]:
        """Decode ``[B, 3, L, L]`` logits (as the model returns them) into one unified ``ans`` dict per record.

        See :func:`answers_ldnet.decode_extraction`: windows (and schema passes) of one record are merged, spans
        are character offsets into the record's ``text``, ``return_scores`` adds each item's ``score`` (smallest
        link probability of its chain). A record whose search ran out of ``decode_budget`` carries
        ``"decode_truncated": True``, and the call logs one warning (``warn=False``: the caller reports it).
        ``span_hygiene`` (``"merge"`` / ``"suppress"``; default ``None``, the exact decoder that round trips gold):
        fold punctuation variants of one answer (``answers_ldnet.span_hygiene``; the pipeline passes the model's
        ``config.decode_span_hygiene``). ``cls_scores`` adds ``"cls_scores": {label: score}`` beside ``cls``.

        NaN scores (a broken model: fp16 overflow, diverged training) raise ``ValueError`` naming the records: they
        would otherwise decode to empty answers without a word.
        """
        check_finite_logits(logits, encoding["meta"])
        answers, report = decode_extraction(
            logits,
            encoding["meta"],
            self.threshold if threshold is None else threshold,
            max_parts=self.max_parts,
            max_links_per_row=self.max_links_per_row,
            budget=self.decode_budget,
            return_scores=return_scores,
            warn=warn,
            span_hygiene=span_hygiene,
            cls_scores=cls_scores,
        )
        # windows cut in the last call (the trainer's eval counter); the per-record flag is the thread-safe signal
        self.last_decode_budget_exhausted = report.windows_cut
        return answers
