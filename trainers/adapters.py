"""Fine-tuning without forgetting: LoRA adapters (``peft``) and encoder freezing for ``ldnet-train`` (issue 28).

* :class:`AdapterArguments`: ``--lora`` (``--lora_r``, ``--lora_alpha``, ``--lora_dropout``,
  ``--lora_target_modules``), ``--freeze_encoder``, ``--freeze_layers N``; :func:`apply_adapter_arguments` applies
  them to a loaded model before the trainer is built.
* LoRA wraps the whole :class:`~modeling_ldnet.LDNetModel` in a ``peft.PeftModel``: LoRA matrices on the encoder's
  linear layers (:data:`LORA_TARGET_DEFAULTS` per encoder family), the span-graph head (``pointer``) and the
  label-drop gate (``bce_linear``) trained in full as peft ``modules_to_save`` -- so peft saves, loads and switches
  them (``set_adapter``) together with the LoRA weights. Everything else (encoder, embeddings, ``score_bias``,
  a vision fusion) stays frozen: it is the base's.
* An adapter folder (what ``ldnet-train --lora`` saves): ``adapter_config.json`` + ``adapter_model.safetensors``
  (peft's files: LoRA + heads), ``ldnet_adapter.json`` (the base it was trained on: path / Hub id, hidden size,
  vocabulary; the config values the training recorded: trained labels, default instruction, calibrated thresholds,
  card information), the processor, and ``README.md`` naming the base. No ``config.json``: with one, transformers
  would take the folder for a full model and look for the base weights in it.
* :func:`load_adapter_model` (base from the folder's record, or given), :func:`merge_adapter` (a plain LDNet folder
  for ONNX export / int8; console script ``ldnet-merge-adapter``).

Bad input: a base that does not match the adapter's (hidden size, vocabulary) -> :class:`AdapterError` naming both;
an unreadable adapter file -> :class:`AdapterError` naming the file; an unknown ``--lora_target_modules`` name -> a
``ValueError`` listing the encoder's module names.
"""

from __future__ import annotations

import json
import logging
import os
import re
from argparse import ArgumentParser
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCardData
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers.pytorch_utils import Conv1D

from modeling_ldnet import LDNetModel
from modeling_ldnet.modelcard_ldnet import CARD_INFO_ATTR, portable_model_id

from .console import console_entry
from .loading import is_ldnet_checkpoint, load_model_and_processor, load_processor

logger = logging.getLogger("ldnet.train")

#: LoRA target modules (leaf names of the encoder's linear layers) per encoder ``model_type``: attention
#: projections and the feed-forward layers ("dense" = attention output, intermediate and output in the BERT layout)
LORA_TARGET_DEFAULTS: dict[str, tuple[str, ...]] = {
    "bert": ("query", "key", "value", "dense"),
    "roberta": ("query", "key", "value", "dense"),
    "xlm-roberta": ("query", "key", "value", "dense"),
    "camembert": ("query", "key", "value", "dense"),
    "electra": ("query", "key", "value", "dense"),
    "deberta-v2": ("query_proj", "key_proj", "value_proj", "dense"),
    "deberta": ("in_proj", "dense"),
    "distilbert": ("q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"),
    "modernbert": ("Wqkv", "Wo", "Wi"),
}
#: the LDNet heads that train in full next to the LoRA matrices (peft ``modules_to_save``)
HEAD_MODULES = ("pointer", "bce_linear")
#: learning rate of the LoRA matrices when ``--learning_rate`` is not given (the full-fine-tuning 2e-5 barely moves
#: a zero-initialised LoRA B)
LORA_LEARNING_RATE = 5e-4
ADAPTER_INFO_FILE = "ldnet_adapter.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_FORMAT = "ldnet-lora/1"
#: config attributes a training run changes and an adapter carries (applied when it is loaded / activated)
ADAPTER_CONFIG_KEYS: tuple[str, ...] = ("trained_labels", "default_instruction", "decode_channel_thresholds", "decode_threshold",
                       "decode_label_thresholds", "relation_arg_types", CARD_INFO_ATTR)
