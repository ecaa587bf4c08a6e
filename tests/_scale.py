"""A tiny saved LDNet folder and a small mixed corpus for the ldnet-extract / Ray / spaCy tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from ldnet_tiny import decoding_model, tiny_processor

SCHEMA = {"ent": ["person", "organization", "location"], "rel": ["work for", "live in"]}
PEOPLE = ["Alice Smith", "Bob Jones", "Carla Diaz", "Dan Brown", "Eve Stone", "Frank Hall"]
ORGS = ["Acme Corp", "Globex", "Initech", "Hooli"]
PLACES = ["Paris", "Boston", "Lagos", "Oslo"]


def save_tiny_folder(folder: Path, minilm: Path) -> Path:
    """1-layer 32-d random LDNet (max_length 64, so longer texts go through windows) + processor, saved."""
    proc = tiny_processor(minilm, max_length=64, window_stride=8)
    model = decoding_model(len(proc.tokenizer), max_length=64, window_stride=8)
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


def corpus(n: int = 30, seed: int = 0) -> list[dict]:
    """Records of varied length: most with their own schema (two kinds), some without (the default applies),
    and a few long texts that need several windows. ``gold`` is an extra column that must pass through."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        p, o, loc = rng.choice(PEOPLE), rng.choice(ORGS), rng.choice(PLACES)
        text = f"{p} works for {o} in {loc} ."
        if i % 9 == 4:  # long: ~25 sentences, several windows at max_length 64
            text = " ".join(f"{rng.choice(PEOPLE)} lives in {rng.choice(PLACES)} ." for _ in range(25))
        row: dict = {"id": f"doc{i}", "text": text, "gold": {"n": i}}
        if i % 3 == 0:
            row["schema"] = {"ent": ["person", "location"]}
        elif i % 3 == 1:
            row["schema"] = SCHEMA
        rows.append(row)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]
