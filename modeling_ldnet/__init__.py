"""LDNet for HuggingFace transformers: ``from modeling_ldnet import LDNetConfig, LDNetModel, LDNetOutput``.

Importing this package registers ``ldnet`` with ``AutoConfig``, ``AutoModel`` and ``AutoProcessor``, and marks the
classes for ``register_for_auto_class`` so ``save_pretrained`` writes the code files and ``auto_map`` into the
folder (loadable elsewhere with ``trust_remote_code=True``).
"""

from transformers import AutoProcessor

from .configuration_ldnet import DEFAULT_CHANNEL_NAMES, DEFAULT_SPECIAL_TOKENS, LDNetConfig
from .modelcard_ldnet import render_model_card, write_model_card
from .modeling_ldnet import LDNetModel, LDNetOutput, LDNetPreTrainedModel
from .pipeline_ldnet import UniversalIEPipeline, default_instruction
from .processing_ldnet import EncodingReport, FeatureMeta, LDNetProcessor
from .schema import RecordError, normalize_record, validate_record

LDNetConfig.register_for_auto_class()
LDNetModel.register_for_auto_class("AutoModel")
LDNetProcessor.register_for_auto_class("AutoProcessor")
AutoProcessor.register(LDNetConfig, LDNetProcessor, exist_ok=True)
# pipeline("universal-ie") is registered by importing pipeline_ldnet (PIPELINE_REGISTRY, pt_model=AutoModel)

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
    "render_model_card",
    "validate_record",
    "write_model_card",
]