_LINEAR_TYPES = (nn.Linear, Conv1D)


class AdapterError(ValueError):
    """An adapter folder that cannot be used: unreadable files, or a base it was not trained on."""


@dataclass
class AdapterArguments:
    """``ldnet-train`` flags for LoRA adapters and encoder freezing (trainers/adapters.py, docs/adapters.md)."""

    lora: bool = field(
        default=False,
        metadata={"help": "Train a LoRA adapter (peft) on a saved LDNet instead of the whole model: the encoder stays "
                          "frozen, the span-graph and label-drop heads train in full; saves an adapter folder."},
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA alpha (scale alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: str | None = field(
        default=None,
        metadata={"help": "Comma-separated encoder module names to adapt (leaf names like 'query' or dotted suffixes "
                          "like 'attention.output.dense'); default per encoder family (BERT / XLM-R: query, key, "
                          "value, dense; DeBERTa-v2/v3: query_proj, key_proj, value_proj, dense)."},
    )
    freeze_encoder: bool = field(
        default=False, metadata={"help": "Full fine-tuning of the heads only: every encoder parameter is frozen."}
    )
    freeze_layers: int | None = field(
        default=None,
        metadata={"help": "Freeze the embeddings and the first N encoder layers (the rest and the heads train)."},
    )

    def target_modules(self) -> list[str] | None:
        if self.lora_target_modules is None:
            return None
        names = [n.strip() for n in self.lora_target_modules.split(",") if n.strip()]
        if not names:
            raise ValueError("--lora_target_modules: no module name given")
        return names

    @property
    def active(self) -> bool:
        return bool(self.lora or self.freeze_encoder or self.freeze_layers is not None)


# ---------------------------------------------------------------------------------------------------------------
# module names, LoRA config
# ---------------------------------------------------------------------------------------------------------------


def base_ldnet(model: nn.Module) -> LDNetModel:
    """The :class:`LDNetModel` inside ``model`` (itself, or the one a ``PeftModel`` wraps)."""
    inner = model.get_base_model() if isinstance(model, PeftModel) else model
    if not isinstance(inner, LDNetModel):
        raise TypeError(f"expected an LDNetModel (or a PeftModel around one), got {type(inner).__name__}")
    return inner


def encoder_family(model: nn.Module) -> str:
    """The encoder's ``model_type`` (``bert``, ``xlm-roberta``, ``deberta-v2`` ...)."""
    return str(getattr(base_ldnet(model).plm.config, "model_type", "unknown"))


def encoder_linear_names(model: nn.Module) -> list[str]:
    """Full names (inside the encoder) of the encoder's linear layers: what LoRA can adapt."""
    return [n for n, m in base_ldnet(model).plm.named_modules() if n and isinstance(m, _LINEAR_TYPES)]


def encoder_module_names(model: nn.Module) -> list[str]:
    """The distinct leaf names of the encoder's linear layers (``dense``, ``key``, ``query``, ``value`` for BERT)."""
    return sorted({n.rsplit(".", 1)[-1] for n in encoder_linear_names(model)})


def resolve_target_modules(model: nn.Module, names: Sequence[str] | None = None) -> list[str]:
    """``names`` (or the family default of :data:`LORA_TARGET_DEFAULTS`), each checked to name at least one linear
    layer of the encoder (a leaf name or a dotted suffix); an unknown one is a ``ValueError`` listing the encoder's
    module names."""
    family = encoder_family(model)
    given = names is not None
    if names is None:
        if family not in LORA_TARGET_DEFAULTS:
            raise ValueError(f"--lora: no default target modules for encoder family {family!r}; give "
                             f"--lora_target_modules from its module names: {', '.join(encoder_module_names(model))}")
        names = LORA_TARGET_DEFAULTS[family]
    linear = encoder_linear_names(model)
    unknown = [t for t in names if not any(n == t or n.endswith("." + t) for n in linear)]
    if unknown:
        what = "--lora_target_modules" if given else f"default target modules of {family!r}"
        raise ValueError(f"{what}: {', '.join(map(repr, unknown))} not found among the linear layers of the "
                         f"{family} encoder; its module names: {', '.join(encoder_module_names(model))}")
    return list(dict.fromkeys(names))


def target_regex(names: Sequence[str]) -> str:
    """A peft ``target_modules`` regex (full match on module names) that keeps LoRA inside the encoder (``plm.``):
    a leaf name like ``dense`` must not also catch the span-graph head's ``pointer.gp.dense``."""
    alternatives = "|".join(re.escape(n) for n in names)
    return rf"plm\.(?:.*\.)?(?:{alternatives})"


def lora_config(model: nn.Module, args: AdapterArguments) -> LoraConfig:
    """The ``peft.LoraConfig`` of ``args`` for ``model`` (targets resolved and checked; heads as
    ``modules_to_save``)."""
    if args.lora_r < 1:
        raise ValueError(f"--lora_r must be >= 1, got {args.lora_r}")
    if args.lora_alpha <= 0:
        raise ValueError(f"--lora_alpha must be > 0, got {args.lora_alpha}")
    if not 0.0 <= args.lora_dropout < 1.0:
        raise ValueError(f"--lora_dropout must be in [0, 1), got {args.lora_dropout}")
    targets = resolve_target_modules(model, args.target_modules())
    inner = base_ldnet(model)
    heads = [h for h in HEAD_MODULES if getattr(inner, h, None) is not None]
    return LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=target_regex(targets), modules_to_save=heads, bias="none")


def add_lora(model: LDNetModel, args: AdapterArguments, base_name_or_path: str | os.PathLike | None = None
             ) -> PeftModel:
    """``model`` wrapped in a trainable ``PeftModel`` (LoRA on the encoder, heads in full). The base recorded in
    the adapter config is ``base_name_or_path`` (absolute for a local folder), default ``model.name_or_path``."""
    config = lora_config(model, args)
    targets = resolve_target_modules(model, args.target_modules())
    base = str(base_name_or_path or model.name_or_path or "")
    config.base_model_name_or_path = os.path.abspath(base) if base and os.path.isdir(base) else base
    # peft records model.name_or_path as the base: an absolute path (or the Hub id), valid from any directory
    model.name_or_path = config.base_model_name_or_path
    peft_model = get_peft_model(model, config)
    n_train = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in peft_model.parameters())
    logger.info("LoRA r=%d alpha=%g on %s (%s); trainable parameters %d of %d (%.2f%%)", args.lora_r,
                args.lora_alpha, ", ".join(targets),
                encoder_family(model), n_train, n_all, 100.0 * n_train / max(n_all, 1))
    return peft_model


