"""``pipeline("universal-ie")``: text (+ schema) or unified records in, unified ``ans`` dicts out.

Registered with ``transformers.pipelines.PIPELINE_REGISTRY`` when ``modeling_ldnet`` is imported, and written into
every saved LDNet folder (``custom_pipelines`` in ``config.json`` + this file), so that

    ie = pipeline("universal-ie", model="path/or/hub-id", trust_remote_code=True)
    ie("Jerry Smith lives in New York .", schema={"ent": ["person", "location"]})

works without this package installed. Shipped as remote code: only relative imports of the package.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .processing_ldnet import LDNetProcessor

logger = logging.getLogger(__name__)

TASK = "universal-ie"

#: Paper-style default instructions (the converters' wording in ``processing/``), by schema task.
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "ent": "Please identify possible entities from the given text and determine their types.",
    "discontinuous_ent": "Please identify possible entities from the given text and determine their types.",
    "rel": "Please determine the two entities mentioned in the text and specify the nature of their relationship.",
    "ent+rel": (
        "Please identify possible entities from the given text and determine their types, "
        "then determine the relationships between them."
    ),
    "hyper_rel": "Please determine the relational facts in the text and the qualifiers of each fact.",
    "event": "Please identify the events and their arguments in the text.",
    "cls": "Please classify the text.",
}

_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values", "image_mask")
_IGNORED_KWARGS = ("local_files_only", "trust_remote_code")


def default_instruction(schema: dict | None) -> str:
    """The instruction used when none is given: by the tasks present in ``schema`` (paper style).

    An empty schema is extractive MRC, whose instruction is the question itself: there is no default.
    """
    tasks = [t for t in ("cls", "ent", "discontinuous_ent", "rel", "hyper_rel", "event") if (schema or {}).get(t)]
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

    * ``schema``: ``{"ent": [...], "rel": [...], "event": {type: [roles]}, ...}`` for texts (and records without one).
    * ``instruction``: ``None`` (default) picks a paper-style instruction from the schema (:func:`default_instruction`);
      ``""`` means no instruction (the paper's "w/o Inst." setting).
    * ``bg``: background / second segment for texts.
    * ``images``: one image (path, PIL image, array or ``[3, h, w]`` tensor) per text, for multimodal checkpoints.
    * ``threshold``: decoding threshold on link probabilities (default: the processor's, i.e. the config's).
    * ``return_scores`` (default True): each item carries ``score`` (smallest link probability of its chain).
    * ``window_stride`` / ``overflow``: long-text handling for this call (the processor's by default): texts longer
      than ``max_seq_length`` are split into overlapping windows whose answers are merged without duplicates.
    * ``batch_size``: records per forward pass (all windows of a record go in the same pass).

    Output: one unified ``ans`` dict per input (``{"ent": [{"type", "text", "span": [start, end), "score"}], ...}``,
    character offsets into the input text); a list for a list input.
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
        self.tokenizer = self.processor.tokenizer
        self.model.eval()

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
            threshold=cfg.decode_threshold,
            max_parts=cfg.decode_max_parts,
            max_links_per_row=cfg.decode_max_links_per_row,
            image_config=image_config,
        )

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
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        unknown = sorted(set(kwargs) - set(_IGNORED_KWARGS))
        if unknown:
            raise TypeError(f"universal-ie: unexpected arguments {unknown}")
        pre: dict[str, Any] = {}
        for name, value in (
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
            if not 0.0 < float(threshold) < 1.0:
                raise ValueError(f"universal-ie: threshold must be in (0, 1), got {threshold}")
            post["threshold"] = float(threshold)
        if return_scores is not None:
            post["return_scores"] = bool(return_scores)
        return pre, {}, post

    def __call__(self, inputs: Any, *args: Any, batch_size: int | None = None, num_workers: int | None = None, **kwargs):
        """Extract from ``inputs`` (a text, a record, or a list/iterable of them); see the class docstring."""
        if args:
            raise TypeError("universal-ie: pass parameters by keyword (schema=..., instruction=...)")
        pre, fwd, post = self._sanitize_parameters(**kwargs)
        pre, fwd, post = {**self._preprocess_params, **pre}, {**self._forward_params, **fwd}, {**self._postprocess_params, **post}
        bs = int(batch_size or self._batch_size or 1)
        if bs < 1:
            raise ValueError("universal-ie: batch_size must be >= 1")
        self.call_count += 1
        if isinstance(inputs, (str, dict)):
            return self.run_single(inputs, pre, fwd, post)
        if isinstance(inputs, (list, tuple)):
            return list(self._iterate(list(inputs), bs, pre, fwd, post))
        if isinstance(inputs, Iterable):
            return self._iterate(inputs, bs, pre, fwd, post)
        raise TypeError(f"universal-ie: expected a text, a record or a list of them, got {type(inputs).__name__}")

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
        _offset: int = 0,
    ) -> dict[str, Any]:
        single = not isinstance(inputs, list)
        items = [inputs] if single else inputs
        if images is not None and single:
            images = [images]
        if images is not None and len(images) != len(items):
            raise ValueError(f"universal-ie: got {len(images)} images for {len(items)} inputs")
        records, imgs = [], []
        for i, item in enumerate(items):
            rec, img = self._to_record(item, _offset + i, schema, instruction, bg)
            if images is not None and not _is_image_missing(images[i]):
                img = images[i]
            records.append(rec)
            imgs.append(img)
        has_images = any(not _is_image_missing(x) for x in imgs)
        with self._processor_settings(window_stride, overflow):
            enc = self.processor(records, images=imgs if has_images else None, return_tensors="pt")
        tensors = {k: enc[k] for k in _MODEL_INPUTS if k in enc}
        return {"model_inputs": tensors, "meta": enc["meta"], "single": single}

    def _forward(self, model_inputs: dict[str, Any], **forward_params: Any) -> dict[str, Any]:
        out = self.model(**model_inputs["model_inputs"])
        return {
            "logits": out.logits,
            "label_drop_probs": out.label_drop_probs,
            "meta": model_inputs["meta"],
            "single": model_inputs["single"],
        }

    def postprocess(self, model_outputs: dict[str, Any], threshold: float | None = None, return_scores: bool = True):
        answers = self.processor.post_process_extraction(
            model_outputs["logits"], {"meta": model_outputs["meta"]}, threshold=threshold, return_scores=return_scores
        )
        return answers[0] if model_outputs["single"] else answers

    # -- helpers -------------------------------------------------------------------------------------------
    @staticmethod
    def _to_record(item: Any, index: int, schema: dict | None, instruction: str | None, bg: str) -> tuple[dict, Any]:
        if isinstance(item, str):
            rec: dict[str, Any] = {"id": index, "text": item, "bg": bg or ""}
        elif isinstance(item, dict):
            rec = {k: v for k, v in item.items() if k not in ("ans", "image")}
            rec.setdefault("id", index)
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

    @contextlib.contextmanager
    def _processor_settings(self, window_stride: int | None, overflow: str | None):
        saved = (self.processor.window_stride, self.processor.overflow)
        try:
            if window_stride is not None:
                self.processor.window_stride = int(window_stride)
            if overflow is not None:
                if overflow not in ("window", "error", "truncate"):
                    raise ValueError(f"universal-ie: overflow must be 'window', 'error' or 'truncate', got {overflow!r}")
                self.processor.overflow = overflow
            yield
        finally:
            self.processor.window_stride, self.processor.overflow = saved

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
