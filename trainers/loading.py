"""The one place that loads things for training: models + processors, dataset splits, and command-line arguments.

* :class:`ModelArguments` / :class:`DataArguments`: the ``HfArgumentParser`` dataclasses shared by ``ldnet-train``,
  ``ldnet-pretrain`` and ``ldnet-fewshot``.
* :func:`load_model_and_processor`: the single model loader (a saved LDNet folder, with config overrides, or a fresh
  LDNet on a pre-trained encoder). ``build_model_and_processor`` (``ModelArguments`` in), ``teacher``'s and
  ``fewshot.load_checkpoint`` are thin views of it.
* :func:`load_splits` / :func:`load_data` / :func:`pick`: ``{"train"|"dev"|"test": datasets.Dataset}`` from a
  registered benchmark, a converted folder or single files.

Library module: it never imports an entry point (``cli``, ``pretrain``, ``fewshot``); see ARCHITECTURE.md.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import transformers
from transformers import AutoTokenizer

from modeling_ldnet import LDNetModel, LDNetProcessor
from modeling_ldnet.modelcard_ldnet import portable_model_id
from processing import load_unified

from .data import load_benchmark, load_training_data, pick_split, portable_path

logger = logging.getLogger("ldnet.train")

# ---------------------------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ModelArguments:
    """Which model to start from, and LDNet config overrides."""

    model_name_or_path: str = field(
        metadata={"help": "A pre-trained encoder (local folder or Hub id: a fresh LDNet is built on it) or a saved LDNet."}
    )
    processor_name_or_path: str | None = field(
        default=None, metadata={"help": "Processor/tokenizer folder; default: model_name_or_path."}
    )
    use_label_drop: bool | None = field(default=None, metadata={"help": "Label-drop gate + BCE (False: LDNet_MR)."})
    label_drop_mode: str | None = field(default=None, metadata={"help": "'log_odds' (new models), 'logit' (reference code) or 'prob' (paper)."})
    label_drop_axis: str | None = field(default=None, metadata={"help": "'column' (reference), 'row' or 'both'."})
    label_drop_per_channel: bool | None = field(default=None, metadata={"help": "One gate head per channel."})
    label_drop_rate: float | None = field(default=None, metadata={"help": "Ablation drop rate rho in (0, 1]."})
    head_dim: int | None = field(default=None, metadata={"help": "Query/key size d_i of each channel (64)."})
    span_graph_loss_reduction: str | None = field(default=None, metadata={"help": "'mean' or 'sum' over channels."})
    label_drop_loss_reduction: str | None = field(default=None, metadata={"help": "'valid_mean' or 'padded_mean'."})
    distill_weight: float | None = field(default=None, metadata={"help": "Weight of the distillation MSE (eq 19)."})
    distill_target: str | None = field(default=None, metadata={"help": "'logits' (reference) or 'probs' (paper)."})

    #: fields that are LDNetConfig overrides (everything but the two paths)
    OVERRIDES = (
        "use_label_drop",
        "label_drop_mode",
        "label_drop_axis",
        "label_drop_per_channel",
        "label_drop_rate",
        "head_dim",
        "span_graph_loss_reduction",
        "label_drop_loss_reduction",
        "distill_weight",
        "distill_target",
    )

    def config_overrides(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self.OVERRIDES if getattr(self, n) is not None}


@dataclass
class DataArguments:
    """Where the data comes from (converted unified folders/files, or a benchmark converted on the fly)."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "A converted folder ({train,dev,test}.jsonl|parquet), or with --benchmark the upstream source "
                          "(default there: the staged copy in $LDNET_SHARED_DATA, ../shared/data)."},
    )
    benchmark: str | None = field(
        default=None, metadata={"help": "Registered benchmark (python -m processing list) converted from --data_dir."}
    )
    benchmark_options: str | None = field(
        default=None, metadata={"help": "Converter options 'key=value,key=value' (e.g. with_entities=true)."}
    )
    instruction: str | None = field(
        default=None, metadata={"help": "Override every record's instruction ('' = the w/o-Inst. setting)."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Unified jsonl/parquet training file."})
    validation_file: str | None = field(default=None, metadata={"help": "Unified jsonl/parquet dev file."})
    test_file: str | None = field(default=None, metadata={"help": "Unified jsonl/parquet test file."})
    max_length: int | None = field(
        default=None,
        metadata={"help": "Longest input in tokens ([CLS]/[SEP] included); default: the saved processor's, else 512."},
    )
    overflow: str = field(default="window", metadata={"help": "'window', 'truncate' or 'error' for long texts."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training records."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N dev records."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep the first N test records."})
    teacher_scores: str | None = field(
        default=None, metadata={"help": "Teacher-score folder (ldnet-teacher-scores) for model-transfer learning."}
    )
    schema_shuffle: bool | None = field(
        default=None,
        metadata={"help": "Shuffle the schema label order per record and epoch while training (as pre-training "
                          "does): the model cannot learn label positions (bench/label_order.py: spread 28.45 -> 2.48 "
                          "at equal F1). Default: on, except with --teacher_scores (whose input hashes a shuffled "
                          "schema could never match), where it is off; passing it explicitly with teacher scores "
                          "is an error."},
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "datasets.map processes."})
    predictions_file: str = field(
        default="test_predictions.jsonl", metadata={"help": "Test predictions (in output_dir): {id, ans} per line."}
    )


def portable(value: Any) -> Any:
    """``value`` (nested dicts / lists) with every absolute path string made :func:`portable_path`."""
    if isinstance(value, str):
        return portable_path(value) if os.path.isabs(value) else value
    if isinstance(value, Mapping):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    return value


def parse_options(text: str | None) -> dict[str, Any]:
    """``"k=v,k2=v2"`` -> ``{"k": "v", "k2": "v2"}`` (converter options; values stay strings)."""
    out: dict[str, Any] = {}
    for part in (text or "").split(","):
        if part.strip():
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise ValueError(f"benchmark options: expected 'key=value', got {part.strip()!r}")
            out[k.strip()] = v.strip()
    return out


def setup_logging(training_args: Any) -> None:
    """Log lines to stdout at the process's level (``ldnet.*``, ``trainers``, datasets, transformers); our own
    loggers at INFO unless ``--log_level`` is given."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    # our own lines (the data report, the metric chosen...) are INFO: shown by default. transformers' "passive"
    # --log_level means its own WARNING verbosity, which would hide them; an explicit --log_level still rules
    own = logging.INFO if training_args.log_level == "passive" and training_args.should_log else level
    for name in ("ldnet", "trainers"):
        logging.getLogger(name).setLevel(own)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    if not training_args.should_log:
        datasets.utils.logging.disable_progress_bar()


# ---------------------------------------------------------------------------------------------------------------
# models + processors
# ---------------------------------------------------------------------------------------------------------------


def is_ldnet_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a local folder holding a saved LDNet (``config.json`` with ``model_type == "ldnet"``)."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("model_type") == "ldnet"
    except (OSError, json.JSONDecodeError):
        return False


def load_model_and_processor(
    model_name_or_path: str | os.PathLike,
    *,
    processor_name_or_path: str | os.PathLike | None = None,
    max_length: int | None = None,
    overflow: str | None = None,
    device: str | None = None,
    require_ldnet: bool = False,
    hub_ldnet: bool = False,
    **config_overrides: Any,
):
    """``(model, processor)`` — the one loader of the training code.

    * a saved LDNet folder -> ``LDNetModel.from_pretrained`` (with ``config_overrides``) and its saved processor;
    * anything else (an encoder folder or Hub id) -> a fresh ``LDNetModel.from_encoder`` and a processor on the
      encoder's tokenizer; ``require_ldnet=True`` refuses this case (scoring with a random head is never wanted).
    * ``hub_ldnet=True``: ``model_name_or_path`` is the Hub id of a saved LDNet (model and processor from there; the
      base of a LoRA adapter, trainers/adapters.py).

    ``max_length`` / ``overflow``: ``None`` keeps the saved processor's (a fresh processor: 512 / ``"window"``).
    ``device`` moves the model there and puts it in eval mode (inference use).
    """
    path = str(model_name_or_path)
    proc_path = str(processor_name_or_path or path)
    if require_ldnet and not hub_ldnet and not is_ldnet_checkpoint(path):
        raise FileNotFoundError(f"{path!r} is not a saved LDNet folder (no config.json with model_type 'ldnet')")
    if hub_ldnet or (Path(proc_path) / "processor_config.json").is_file():
        processor = LDNetProcessor.from_pretrained(proc_path)
        if max_length is not None:
            processor.max_length = int(max_length)
        if overflow is not None:
            processor.overflow = overflow
    else:
        tok = AutoTokenizer.from_pretrained(proc_path)
        processor = LDNetProcessor(tokenizer=tok, max_length=int(max_length or 512), overflow=overflow or "window")
    if hub_ldnet or is_ldnet_checkpoint(path):
        model = LDNetModel.from_pretrained(path, **config_overrides)
        if model.get_input_embeddings().num_embeddings < len(processor.tokenizer):
            model.resize_token_embeddings(len(processor.tokenizer))
    else:
        model = LDNetModel.from_encoder(path, tokenizer=processor.tokenizer, **config_overrides)
        # config.json travels with the model: a Hub id, never this machine's absolute path
        model.config.encoder_name_or_path = portable_model_id(path)
    if device is not None:
        model.to(device).eval()
    return model, processor


def load_processor(path: str | os.PathLike) -> LDNetProcessor:
    """The saved processor of a folder that holds no model (a LoRA adapter folder, trainers/adapters.py)."""
    return LDNetProcessor.from_pretrained(str(path))


def build_model_and_processor(model_args: ModelArguments, max_length: int | None = 512, overflow: str = "window"):
    """``(model, processor)`` from :class:`ModelArguments` (:func:`load_model_and_processor`).

    ``max_length=None`` keeps a saved processor's ``max_length`` (512 for a fresh one)."""
    return load_model_and_processor(
        model_args.model_name_or_path,
        processor_name_or_path=model_args.processor_name_or_path,
        max_length=max_length,
        overflow=overflow,
        **model_args.config_overrides(),
    )


def load_checkpoint(path: str, max_length: int | None = None):
    """``(model, processor)`` of a saved LDNet folder, in eval mode (the processor's saved settings kept)."""
    model, processor = load_model_and_processor(path, max_length=max_length, require_ldnet=True)
    return model.eval(), processor


# ---------------------------------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------------------------------


def load_data(
    benchmark: str | None = None,
    data_dir: str | None = None,
    data: str | None = None,
    benchmark_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """All splits (``{name: datasets.Dataset}``) of a registered benchmark converted from ``data_dir`` (default
    ``<shared_data>/<shared_subdir>``), or of a converted folder / single unified file ``data``."""
    if benchmark:
        return dict(load_benchmark(benchmark, data_dir, **dict(benchmark_options or {})))
    if not data:
        raise ValueError("give --benchmark (+ --data_dir) or --data")
    return dict(load_unified(data))


def pick(splits: Mapping[str, Any], split: str, source: str = "data"):
    """``splits[split]`` with the usual aliases (``dev`` = ``validation``...); a single-file source has one split."""
    name = pick_split(splits, split)
    if name is None:
        if len(splits) == 1:
            return next(iter(splits.values()))
        raise KeyError(f"{source}: no split {split!r} (have {list(splits)})")
    return splits[name]


def load_data_split(
    split: str,
    benchmark: str | None = None,
    data_dir: str | None = None,
    data: str | None = None,
    benchmark_options: Mapping[str, Any] | None = None,
):
    """One split of :func:`load_data` as a ``datasets.Dataset``."""
    return pick(load_data(benchmark, data_dir, data, benchmark_options), split, benchmark or str(data))


def load_splits(data_args: DataArguments) -> dict[str, Any]:
    """``{"train"|"dev"|"test": datasets.Dataset}`` from the data arguments (each optional); with their sources and
    conversion reports: ``trainers.data.load_training_data``."""
    return load_training_data(data_args, parse_options(data_args.benchmark_options)).splits


__all__ = [
    "DataArguments",
    "ModelArguments",
    "build_model_and_processor",
    "is_ldnet_checkpoint",
    "load_checkpoint",
    "load_data",
    "load_data_split",
    "load_model_and_processor",
    "load_processor",
    "load_splits",
    "parse_options",
    "pick",
    "portable",
    "portable_path",
    "setup_logging",
]
