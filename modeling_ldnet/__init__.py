"""LDNet for HuggingFace transformers: ``from modeling_ldnet import LDNetConfig, LDNetModel, LDNetOutput``.

The first use of any name below (``from modeling_ldnet import ...`` / ``modeling_ldnet.LDNetModel``), or
:func:`register`, registers ``ldnet`` with ``AutoConfig``, ``AutoModel``, ``AutoProcessor`` and
``pipeline("universal-ie")``, and marks the classes for ``register_for_auto_class`` so ``save_pretrained`` writes
the code files and ``auto_map`` into the folder (loadable elsewhere with ``trust_remote_code=True``).

``import modeling_ldnet`` alone imports nothing heavy (PEP 562): the converters (``processing``) read the
torch-free ``vocabulary_ldnet`` / ``schema`` submodules, and a command like ``python -m processing list`` must not
pay for torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> submodule that defines it
_EXPORTS = {
    "DEFAULT_CHANNEL_NAMES": "configuration_ldnet",
    "DEFAULT_SPECIAL_TOKENS": "configuration_ldnet",
    "LDNetConfig": "configuration_ldnet",
    "render_model_card": "modelcard_ldnet",
    "write_model_card": "modelcard_ldnet",
    "LDNetModel": "modeling_ldnet",
    "LDNetOutput": "modeling_ldnet",
    "LDNetPreTrainedModel": "modeling_ldnet",
    "UniversalIEPipeline": "pipeline_ldnet",
    "default_instruction": "pipeline_ldnet",
    "EncodingReport": "processing_ldnet",
    "FeatureMeta": "processing_ldnet",
    "LDNetProcessor": "processing_ldnet",
    "RecordError": "schema",
    "normalize_record": "schema",
    "validate_record": "schema",
}
#: submodules that import neither torch nor transformers: their names are served without registering
_LIGHT = {"schema"}

_registered = False


def register() -> None:
    """Import the model classes and register them with transformers (idempotent; run by the first name used)."""
    global _registered
    if _registered:
        return
    from transformers import AutoProcessor

    from .configuration_ldnet import LDNetConfig
    from .modeling_ldnet import LDNetModel  # registers AutoConfig "ldnet" and AutoModel
    from .pipeline_ldnet import UniversalIEPipeline  # noqa: F401 - registers pipeline("universal-ie")
    from .processing_ldnet import LDNetProcessor

    LDNetConfig.register_for_auto_class()
    LDNetModel.register_for_auto_class("AutoModel")
    LDNetProcessor.register_for_auto_class("AutoProcessor")
    AutoProcessor.register(LDNetConfig, LDNetProcessor, exist_ok=True)
    _registered = True


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module not in _LIGHT:
        register()
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from .configuration_ldnet import DEFAULT_CHANNEL_NAMES, DEFAULT_SPECIAL_TOKENS, LDNetConfig
    from .modelcard_ldnet import render_model_card, write_model_card
    from .modeling_ldnet import LDNetModel, LDNetOutput, LDNetPreTrainedModel
    from .pipeline_ldnet import UniversalIEPipeline, default_instruction
    from .processing_ldnet import EncodingReport, FeatureMeta, LDNetProcessor
    from .schema import RecordError, normalize_record, validate_record

__all__ = [
    "DEFAULT_CHANNEL_NAMES",
    "DEFAULT_SPECIAL_TOKENS",
    "EncodingReport",
    "FeatureMeta",
    "LDNetConfig",
    "LDNetModel",
    "LDNetOutput",
    "LDNetPreTrainedModel",
    "LDNetProcessor",
    "RecordError",
    "UniversalIEPipeline",
    "default_instruction",
    "normalize_record",
    "register",
    "render_model_card",
    "validate_record",
    "write_model_card",
]
