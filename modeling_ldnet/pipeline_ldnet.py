"""``pipeline("universal-ie")``: text (+ schema) or unified records in, unified ``ans`` dicts out.

Registered with ``transformers.pipelines.PIPELINE_REGISTRY`` when ``modeling_ldnet`` is imported, and written into
every saved LDNet folder (``custom_pipelines`` in ``config.json`` + this file), so that

    ie = pipeline("universal-ie", model="path/or/hub-id", trust_remote_code=True)
    ie("Jerry Smith lives in New York .", schema={"ent": ["person", "location"]})

works without this package installed. Shipped as remote code: only relative imports of the package.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .answers_ldnet import DECODE_TRUNCATED, apply_label_thresholds
from .gliner2_ldnet import OUTPUT_FORMATS, assemble_outputs, expand_inputs, is_gliner2_schema
from .processing_ldnet import EncodingReport, LDNetProcessor
from .schema import (
    DESCRIPTIONS,
    RecordError,
    check_int,
    check_overflow,
    check_schema_fields,
    check_threshold,
    schema_labels,
    with_default_arg_types,
)
from .vocabulary_ldnet import DEFAULT_INSTRUCTIONS, TASK_FIELDS

logger = logging.getLogger(__name__)

TASK = "universal-ie"
#: key of the rejected candidates in an answer (``return_rejected=k``)
REJECTED = "rejected"
#: link probability down to which rejected candidates are decoded
REJECTED_FLOOR = 0.01
_ITEM_FIELDS = ("ent", "discontinuous_ent", "rel", "hyper_rel", "event", "span")


def rejected_items(accepted: dict, candidates: dict, k: int) -> list[dict]:
    """The ``k`` best-scored items of ``candidates`` (an answer decoded at :data:`REJECTED_FLOOR`) that ``accepted``
    does not hold, each tagged with its ``task``: why-not material for auditing a threshold."""
    def key(item: dict) -> str:
        return json.dumps({f: v for f, v in item.items() if f != "score"}, sort_keys=True)

    kept = {(task, key(x)) for task in _ITEM_FIELDS for x in accepted.get(task, [])}
    out = [{"task": task, **x} for task in _ITEM_FIELDS for x in candidates.get(task, []) if (task, key(x)) not in kept]
    return sorted(out, key=lambda x: (-x.get("score", 0.0), x["task"], key(x)))[:k]


_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values", "image_mask")
_IGNORED_KWARGS = ("local_files_only", "trust_remote_code")
_CALL_PARAMS = ("schema", "instruction", "bg", "images", "threshold", "return_scores", "return_cls_scores", "return_rejected",
                "arg_types", "window_stride", "overflow", "batch_size", "num_workers", "output_format", "include_confidence",
                "include_spans")
#: the keys of an input record (a near miss of one, e.g. ``shema``, is an error naming it, never "no schema")
_RECORD_KEYS = ("id", "instruction", "schema", "text", "bg", "ans", "image", DESCRIPTIONS)


def _did_you_mean(key: Any, allowed: Iterable[str]) -> str | None:
    return next(iter(difflib.get_close_matches(str(key).lower(), list(allowed), 1, 0.8)), None)


def default_instruction(schema: dict | None) -> str:
    """The instruction used when none is given: by the tasks present in ``schema`` (paper style).

    An empty schema is extractive MRC, whose instruction is the question itself: there is no default.
    """
    check_schema_fields(schema, "universal-ie: schema")  # a misspelt key is not an empty schema
    tasks = [t for t in TASK_FIELDS if (schema or {}).get(t)]
    if not tasks:
        raise ValueError(
            "universal-ie: an empty schema means extractive QA (MRC); pass the question as `instruction=`"
        )
    if set(tasks) == {"ent", "rel"}:
        return DEFAULT_INSTRUCTIONS["ent+rel"]
    return " ".join(dict.fromkeys(DEFAULT_INSTRUCTIONS[t] for t in tasks))


def _is_image_missing(img: Any) -> bool:
    return img is None or (isinstance(img, (str, bytes)) and len(img) == 0)


class UniversalIEPipeline(Pipeline):
    """Universal information extraction with LDNet (NER, RE, EE, ABSA, discontinuous NER, n-ary RE, cls, MRC).

    Inputs: a text, a unified record (``{"text", "schema", "instruction"?, "bg"?, "image"?, "id"?}``) or a list of
    either. Call parameters (also accepted at construction):

    * ``schema``: ``{"ent": [...], "rel": [...], "event": {type: [roles]}, ...}`` for texts (and records without one);
      a list field may be ``{label: description}`` (``{"ent": {"person": "a human being", "city": None}}``).
    * ``instruction``: ``None`` (default) takes the model's ``config.default_instruction`` when it has one (e.g. ``""``
      for a model trained without instructions, like ``make demo``'s), else picks a paper-style instruction from the
      schema (:func:`default_instruction`);
      ``""`` means no instruction (the paper's "w/o Inst." setting).
    * ``bg``: background / second segment for texts.
    * ``images``: one image (path, PIL image, array or ``[3, h, w]`` tensor) per text, for multimodal checkpoints.
    * ``threshold``: decoding threshold on link probabilities (default: the processor's, i.e. the config's).
    * ``return_scores`` (default True): each item carries ``score`` (smallest link probability of its chain).
    * ``arg_types`` (default True): apply the model's default relation argument types (``config.relation_arg_types``,
      ``ldnet-train --derive_arg_types``) to the schema's plain relation labels when entities are extracted too;
      ``False`` decodes relations untyped. A schema's own ``{"rel": {label: {"head", "tail"}}}`` always applies.
    * ``window_stride`` / ``overflow``: long-text handling for this call (the processor's by default): texts longer
      than ``max_seq_length`` are split into overlapping windows whose answers are merged without duplicates.
    * ``batch_size``: records per forward pass (all windows of a record go in the same pass).

    Output: one unified ``ans`` dict per input (``{"ent": [{"type", "text", "span": [start, end), "score"}], ...}``,
    character offsets into the input text); a list for a list input. An answer whose decoding ran out of the
    processor's ``decode_budget`` is partial and says so: it carries ``"decode_truncated": True``, and each decoded
    batch that had one logs a warning naming the records and labels (docs/decoding.md).

    Every argument is checked before any work (unknown schema keys, threshold outside ``(0, 1)``, negative
    ``window_stride``, ``batch_size < 1``, inputs that are not texts or records with a ``text``). A schema too large
    to leave room for the text is run as several label-group passes (see ``LDNetProcessor``); the call's encoding
    report (``schema_passes``, windows, ...) is :attr:`last_report`. Calls are thread-safe: per-call settings never
    change the shared processor, and :attr:`last_report` is kept per thread.

    Labels the model never saw: when the config records ``trained_labels`` (``LDNetTrainer`` does) and is not
    ``generalist``, a call whose schemas ask for other labels logs one warning and lists them in
    ``last_report.unseen_labels`` (``{task: [labels]}``); the answers themselves are unchanged plain dicts.
    """

    _load_processor = None
    _load_tokenizer = None
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, model, tokenizer=None, processor=None, **kwargs: Any) -> None:
        super().__init__(model=model, tokenizer=tokenizer, processor=processor, **kwargs)
        if not hasattr(self.processor, "post_process_extraction"):
            self.processor = self._build_processor(tokenizer)
        calibrated = getattr(self.model.config, "decode_channel_thresholds", None)
        if calibrated and self.processor.threshold == self.model.config.decode_threshold:
            # a processor left at the plain default (e.g. saved before calibration) takes the model's fitted
            # per-channel thresholds; one configured otherwise is kept
            self.processor.threshold = check_threshold(list(calibrated))
        self.tokenizer = self.processor.tokenizer
        self.model.eval()
        self._local = threading.local()

    # -- construction --------------------------------------------------------------------------------------
    def _build_processor(self, tokenizer: Any) -> LDNetProcessor:
        cfg = self.model.config
        if tokenizer is None or isinstance(tokenizer, str):
            path = tokenizer or getattr(self.model, "name_or_path", None) or getattr(cfg, "_name_or_path", "")
            if path:
                with contextlib.suppress(OSError, ValueError):
                    return LDNetProcessor.from_pretrained(path)
            raise ValueError(
                "universal-ie: no LDNetProcessor found; pass `processor=` (or a `tokenizer=` holding the LDNet tag "
                "tokens), or load from a folder saved with processor.save_pretrained"
            )
        image_config = None
        if getattr(self.model, "vision", None) is not None:
            from .vision_ldnet import vision_data_config

            image_config = vision_data_config(self.model)
        logger.info("universal-ie: building an LDNetProcessor from the tokenizer and the model config")
        return LDNetProcessor(
            tokenizer=tokenizer,
            max_length=getattr(cfg, "max_seq_length", None) or 512,
            overflow=cfg.overflow,
            window_stride=cfg.window_stride,
            special_tokens=cfg.special_tokens,
            # calibrated per-channel thresholds (trainers.calibration) win over the single default
            threshold=getattr(cfg, "decode_channel_thresholds", None) or cfg.decode_threshold,
            max_parts=cfg.decode_max_parts,
            max_links_per_row=cfg.decode_max_links_per_row,
            image_config=image_config,
            max_description_tokens=getattr(cfg, "max_description_tokens", 32),
        )

    @property
    def last_report(self) -> EncodingReport | None:
        """The encoding report of this thread's latest call (records, features, ``schema_passes``, ...); for a lazy
        (generator) call it grows as results are consumed."""
        local = getattr(self, "_local", None)
        return getattr(local, "report", None) if local is not None else None

    # -- pipeline API --------------------------------------------------------------------------------------
    def _sanitize_parameters(
        self,
        schema: dict | None = None,
        instruction: str | None = None,
        bg: str | None = None,
        images: Any = None,
        threshold: float | None = None,
        return_scores: bool | None = None,
        window_stride: int | None = None,
        overflow: str | None = None,
        return_cls_scores: bool | None = None,
        return_rejected: int | None = None,
        arg_types: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        unknown = sorted(set(kwargs) - set(_IGNORED_KWARGS))
        if unknown:
            hints = [f"{k!r} -> {g!r}" for k in unknown if (g := _did_you_mean(k, _CALL_PARAMS))]
            raise TypeError(
                f"universal-ie: unexpected arguments {unknown}" + (f" (did you mean {', '.join(hints)}?)" if hints else "")
            )
        # validate everything up front: a bad argument must fail before any work, naming itself
        check_schema_fields(schema, "universal-ie: schema")
        for name, value in (("instruction", instruction), ("bg", bg)):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"universal-ie: {name} must be a string, got {type(value).__name__} {value!r:.60}")
        if window_stride is not None:
            window_stride = check_int(window_stride, "universal-ie: window_stride", 0)
        if overflow is not None:
            check_overflow(overflow, "universal-ie: overflow")
        if arg_types is not None and not isinstance(arg_types, bool):
            raise TypeError(f"universal-ie: arg_types must be True or False, got {arg_types!r:.60}")
        pre: dict[str, Any] = {}
        for name, value in (
            ("arg_types", arg_types),
            ("schema", schema),
            ("instruction", instruction),
            ("bg", bg),
            ("images", images),
            ("window_stride", window_stride),
            ("overflow", overflow),
        ):
            if value is not None:
                pre[name] = value
        post: dict[str, Any] = {}
        if threshold is not None:
            post["threshold"] = check_threshold(threshold, "universal-ie: threshold")
        if return_scores is not None:
            post["return_scores"] = bool(return_scores)
        if return_cls_scores is not None:
            if not isinstance(return_cls_scores, bool):
                raise TypeError(f"universal-ie: return_cls_scores must be True or False, got {return_cls_scores!r:.60}")
            post["return_cls_scores"] = return_cls_scores
        if return_rejected is not None:
            post["return_rejected"] = check_int(return_rejected, "universal-ie: return_rejected", 0)
        return pre, {}, post

    def __call__(self, inputs: Any, *args: Any, batch_size: int | None = None, num_workers: int | None = None, **kwargs):
        """Extract from ``inputs`` (a text, a record, or a list/iterable of them); see the class docstring."""
        if args:
            raise TypeError("universal-ie: pass parameters by keyword (schema=..., instruction=...)")
        output_format = kwargs.pop("output_format", "ldnet")
        shape = {k: kwargs.pop(k) for k in ("include_confidence", "include_spans") if k in kwargs}
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"universal-ie: output_format must be one of {list(OUTPUT_FORMATS)}, got {output_format!r:.40}")
        for name, value in shape.items():
            if not isinstance(value, bool):
                raise TypeError(f"universal-ie: {name} must be True or False, got {value!r:.40}")
            if output_format != "gliner2":
                raise ValueError(f"universal-ie: {name} goes with output_format='gliner2'")
        if output_format == "gliner2" or self._has_gliner2_schema(inputs, kwargs.get("schema")):
            return self._call_gliner2(inputs, output_format, batch_size=batch_size, **shape, **kwargs)
        pre, fwd, post = self._sanitize_parameters(**kwargs)
        pre, fwd, post = {**self._preprocess_params, **pre}, {**self._forward_params, **fwd}, {**self._postprocess_params, **post}
        if batch_size is not None:
            bs = check_int(batch_size, "universal-ie: batch_size", 1)
        else:
            bs = int(self._batch_size or 1)
        if isinstance(inputs, (bytes, bytearray, memoryview)):
            raise TypeError("universal-ie: got bytes; decode them to a str first (e.g. data.decode('utf-8'))")
        self.call_count += 1
        # the call's own report, reachable from this thread only (concurrent calls never share it)
        report = EncodingReport()
        self._local.report = report
        pre = {**pre, "_report": report}
        self._local.truncated = []
        if isinstance(inputs, (str, dict)):
            out = self.run_single(inputs, pre, fwd, post)
            self._warn_truncated()
            self._warn_unseen(report)
            return out
        if isinstance(inputs, (list, tuple)):
            return list(self._iterate_and_warn(list(inputs), bs, pre, fwd, post))
        if isinstance(inputs, Iterable):
            return self._iterate_and_warn(inputs, bs, pre, fwd, post)
        raise TypeError(f"universal-ie: expected a text, a record or a list of them, got {type(inputs).__name__}")

    # -- GLiNER2 schemas and output (gliner2_ldnet) --------------------------------------------------------------
    @staticmethod
    def _has_gliner2_schema(inputs: Any, schema: Any) -> bool:
        if is_gliner2_schema(schema):
            return True
        items = [inputs] if isinstance(inputs, dict) else inputs if isinstance(inputs, (list, tuple)) else []
        return any(isinstance(x, dict) and is_gliner2_schema(x.get("schema")) for x in items)

    def _call_gliner2(self, inputs: Any, output_format: str, include_confidence: bool = False,
                      include_spans: bool = False, batch_size: int | None = None, **kwargs: Any) -> Any:
        """GLiNER2 schemas (an entity / relation pass plus one ``cls`` pass per classification task, a second pass
        at a lower threshold for labels that ask for one) and/or GLiNER2's output shape: ``gliner2_ldnet``."""
        single = isinstance(inputs, (str, dict))
        items = [inputs] if single else list(inputs) if isinstance(inputs, Iterable) else None
        if items is None or any(not isinstance(x, (str, dict)) for x in items):
            raise TypeError("universal-ie: expected a text, a record or a list of them")
        call_schema = kwargs.pop("schema", None)
        self._sanitize_parameters(**kwargs)  # every other argument checked before any work
        call_threshold = kwargs.pop("threshold", None)
        base = self.processor.threshold if call_threshold is None else check_threshold(call_threshold,
                                                                                        "universal-ie: threshold")
        user_cls_scores = kwargs.pop("return_cls_scores", False)
        user_scores = bool(kwargs.pop("return_scores", True))
        plans, jobs = expand_inputs(items, call_schema, base, single)
        results: dict[tuple[int, str], dict] = {}
        report = EncodingReport()
        self._local.defer_unseen = True
        try:
            for thr in dict.fromkeys(j[3] for j in jobs):
                group = [j for j in jobs if j[3] == thr]
                answers = self([j[2] for j in group], threshold=call_threshold if thr is None else thr,
                               return_scores=True, return_cls_scores=True, batch_size=batch_size, **kwargs)
                report.merge(self.last_report)
                results.update({(j[0], j[1]): a for j, a in zip(group, answers)})
        finally:
            self._local.defer_unseen = False
        self._local.report = report
        self._warn_unseen(report)
        out = assemble_outputs(plans, results, base, output_format, include_confidence, include_spans, user_cls_scores)
        if output_format == "ldnet" and not user_scores:
            out = [{k: [{f: v for f, v in x.items() if f != "score"} for x in items] if k in ("ent", "rel") else items
                    for k, items in ans.items()} for ans in out]
        return out[0] if single else out

    def _apply_label_thresholds(self, answers: list[dict], model_outputs: dict[str, Any],
                                by_label: dict[str, dict[str, float]], return_scores: bool) -> list[dict]:
        base = self.processor.threshold
        floor = min(base) if isinstance(base, (list, tuple)) else float(base)
        lowest = min((t for labels in by_label.values() for t in labels.values()), default=floor)
        low = None
        if lowest < floor:  # a label below the channels' thresholds: the same logits decoded at its value
            low = self.processor.post_process_extraction(
                model_outputs["logits"], {"meta": model_outputs["meta"]}, threshold=lowest, return_scores=True,
                **self._quiet_decode(),
            )
        out = [apply_label_thresholds(a, None if low is None else low[i], by_label, floor) for i, a in enumerate(answers)]
        if not return_scores:
            out = [{k: [{f: v for f, v in x.items() if f != "score"} for x in items] if isinstance(items, list)
                    and items and isinstance(items[0], dict) else items for k, items in a.items()} for a in out]
        return out

    def _iterate(self, inputs: Iterable, batch_size: int, pre: dict, fwd: dict, post: dict) -> Iterator[dict]:
        images = pre.pop("images", None)
        if images is not None and not isinstance(images, (list, tuple)):
            raise ValueError("universal-ie: with a list of inputs, `images` must be a list (one per input)")
        chunk: list = []
        offset = 0
        for item in inputs:
            chunk.append(item)
            if len(chunk) == batch_size:
                yield from self._run_chunk(chunk, offset, images, pre, fwd, post)
                offset += len(chunk)
                chunk = []
        if chunk:
            yield from self._run_chunk(chunk, offset, images, pre, fwd, post)

    def _run_chunk(self, chunk: list, offset: int, images: Any, pre: dict, fwd: dict, post: dict) -> list[dict]:
        extra = {} if images is None else {"images": list(images[offset : offset + len(chunk)])}
        if images is not None and len(extra["images"]) != len(chunk):
            raise ValueError("universal-ie: fewer `images` than inputs")
        model_inputs = self.preprocess(chunk, **pre, **extra, _offset=offset)
        return self.postprocess(self.forward(model_inputs, **fwd), **post)

    def preprocess(
        self,
        inputs: Any,
        schema: dict | None = None,
        instruction: str | None = None,
        bg: str = "",
        images: Any = None,
        window_stride: int | None = None,
        overflow: str | None = None,
        arg_types: bool = True,
        _offset: int = 0,
        _report: EncodingReport | None = None,
    ) -> dict[str, Any]:
        single = not isinstance(inputs, list)
        items = [inputs] if single else inputs
        if images is not None and single:
            images = [images]
        if images is not None and len(images) != len(items):
            raise ValueError(f"universal-ie: got {len(images)} images for {len(items)} inputs")
        records, imgs = [], []
        for i, item in enumerate(items):
            if instruction is None:  # the instruction the model was trained with ("" for instruction-free models)
                instruction = getattr(self.model.config, "default_instruction", None)
            rec, img = self._to_record(item, _offset + i, schema, instruction, bg)
            if arg_types:  # the model's default argument types (config.relation_arg_types) on plain relation labels
                rec["schema"] = with_default_arg_types(rec["schema"], getattr(self.model.config, "relation_arg_types", None))
            if images is not None and not _is_image_missing(images[i]):
                img = images[i]
            records.append(rec)
            imgs.append(img)
        has_images = any(not _is_image_missing(x) for x in imgs)
        # per-call settings go to this call's encoding only: the shared processor is never changed
        enc = self.processor(
            records,
            images=imgs if has_images else None,
            return_tensors="pt",
            overflow=overflow,
            window_stride=window_stride,
        )
        report: EncodingReport = enc["encoding_report"]
        report.add_unseen(self._unseen_labels(enc["meta"]))
        if report.split_records or report.descriptions_cut:
            logger.info("universal-ie: %s", report)
        if _report is not None:
            _report.merge(report)
        tensors = {k: enc[k] for k in _MODEL_INPUTS if k in enc}
        return {"model_inputs": tensors, "meta": enc["meta"], "single": single}

    #: most encoded rows (windows x label-group passes) per model call: long texts and split schemas make many rows,
    #: and one call over all of them holds every row's activations at once (rows are independent: same results)
    max_rows_per_forward = 32

    def _forward(self, model_inputs: dict[str, Any], **forward_params: Any) -> dict[str, Any]:
        inputs = model_inputs["model_inputs"]
        n, step = inputs["input_ids"].shape[0], self.max_rows_per_forward
        if n <= step:
            out = self.model(**inputs)
            logits, probs = out.logits, out.label_drop_probs
        else:
            logits = probs = None
            for s in range(0, n, step):
                out = self.model(**{k: v[s : s + step] for k, v in inputs.items()})
                if logits is None:  # filled in place: no second copy of the [n, 3, L, L] grid
                    logits = out.logits.new_empty((n, *out.logits.shape[1:]))
                    if out.label_drop_probs is not None:
                        probs = out.label_drop_probs.new_empty((n, *out.label_drop_probs.shape[1:]))
                logits[s : s + step] = out.logits
                if probs is not None:
                    probs[s : s + step] = out.label_drop_probs
                del out
        return {
            "logits": logits,
            "label_drop_probs": probs,
            "meta": model_inputs["meta"],
            "single": model_inputs["single"],
        }

    def postprocess(self, model_outputs: dict[str, Any], threshold: float | None = None, return_scores: bool = True,
                    return_cls_scores: bool = False, return_rejected: int = 0):
        # the model's per-label thresholds (config.decode_label_thresholds) unless the call set its own threshold
        by_label = getattr(self.model.config, "decode_label_thresholds", None) if threshold is None else None
        answers = self.processor.post_process_extraction(
            model_outputs["logits"], {"meta": model_outputs["meta"]}, threshold=threshold,
            return_scores=return_scores or bool(by_label),
            # cls_scores only when asked: a processor written before it (or a spy) keeps working
            **({"cls_scores": True} if return_cls_scores else {}), **self._quiet_decode(),
        )
        if by_label:
            answers = self._apply_label_thresholds(answers, model_outputs, by_label, return_scores)
        if return_rejected:
            # the same logits decoded at REJECTED_FLOOR: what the threshold turned down, best first
            low = self.processor.post_process_extraction(
                model_outputs["logits"], {"meta": model_outputs["meta"]}, threshold=REJECTED_FLOOR, return_scores=True,
                **self._quiet_decode(),
            )
            for ans, candidates in zip(answers, low):
                ans[REJECTED] = rejected_items(ans, candidates, return_rejected)
        # budget-cut answers are flagged per record; the call warns once for all of its batches (__call__)
        ids = {m.record_index: m.record_id for m in model_outputs["meta"]}
        cut = getattr(self._local, "truncated", None)
        if cut is not None:
            cut.extend(ids.get(r, r) for r, a in enumerate(answers) if a.get(DECODE_TRUNCATED))
        return answers[0] if model_outputs["single"] else answers

    def _quiet_decode(self) -> dict[str, Any]:
        """``{"warn": False}`` for the processor's decoding (the call warns once itself), and the model's
        ``config.decode_span_hygiene`` (read on every call, so setting it to ``None`` turns it off); processors saved
        before these existed (older remote code) take neither. The signature is looked up once per processor."""
        proc = self.processor
        if getattr(self, "_quiet_for", None) is not proc:
            params = inspect.signature(proc.post_process_extraction).parameters
            self._quiet_kwargs = {"warn": False} if "warn" in params else {}
            self._takes_hygiene = "span_hygiene" in params
            self._quiet_for = proc
        if not self._takes_hygiene:
            return self._quiet_kwargs
        return {**self._quiet_kwargs, "span_hygiene": getattr(self.model.config, "decode_span_hygiene", None)}

    def _warn_truncated(self) -> None:
        cut = getattr(self._local, "truncated", None) or []
        if cut:
            logger.warning(
                "universal-ie: the decode step budget ran out for %d record(s) (%s); their answers are partial and "
                "flagged %r. Raise the threshold or the processor's decode_budget.",
                len(cut), ", ".join(repr(r) for r in cut[:10]) + (" ..." if len(cut) > 10 else ""), DECODE_TRUNCATED,
            )
        self._local.truncated = []

    def _iterate_and_warn(self, inputs: Iterable, bs: int, pre: dict, fwd: dict, post: dict) -> Iterator[dict]:
        try:
            yield from self._iterate(inputs, bs, pre, fwd, post)
        finally:
            self._warn_truncated()
            self._warn_unseen(pre.get("_report"))

    def _unseen_labels(self, metas: Iterable[Any]) -> dict[str, list[str]]:
        """``{task: [labels]}`` of the encoded schemas that ``config.trained_labels`` lacks (``{}`` when the labels
        the model saw are unknown, or the model is a ``generalist``)."""
        cfg = self.model.config
        trained = getattr(cfg, "trained_labels", None)
        if trained is None or getattr(cfg, "generalist", False):
            return {}
        known = {t: set(v) for t, v in trained.items()}
        out: dict[str, list[str]] = {}
        done: set[int] = set()
        for meta in metas:
            if id(meta.schema) in done:  # the windows of one pass share their schema
                continue
            done.add(id(meta.schema))
            for task, labels in schema_labels(meta.schema).items():
                new = [x for x in labels if x not in known.get(task, ())]
                if new:
                    have = out.setdefault(task, [])
                    have.extend(x for x in new if x not in have)
        return out

    def _warn_unseen(self, report: EncodingReport | None) -> None:
        if getattr(self._local, "defer_unseen", False):  # a GLiNER2 call's passes: it warns once, at its end
            return
        if report is not None and report.unseen_labels:
            logger.warning(
                "universal-ie: the schema asks for labels this model never saw in training (config.trained_labels): "
                "%s; expect weaker answers for them (set config.generalist=True for a model meant for new labels)",
                "; ".join(f"{t}: {', '.join(repr(x) for x in labels[:20])}{' ...' if len(labels) > 20 else ''}"
                          for t, labels in report.unseen_labels.items()),
            )

    # -- helpers -------------------------------------------------------------------------------------------
    @staticmethod
    def _to_record(item: Any, index: int, schema: dict | None, instruction: str | None, bg: str) -> tuple[dict, Any]:
        if isinstance(item, str):
            rec: dict[str, Any] = {"id": index, "text": item, "bg": bg or ""}
        elif isinstance(item, dict):
            rec = {k: v for k, v in item.items() if k not in ("ans", "image")}
            rec.setdefault("id", index)
            for key in item:
                guess = None if key in _RECORD_KEYS else _did_you_mean(key, _RECORD_KEYS)
                if guess is not None and guess not in item:
                    raise RecordError(rec["id"], guess, f"input {index} has an unknown key {key!r} (did you mean "
                                                        f"{guess!r}?)")
            if "text" not in rec:
                raise RecordError(rec["id"], "text", f"input {index} is a record without `text` (keys: {sorted(rec)})")
            if rec.get("schema") is not None:
                try:
                    check_schema_fields(rec["schema"])
                except (TypeError, ValueError) as exc:
                    raise RecordError(rec["id"], "schema", str(exc).removeprefix("schema: ")) from None
        elif isinstance(item, (bytes, bytearray, memoryview)):
            raise TypeError(f"universal-ie: input {index} is bytes; decode it to a str first")
        else:
            raise TypeError(f"universal-ie: input {index} is a {type(item).__name__}, expected a text or a record")
        if rec.get("schema") is None:
            if schema is None and rec.get("instruction") in (None, "") and instruction in (None, ""):
                raise ValueError(f"universal-ie: input {index} has no schema; pass `schema=` (or a question as `instruction=`)")
            rec["schema"] = schema or {}
        if rec.get("instruction") is None:
            rec["instruction"] = instruction if instruction is not None else default_instruction(rec["schema"])
        img = item.get("image") if isinstance(item, dict) else None
        return rec, img

    # -- saving --------------------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Model (with model card and this pipeline's code), tokenizer and processor, loadable with
        ``pipeline("universal-ie", model=save_directory, trust_remote_code=True)``."""
        push = kwargs.pop("push_to_hub", False)
        super().save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory)
        add_pipeline_to_folder(save_directory)
        if push:
            self._push_folder(save_directory, **kwargs)

    def push_to_hub(self, repo_id: str, *, commit_message: str | None = None, private: bool | None = None,
                    token: bool | str | None = None, revision: str | None = None, create_pr: bool = False, **_: Any) -> Any:
        """Save everything (model card included) to a temporary folder and upload it as one commit."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return upload_folder(tmp, repo_id, commit_message=commit_message or "Upload LDNet universal-ie pipeline",
                                 private=private, token=token, revision=revision, create_pr=create_pr)

    def _push_folder(self, folder: str | os.PathLike, **kwargs: Any) -> Any:
        repo_id = kwargs.get("repo_id") or os.path.basename(os.path.normpath(folder))
        return upload_folder(folder, repo_id, commit_message=kwargs.get("commit_message"), token=kwargs.get("token"))