# ---------------------------------------------------------------------------------------------------------------
# freezing
# ---------------------------------------------------------------------------------------------------------------


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer layers (``encoder.layer`` in BERT / XLM-R / DeBERTa; otherwise the
    ``ModuleList`` with ``num_hidden_layers`` entries)."""
    plm = base_ldnet(model).plm
    layers = getattr(getattr(plm, "encoder", None), "layer", None)
    if isinstance(layers, nn.ModuleList):
        return layers
    n = getattr(plm.config, "num_hidden_layers", None)
    for _, module in plm.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"--freeze_layers: cannot find the layer list of the {encoder_family(model)} encoder")


def _freeze(modules: Sequence[nn.Module]) -> int:
    n = 0
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)
            n += 1
    return n


def freeze_encoder(model: nn.Module) -> list[str]:
    """Freeze every encoder parameter (``requires_grad=False``, so the optimiser never holds them); returns their
    names (``plm.*``)."""
    plm = base_ldnet(model).plm
    _freeze([plm])
    return [f"plm.{n}" for n, _ in plm.named_parameters()]


def freeze_layers(model: nn.Module, n: int) -> list[str]:
    """Freeze the embeddings and the first ``n`` encoder layers; returns the frozen parameter names."""
    layers = encoder_layers(model)
    if not 0 <= n <= len(layers):
        raise ValueError(f"--freeze_layers must be in 0..{len(layers)} (the {encoder_family(model)} encoder has "
                         f"{len(layers)} layers), got {n}")
    plm = base_ldnet(model).plm
    embeddings = getattr(plm, "embeddings", None) or plm.get_input_embeddings()
    frozen = [embeddings, *list(layers)[:n]]
    _freeze(frozen)
    ids = {id(p) for m in frozen for p in m.parameters()}
    return [f"plm.{name}" for name, p in plm.named_parameters() if id(p) in ids]


def apply_adapter_arguments(model: LDNetModel, args: AdapterArguments, model_name_or_path: str | os.PathLike,
                            training_args: Any = None, learning_rate_given: bool = True) -> nn.Module:
    """Apply ``--lora`` / ``--freeze_encoder`` / ``--freeze_layers`` to a loaded model (returns it, or the
    ``PeftModel`` around it). Under ``--lora`` the encoder learning rate (``--learning_rate``, default
    :data:`LORA_LEARNING_RATE` when not given) applies to the LoRA matrices and ``--head_learning_rate`` to the
    heads."""
    if args.lora and (args.freeze_encoder or args.freeze_layers is not None):
        raise ValueError("--lora already freezes the whole encoder (only the LoRA matrices and the heads train); "
                         "--freeze_encoder / --freeze_layers are for full fine-tuning")
    if args.freeze_encoder and args.freeze_layers is not None:
        raise ValueError("--freeze_encoder freezes every layer: give it or --freeze_layers N, not both")
    fresh = not is_ldnet_checkpoint(model_name_or_path)
    if args.lora:
        if fresh:
            raise ValueError(f"--lora adapts a trained LDNet (a saved folder); {str(model_name_or_path)!r} is an "
                             "encoder, whose new heads and tag-token embeddings would have no saved base: train it "
                             "with ldnet-train first (full fine-tuning)")
        peft_model = add_lora(model, args, model_name_or_path)
        if training_args is not None:
            # the LoRA matrices live under base_model.model.plm.*: they take the encoder learning rate
            prefix = getattr(training_args, "encoder_prefix", "plm.")
            training_args.encoder_prefix = "base_model.model." + prefix.removeprefix("base_model.model.")
            if not learning_rate_given:
                training_args.learning_rate = LORA_LEARNING_RATE
                logger.info("--lora: learning rate of the LoRA matrices %g (give --learning_rate to change it)",
                            LORA_LEARNING_RATE)
        return peft_model
    frozen: list[str] = []
    if args.freeze_encoder:
        frozen = freeze_encoder(model)
    elif args.freeze_layers is not None:
        frozen = freeze_layers(model, args.freeze_layers)
    if frozen:
        n_frozen = sum(p.numel() for n, p in model.named_parameters() if n in set(frozen))
        logger.info("frozen: %d encoder tensors (%d parameters); %d parameters train", len(frozen), n_frozen,
                    sum(p.numel() for p in model.parameters() if p.requires_grad))
        if fresh:
            logger.warning("%s is a fresh encoder: the embeddings of the LDNet tag tokens added to it start "
                           "untrained and stay frozen", model_name_or_path)
    return model


# ---------------------------------------------------------------------------------------------------------------
# adapter folders
# ---------------------------------------------------------------------------------------------------------------


def base_signature(model: nn.Module) -> dict[str, Any]:
    """What an adapter must match in its base: hidden size, vocabulary (embedding rows), encoder family, layers."""
    inner = base_ldnet(model)
    return {
        "hidden_size": int(inner.config.hidden_size),
        "vocab_size": int(inner.get_input_embeddings().num_embeddings),
        "encoder_model_type": encoder_family(inner),
        "num_hidden_layers": int(getattr(inner.plm.config, "num_hidden_layers", 0) or 0),
    }


def _config_values(config: Any) -> dict[str, Any]:
    return {k: getattr(config, k) for k in ADAPTER_CONFIG_KEYS if getattr(config, k, None) is not None}


def is_adapter_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a local folder holding a peft adapter (``adapter_config.json``)."""
    return (Path(path) / ADAPTER_CONFIG_FILE).is_file()


