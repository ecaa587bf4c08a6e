"""Tiny random LDNet models and an isolated child interpreter for the pipeline / multimodal / Hub / ONNX tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig

from modeling_ldnet import LDNetConfig, LDNetModel, LDNetProcessor

REPO = Path(__file__).resolve().parents[1]

TINY_VIT = {"img_size": 32, "patch_size": 16, "depth": 1, "embed_dim": 32, "num_heads": 2}
IMAGE_CONFIG = {
    "input_size": [3, 32, 32],
    "interpolation": "bicubic",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "crop_pct": 0.9,
    "crop_mode": "center",
}


def tiny_processor(minilm: Path, max_length: int = 64, window_stride: int = 8, image: bool = False) -> LDNetProcessor:
    tok = AutoTokenizer.from_pretrained(minilm)
    return LDNetProcessor(
        tokenizer=tok,
        max_length=max_length,
        window_stride=window_stride,
        image_config=IMAGE_CONFIG if image else None,
    )


def tiny_config(vocab_size: int, max_length: int = 64, window_stride: int = 8, **kwargs) -> LDNetConfig:
    enc = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return LDNetConfig(
        encoder_config=enc.to_dict(),
        head_dim=16,
        max_seq_length=max_length,
        window_stride=window_stride,
        **kwargs,
    )


def tiny_model(vocab_size: int, seed: int = 0, **kwargs) -> LDNetModel:
    torch.manual_seed(seed)
    model = LDNetModel(tiny_config(vocab_size, **kwargs)).eval()
    # the random init gives near-zero logits; spread them so that decoding yields some items
    with torch.no_grad():
        model.pointer.gp.dense.weight.mul_(40.0)
    return model


def tiny_vision_kwargs(**overrides) -> dict:
    return {
        "vision_model_name": "vit_tiny_patch16_224",
        "vision_config": dict(TINY_VIT),
        "vision_mlp_hidden": 16,
        **overrides,
    }


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
