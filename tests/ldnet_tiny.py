"""The tiny test kit, one module: synthetic records, the tiny random LDNet factory, processors, and the helpers of
the pipeline / multimodal / Hub / ONNX / server tests (an isolated child interpreter, answer comparison).

One factory builds every tiny model (:func:`tiny_model`); :func:`decoding_model` is its preset for the decoding
tests (wider heads, spread logits). ``tests/conftest.py`` exposes the factory as the ``tiny_ldnet`` fixture.
"""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig

from modeling_ldnet import LDNetConfig, LDNetModel, LDNetProcessor
from processing.paths import minilm_path

REPO = Path(__file__).resolve().parents[1]

PEOPLE = ["Alice Smith", "Bob Jones", "Carla Diaz", "Dan Brown", "Eve Stone", "Frank Hall", "Gina Park", "Hugo Wolf"]
ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella", "Soylent", "Hooli"]
PLACES = ["Paris", "Boston", "Lagos", "Lima", "Oslo", "Kyoto"]
INSTRUCTION = "Find entities and relations."
SCHEMA = {"ent": ["person", "organization", "location"], "rel": ["work for", "live in"]}

TINY_VIT = {"img_size": 32, "patch_size": 16, "depth": 1, "embed_dim": 32, "num_heads": 2}
IMAGE_CONFIG = {
    "input_size": [3, 32, 32],
    "interpolation": "bicubic",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "crop_pct": 0.9,
    "crop_mode": "center",
}

_TOKENIZER = None


# ---------------------------------------------------------------------------------------------------------------
# tokenizer / processors
# ---------------------------------------------------------------------------------------------------------------


def tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = AutoTokenizer.from_pretrained(str(minilm_path()))
    return _TOKENIZER


def processor(max_length: int = 64, **kw) -> LDNetProcessor:
    return LDNetProcessor(tokenizer=copy.deepcopy(tokenizer()), max_length=max_length, **kw)


def tiny_processor(minilm: Path, max_length: int = 64, window_stride: int = 8, image: bool = False) -> LDNetProcessor:
    tok = AutoTokenizer.from_pretrained(minilm)
    return LDNetProcessor(
        tokenizer=tok,
        max_length=max_length,
        window_stride=window_stride,
        image_config=IMAGE_CONFIG if image else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# the tiny model factory
# ---------------------------------------------------------------------------------------------------------------


def tiny_config(vocab_size: int, dropout: float | None = 0.0, head_dim: int = 8, max_length: int | None = None,
                window_stride: int | None = None, **kw) -> LDNetConfig:
    """A 1-layer, 32-wide BERT encoder under LDNet. ``dropout=None`` keeps BertConfig's defaults (0.1)."""
    drop = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    enc = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **drop,
    )
    if max_length is not None:
        kw["max_seq_length"] = max_length
    if window_stride is not None:
        kw["window_stride"] = window_stride
    return LDNetConfig(encoder_config=enc.to_dict(), head_dim=head_dim, **kw)


def tiny_model(proc_or_vocab: LDNetProcessor | int, seed: int = 0, dropout: float | None = 0.0,
               spread: float | None = None, **kw) -> LDNetModel:
    """The one tiny random LDNet factory (seeded). ``proc_or_vocab``: a processor (its tokenizer's size) or a
    vocabulary size; ``spread`` multiplies the pointer weights (the random init gives near-zero logits, so decoding
    tests spread them to get some items); ``kw`` goes to :func:`tiny_config`."""
    vocab = proc_or_vocab if isinstance(proc_or_vocab, int) else len(proc_or_vocab.tokenizer)
    torch.manual_seed(seed)
    model = LDNetModel(tiny_config(vocab, dropout=dropout, **kw))
    if spread is not None:
        model.eval()
        with torch.no_grad():
            model.pointer.gp.dense.weight.mul_(spread)
    return model


def decoding_model(vocab_size: int, seed: int = 0, max_length: int = 64, window_stride: int = 8, **kw) -> LDNetModel:
    """The decoding tests' preset of :func:`tiny_model` (head dim 16, 64-token windows of stride 8, logits spread
    x40, eval mode)."""
    kw.setdefault("head_dim", 16)
    return tiny_model(vocab_size, seed, dropout=None, spread=40.0, max_length=max_length, window_stride=window_stride,
                      **kw).eval()


def tiny_vision_kwargs(**overrides) -> dict:
    return {
        "vision_model_name": "vit_tiny_patch16_224",
        "vision_config": dict(TINY_VIT),
        "vision_mlp_hidden": 16,
        **overrides,
    }


def save_tiny_checkpoint(path: Path, seed: int = 0, max_length: int = 64, **kw) -> Path:
    proc = processor(max_length=max_length)
    model = tiny_model(proc, seed=seed, **kw)
    model.save_pretrained(path)
    proc.save_pretrained(path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# synthetic records
# ---------------------------------------------------------------------------------------------------------------

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


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    return path


# ---------------------------------------------------------------------------------------------------------------
# pipeline / Hub / ONNX / server helpers
# ---------------------------------------------------------------------------------------------------------------


def isolated_python(code: str, cwd: Path, timeout: int = 240, extra_env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter where this repository and its editable install are NOT importable.

    ``-I -S``: no user site, no PYTHON* variables, no ``site`` (so no ``.pth`` files, hence no editable finder);
    the venv's site-packages is added as a plain path. The child must print one JSON line last.
    """
    site = sysconfig.get_paths()["purelib"]
    prelude = textwrap.dedent(
        f"""
        import sys
        sys.path = [p for p in sys.path if p and {str(REPO)!r} not in p] + [{site!r}]
        try:
            import modeling_ldnet  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("modeling_ldnet is importable in the isolated child: " + modeling_ldnet.__file__)
        """
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "HF_HOME": str(cwd / "hf_home"),
        "HF_MODULES_CACHE": str(cwd / "hf_modules"),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "TRANSFORMERS_OFFLINE": os.environ.get("TRANSFORMERS_OFFLINE", "1"),
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    env.update(extra_env or {})
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", prelude + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def strip_scores(ans: dict) -> dict:
    return json.loads(json.dumps(ans, sort_keys=True), object_hook=lambda d: {k: v for k, v in d.items() if k != "score"})


def scores(ans: dict) -> list[float]:
    out: list[float] = []

    def walk(x):
        if isinstance(x, dict):
            if "score" in x:
                out.append(x["score"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(ans)
    return out


def assert_same_answers(a, b):
    a, b = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
    assert [strip_scores(x) for x in a] == [strip_scores(x) for x in b]
    for x, y in zip(a, b):
        assert scores(x) == pytest.approx(scores(y), abs=2e-6)