def save_adapter_folder(model: PeftModel, save_directory: str | os.PathLike, processor: Any = None,
                        metrics: Mapping[str, Any] | None = None, write_weights: bool = True) -> Path:
    """Write an adapter folder: peft's files (unless ``write_weights=False``: the trainer wrote them), the
    processor, ``ldnet_adapter.json`` and the model card. Returns the folder."""
    folder = Path(save_directory)
    if write_weights:
        model.save_pretrained(folder)
        if processor is not None:
            processor.save_pretrained(folder)
    peft_config = model.peft_config[model.active_adapter]
    inner = base_ldnet(model)
    info = {
        "format": ADAPTER_FORMAT,
        "base_model_name_or_path": peft_config.base_model_name_or_path,
        "base": base_signature(model),
        "config": json.loads(json.dumps(_config_values(inner.config))),
    }
    if metrics:
        info["metrics"] = dict(metrics)
    (folder / ADAPTER_INFO_FILE).write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(render_adapter_card(info, peft_config), encoding="utf-8")
    return folder


def render_adapter_card(info: Mapping[str, Any], peft_config: LoraConfig) -> str:
    """The adapter folder's ``README.md``: which base, LoRA settings, trained labels, metrics, how to load."""
    base = info.get("base_model_name_or_path") or "?"
    hub_base = portable_model_id(base)
    data = ModelCardData(library_name="peft", base_model=hub_base,
                         tags=["ldnet", "information-extraction", "universal-ie", "lora", "peft"])
    sig = info.get("base", {})
    lines = ["---", data.to_yaml(), "---", "", "# LDNet LoRA adapter", "",
             f"A LoRA adapter (peft) with its own span-graph and label-drop heads for the LDNet base **`{base}`** "
             f"({sig.get('encoder_model_type')} encoder, hidden size {sig.get('hidden_size')}, vocabulary "
             f"{sig.get('vocab_size')}). The base's weights are not in this folder.", "",
             "## LoRA", "", "| | |", "|---|---|",
             f"| rank | {peft_config.r} |", f"| alpha | {peft_config.lora_alpha} |",
             f"| dropout | {peft_config.lora_dropout} |", f"| target modules | `{peft_config.target_modules}` |",
             f"| trained in full | {', '.join(peft_config.modules_to_save or [])} |", ""]
    labels = (info.get("config") or {}).get("trained_labels")
    if labels:
        lines += ["## Labels seen in training", ""]
        lines += [f"- {task}: {', '.join(map(str, v))}" for task, v in labels.items()] + [""]
    metrics = info.get("metrics") or {}
    if metrics:
        lines += ["## Metrics", "", "| split | metric | value |", "|---|---|---|"]
        for split, per in metrics.items():  # card_metrics form: {split: {metric: value}}; F1 and loss shown
            for name, value in (per.items() if isinstance(per, Mapping) else [("", per)]):
                if name.endswith("f1") or name in ("", "loss"):
                    lines.append(f"| {split} | {name} | {value} |")
        lines += [""]
    lines += ["## Usage", "", "```python", "from trainers.adapters import load_adapter_model", "",
              'model, processor = load_adapter_model("path/to/this/folder")  # loads the base named above', "```", "",
              "Without the ldnet package (the base folder holds the remote code):", "", "```python",
              "from transformers import pipeline", "",
              'ie = pipeline("universal-ie", model="path/to/this/folder", trust_remote_code=True)', "```", "",
              "A plain merged folder (ONNX export, int8): `ldnet-merge-adapter --adapter path/to/this/folder --out "
              "merged/`.", ""]
    return "\n".join(lines)


