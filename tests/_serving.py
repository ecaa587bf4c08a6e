"""A tiny random LDNet saved as a pipeline folder (model + processor + card), for the serving / app tests."""

from __future__ import annotations

from pathlib import Path

from ldnet_tiny import decoding_model, tiny_processor
from transformers import pipeline

SCHEMA = {"ent": ["person", "location", "organization"], "rel": ["live in", "work for"]}
TEXTS = [
    "Jerry Smith lives in New York and works for Acme Corp .",
    "Tom visited Paris .",
    "Alice Brown works for Globex in Boston .",
    "Dan Stone lives in Oslo .",
]


def save_tiny_model(folder: Path, minilm: Path) -> Path:
    """Save a tiny (1-layer, 32-d) random model whose decoding yields entities and relations on ``TEXTS``."""
    proc = tiny_processor(minilm, max_length=64, window_stride=8)
    model = decoding_model(len(proc.tokenizer), max_length=64, window_stride=8)
    model.config.model_card_info = {
        "schema": {"conll04": SCHEMA},
        "training_data": ["tiny random (tests)"],
        "metrics": {"tiny": {"ent_f1": 0.0}},
    }
    ie = pipeline("universal-ie", model=model, processor=proc, device="cpu")
    ie.save_pretrained(folder)
    return folder