def upload_folder(folder: str | os.PathLike, repo_id: str, *, commit_message: str | None = None,
                  private: bool | None = None, token: bool | str | None = None, revision: str | None = None,
                  create_pr: bool = False) -> Any:
    """Create ``repo_id`` if needed and upload ``folder`` as it is (README model card included)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token) if token not in (None, True) else HfApi()
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    return api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, commit_message=commit_message or "Upload LDNet",
        revision=revision, create_pr=create_pr,
    )


def add_pipeline_to_folder(folder: str | os.PathLike) -> None:
    """Copy this pipeline's code into a saved model folder and declare it in ``config.json`` (``custom_pipelines``),
    so ``pipeline("universal-ie", model=folder, trust_remote_code=True)`` works without the package."""
    from transformers.dynamic_module_utils import custom_object_save

    custom_object_save(UniversalIEPipeline, folder)
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.setdefault("custom_pipelines", {})[TASK] = {
        "impl": f"{UniversalIEPipeline.__module__.split('.')[-1]}.{UniversalIEPipeline.__name__}",
        "pt": ["AutoModel"],
        "type": "multimodal",
    }
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def register_pipeline() -> None:
    """Register ``universal-ie`` (idempotent)."""
    current = PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl")
    if current is not UniversalIEPipeline:
        PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=UniversalIEPipeline, pt_model=AutoModel, type="multimodal")


register_pipeline()