def read_adapter_folder(path: str | os.PathLike) -> tuple[LoraConfig, dict[str, Any]]:
    """``(peft config, ldnet_adapter.json contents)`` of an adapter folder, every file checked readable first (an
    unreadable one is an :class:`AdapterError` naming it; ``ldnet_adapter.json`` is optional: ``{}``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise AdapterError(f"no adapter folder at {str(path)!r}")
    cfg_path = folder / ADAPTER_CONFIG_FILE
    if not cfg_path.is_file():
        raise AdapterError(f"{folder}: not an adapter folder (no {ADAPTER_CONFIG_FILE})")
    try:
        json.loads(cfg_path.read_text(encoding="utf-8"))
        config = LoraConfig.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as exc:
        raise AdapterError(f"{cfg_path}: unreadable adapter config ({type(exc).__name__}: {exc})") from exc
    weights = folder / ADAPTER_WEIGHTS_FILE
    if not weights.is_file():
        raise AdapterError(f"{folder}: no {ADAPTER_WEIGHTS_FILE}")
    try:
        with safe_open(str(weights), framework="pt") as fh:
            for key in fh.keys():
                fh.get_tensor(key)  # reads every tensor: a truncated file fails here, not halfway through loading
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise AdapterError(f"{weights}: corrupt adapter weights ({type(exc).__name__}: {exc})") from exc
    info: dict[str, Any] = {}
    info_path = folder / ADAPTER_INFO_FILE
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AdapterError(f"{info_path}: unreadable ({type(exc).__name__}: {exc})") from exc
    return config, info


def check_base(model: nn.Module, info: Mapping[str, Any], adapter: str | os.PathLike,
               base_name: str | os.PathLike | None = None) -> None:
    """An :class:`AdapterError` naming both when ``model`` is not the kind of base the adapter was trained on
    (hidden size, vocabulary)."""
    want = info.get("base") or {}
    have = base_signature(model)
    diffs = [k for k in ("hidden_size", "vocab_size") if k in want and want[k] != have[k]]
    if diffs:
        def fmt(sig: Mapping[str, Any]) -> str:
            return ", ".join(f"{k.replace('_size', '')} {sig.get(k)}" for k in ("hidden_size", "vocab_size"))

        raise AdapterError(
            f"adapter {str(adapter)!r} was trained on base {info.get('base_model_name_or_path')!r} ({fmt(want)}); "
            f"the base {str(base_name or getattr(base_ldnet(model), 'name_or_path', '?'))!r} has {fmt(have)}")


def apply_adapter_config(model: nn.Module, info: Mapping[str, Any]) -> None:
    """Set the config values the adapter's training recorded (trained labels, default instruction, calibrated
    thresholds, card information) on the base's config."""
    config = base_ldnet(model).config
    for key, value in (info.get("config") or {}).items():
        if key in ADAPTER_CONFIG_KEYS:
            setattr(config, key, value)


