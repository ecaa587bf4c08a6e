"""Tiny synthetic records + tiny random LDNet models shared by the trainer / teacher / run_uie tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from conftest import minilm_path
from transformers import AutoTokenizer, BertConfig

from modeling_ldnet import LDNetConfig, LDNetModel, LDNetProcessor

PEOPLE = ["Alice Smith", "Bob Jones", "Carla Diaz", "Dan Brown", "Eve Stone", "Frank Hall", "Gina Park", "Hugo Wolf"]
ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella", "Soylent", "Hooli"]
PLACES = ["Paris", "Boston", "Lagos", "Lima", "Oslo", "Kyoto"]
INSTRUCTION = "Find entities and relations."
SCHEMA = {"ent": ["person", "organization", "location"], "rel": ["work for", "live in"]}

_TOKENIZER = None


def tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = AutoTokenizer.from_pretrained(str(minilm_path()))
    return _TOKENIZER


def processor(max_length: int = 64, **kw) -> LDNetProcessor:
    import copy

    return LDNetProcessor(tokenizer=copy.deepcopy(tokenizer()), max_length=max_length, **kw)


def _mention(text: str, s: str, start: int = 0) -> dict:
    i = text.index(s, start)
    return {"text": s, "span": [i, i + len(s)]}


def make_record(i: int, rng: random.Random, split: str = "train") -> dict:
    p, o, loc = rng.choice(PEOPLE), rng.choice(ORGS), rng.choice(PLACES)
    if rng.random() < 0.5:
        text = f"{p} works for {o} ."
        rels = [{"relation": "work for", "head": _mention(text, p), "tail": _mention(text, o)}]
        ents = [{"type": "person", **_mention(text, p)}, {"type": "organization", **_mention(text, o)}]
    else:
        text = f"{p} lives in {loc} ."
        rels = [{"relation": "live in", "head": _mention(text, p), "tail": _mention(text, loc)}]
        ents = [{"type": "person", **_mention(text, p)}, {"type": "location", **_mention(text, loc)}]
    return {
        "id": f"tiny.{split}.{i}",
        "instruction": INSTRUCTION,
        "schema": SCHEMA,
        "text": text,
        "bg": "",
        "ans": {"ent": ents, "rel": rels},
    }


def make_records(n: int, seed: int = 0, split: str = "train") -> list[dict]:
    rng = random.Random(seed)
    return [make_record(i, rng, split) for i in range(n)]


def equal_length_records(proc: LDNetProcessor, n: int, seed: int = 0) -> list[dict]:
    """``n`` records whose encodings all have the same length (for exact gradient-accumulation checks)."""
    rng = random.Random(seed)
    out, length = [], None
    i = 0
    while len(out) < n:
        r = make_record(i, rng)
        i += 1
        enc_len = len(proc(r)["input_ids"][0])
        if length is None:
            length = enc_len
        if enc_len == length:
            r["id"] = f"tiny.eq.{len(out)}"
            out.append(r)
    return out


def tiny_config(vocab_size: int, dropout: float = 0.0, **kw) -> LDNetConfig:
    enc = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return LDNetConfig(encoder_config=enc.to_dict(), head_dim=8, **kw)


def tiny_model(proc: LDNetProcessor, seed: int = 0, dropout: float = 0.0, **kw) -> LDNetModel:
    torch.manual_seed(seed)
    return LDNetModel(tiny_config(len(proc.tokenizer), dropout=dropout, **kw))


def save_tiny_checkpoint(path: Path, seed: int = 0, max_length: int = 64, **kw) -> Path:
    proc = processor(max_length=max_length)
    model = tiny_model(proc, seed=seed, **kw)
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    return path
