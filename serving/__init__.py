"""Serving LDNet: an HTTP API with dynamic batching (``ldnet-serve``) and CPU inference backends.

Everything runs on ``pipeline("universal-ie")``; this package only imports ``modeling_ldnet`` (never the reverse).
"""

from .backends import BACKENDS, OnnxLDNetModel, load_pipeline
from .batching import BatcherClosed, DynamicBatcher

__all__ = ["BACKENDS", "BatcherClosed", "DynamicBatcher", "OnnxLDNetModel", "load_pipeline"]