def _load_base(base: str | os.PathLike) -> tuple[LDNetModel, Any]:
    """A saved LDNet base: a local folder (the training loader) or a Hub id (``from_pretrained``)."""
    path = str(base)
    if os.path.isdir(path) or os.path.isabs(path) or path.startswith((".", "~")):
        return load_model_and_processor(path, require_ldnet=True)
    return load_model_and_processor(path, hub_ldnet=True)


def load_adapter_model(adapter: str | os.PathLike, base: str | os.PathLike | nn.Module | None = None, *,
                       adapter_name: str = "default", device: str | None = None, is_trainable: bool = False,
                       apply_config: bool = True) -> tuple[PeftModel, Any]:
    """``(PeftModel, processor)``: the adapter folder ``adapter`` on its base.

    ``base``: ``None`` (the base recorded in the adapter config), a saved LDNet folder / Hub id, an ``LDNetModel``
    or a ``PeftModel`` that already holds other adapters (the new one is added as ``adapter_name`` and made active).
    The processor is the adapter folder's when it holds one, else the base's (``None`` for an in-memory base).
    """
    config, info = read_adapter_folder(adapter)
    processor = None
    if base is None or isinstance(base, (str, os.PathLike)):
        base_path = base if base is not None else (config.base_model_name_or_path or info.get("base_model_name_or_path"))
        if not base_path:
            raise AdapterError(f"{adapter}: the adapter config names no base (base_model_name_or_path); pass base=")
        try:
            model, processor = _load_base(base_path)
        except (OSError, ValueError) as exc:
            raise AdapterError(f"adapter {str(adapter)!r}: cannot load its base {str(base_path)!r} "
                               f"({type(exc).__name__}: {exc}); pass the base explicitly (base= / --base)") from exc
        base_name = base_path
    else:
        model, base_name = base, getattr(base_ldnet(base), "name_or_path", None)
    check_base(model, info, adapter, base_name)
    if isinstance(model, PeftModel):
        if adapter_name in model.peft_config:
            raise AdapterError(f"adapter name {adapter_name!r} is already loaded")
        model.load_adapter(str(adapter), adapter_name=adapter_name, is_trainable=is_trainable)
        model.set_adapter(adapter_name)
        peft_model = model
    else:
        peft_model = PeftModel.from_pretrained(model, str(adapter), adapter_name=adapter_name,
                                               is_trainable=is_trainable)
    if apply_config:
        apply_adapter_config(peft_model, info)
    if (Path(adapter) / "processor_config.json").is_file():
        processor = load_processor(adapter)
    if device is not None:
        peft_model.to(device)
    if not is_trainable:
        peft_model.eval()
    return peft_model, processor


