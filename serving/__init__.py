"""Serving LDNet: an HTTP API with dynamic batching (``ldnet-serve``), CPU inference backends, bulk extraction
(``ldnet-extract``), a Ray Data predictor and a spaCy component.

Everything runs on ``pipeline("universal-ie")``; this package only imports ``modeling_ldnet`` (never the reverse).
Names are imported lazily: spaCy loads every ``spacy_factories`` entry point at start-up, and importing torch and
onnxruntime there would slow down every ``spacy.blank(...)`` in the environment.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "BACKENDS": "backends",
    "OnnxLDNetModel": "backends",
    "load_pipeline": "backends",
    "BatcherClosed": "batching",
    "DynamicBatcher": "batching",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