def merge_adapter(adapter: str | os.PathLike, out_dir: str | os.PathLike,
                  base: str | os.PathLike | None = None) -> Path:
    """Merge the adapter into its base and save a plain LDNet folder (model + processor + card) at ``out_dir``:
    what ONNX export and int8 quantisation take. Returns ``out_dir``."""
    peft_model, processor = load_adapter_model(adapter, base)
    merged = peft_model.merge_and_unload()
    if not isinstance(merged, LDNetModel):
        raise TypeError(f"merging {adapter} gave a {type(merged).__name__}, not an LDNetModel")
    out = Path(out_dir)
    merged.save_pretrained(out)
    if processor is not None:
        processor.save_pretrained(out)
    return out


def merge_main(argv: list[str] | None = None) -> Path:
    """``ldnet-merge-adapter --adapter DIR --out DIR [--base DIR_OR_HUB_ID]``."""
    p = ArgumentParser(prog="ldnet-merge-adapter", description="Merge an LDNet LoRA adapter into its base: a plain "
                       "LDNet folder (for ONNX export / int8).")
    p.add_argument("--adapter", required=True, help="adapter folder (ldnet-train --lora)")
    p.add_argument("--out", required=True, help="output folder of the merged model")
    p.add_argument("--base", default=None, help="base LDNet folder or Hub id (default: the one the adapter records)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s - %(name)s - %(message)s")
    out = merge_adapter(a.adapter, a.out, a.base)
    logger.info("merged %s into %s", a.adapter, out)
    return out


merge_cli = console_entry("ldnet-merge-adapter", merge_main)


__all__ = [
    "ADAPTER_INFO_FILE",
    "HEAD_MODULES",
    "LORA_LEARNING_RATE",
    "LORA_TARGET_DEFAULTS",
    "AdapterArguments",
    "AdapterError",
    "add_lora",
    "apply_adapter_arguments",
    "apply_adapter_config",
    "base_ldnet",
    "base_signature",
    "check_base",
    "encoder_layers",
    "encoder_module_names",
    "freeze_encoder",
    "freeze_layers",
    "is_adapter_folder",
    "load_adapter_model",
    "lora_config",
    "merge_adapter",
    "merge_main",
    "read_adapter_folder",
    "resolve_target_modules",
    "save_adapter_folder",
    "target_regex",
]
