#!/usr/bin/env python
"""Convert the LDNet authors' checkpoint (REx ``.pth``, e.g. the Hub's ``Downton/LDNet_Pretrain``) into an LDNet
folder: ``LDNetModel.save_pretrained`` + ``LDNetProcessor.save_pretrained`` + ``conversion_report.json``.

    python examples/convert_original_checkpoint.py --checkpoint SchemaGuidedInstructBertModel.best.pth \
        --encoder microsoft/deberta-v3-large --out runs/ldnet-original

Source of the parameter names: ``Lu-Yang666/LDNet`` @ 58796566 ``src/model.py :: SchemaGuidedInstructBertModel``
(the text model that ``conf/Pretrain_ld.yaml`` trains and the README's ``LDNet_Pretrain`` checkpoint holds):

=========================================  ================================  ========================================
reference key                              shape                             ours
=========================================  ================================  ========================================
``plm.*`` (``AutoModel`` of ``plm_dir``)   as the encoder, word embeddings   ``plm.*`` (same names; pooler dropped)
                                           resized to ``len(tokenizer)``
``pointer.gp.dense.weight`` / ``.bias``    ``[3 * 2 * 64, d_h]`` / ``[384]``  ``pointer.gp.dense.*`` (eqs 9-11)
``bce_linear.weight`` / ``.bias``          ``[1, d_h]`` / ``[1]``            ``bce_linear.*`` (label-drop gate, eq 15)
=========================================  ================================  ========================================

The reference's other sub-modules (``BCEWithLogitsLoss``, ``Sigmoid``, ``MSELoss``, ``CrossEntropyLoss``) hold no
parameters. The converted config uses the reference forms (``REFERENCE_SETTINGS``): one shared gate multiplying
the raw scores column-wise (``P = S * sigmoid(u)_j``), RoPE with theta 10000, no score prior. Keys of the
multimodal variant (``models/model.py``: an HF ``ViTModel``, ``pic_mlp``, ``linear_*_fine``, the unused Biaffine
``pointer.linear_h/linear_t/biaffine`` ...) are not converted: they are reported as unmapped (an error unless
``--allow_unmapped``), because that model's ViT is not our timm ViT and its gate multiplies by the raw logit
(SPEC §8.2), which no ``LDNetConfig`` setting reproduces.

Tag tokens: the reference (``src/transform.py :: CachedLabelPointerTransform``) adds ``[LC] [LM] [LR] [I] [TL]
[TP] [B]`` to the encoder's tokenizer in that order, i.e. ids ``len(tokenizer) + 0..6``; ``LDNetProcessor`` adds the
same strings in the same order, so the embedding rows keep their ids. The converter checks every id and the row
count instead of assuming it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer

try:  # the repository root, when the package is not installed
    import modeling_ldnet  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling_ldnet import LDNetConfig, LDNetModel, LDNetProcessor

#: Tag tokens in the order the reference adds them (``src/transform.py``), keyed by our ``special_tokens`` names.
REFERENCE_TAGS: dict[str, str] = {
    "cls_label": "[LC]",
    "mention_label": "[LM]",
    "relation_label": "[LR]",
    "instruction": "[I]",
    "text": "[TL]",
    "text_plain": "[TP]",
    "background": "[B]",
}

#: ``LDNetConfig`` settings that reproduce the reference model (``src/model.py``) and its training losses.
REFERENCE_SETTINGS: dict[str, Any] = {
    "num_channels": 3,  # cls_num=3: NNW, NSW, THW (src/utils.py encode_nnw_nsw_thw_mat channel ids 0, 1, 2)
    "use_rope": True,  # GlobalPointer(RoPE=True), theta 10000, interleaved pairs
    "rope_theta": 10000.0,
    "use_label_drop": True,  # only_use_mr=False
    "label_drop_mode": "logit",  # logits * sigmoid(bce_logits)
    "label_drop_axis": "column",  # reshape(bs, 1, 1, seq_len): scales column j
    "label_drop_per_channel": False,  # one bce_linear = Linear(d_h, 1)
    "label_drop_rate": 1.0,  # lddrop: false
    "label_drop_detach": False,
    "score_bias_init": None,  # no bias on the scores
    "span_graph_loss_reduction": "mean",  # loss.mean() over bs * cls_num
    "label_drop_loss_reduction": "padded_mean",  # (losses * bce_mask).mean() over the padded grid
    "distill_target": "logits",  # MSE on the gated logits
    "decode_threshold": 0.5,  # top_p=0.5 on sigmoid(logits)
    "decode_span_hygiene": None,  # the paper's decoder: punctuation variants of an answer are all kept
    "max_seq_length": 512,  # conf/Pretrain_ld.yaml max_seq_len
}

#: Top-level entries of a REx checkpoint (``tasks/base_task.py :: TaskBase.save``) besides ``model_state``.
_REX_MODEL_ENTRY = "model_state"
_WORD_EMBEDDINGS = "plm.embeddings.word_embeddings.weight"
_DENSE = "pointer.gp.dense.weight"

#: Reference keys that are recognised and deliberately not copied, with the reason recorded in the report.
_POOLER = re.compile(r"^plm\.pooler\.")
_BUFFERS = re.compile(r"^plm\.embeddings\.(position_ids|token_type_ids)$")
#: Keys of the multimodal reference (``models/model.py``), named in the unmapped-key error.
_MULTIMODAL = re.compile(
    r"^(image_model|pic_mlp|linear_(q|k|v)_(fine|coarse)|linear_extend_pic|combine_linear1?|cls_layer|"
    r"pointer\.(linear_h|linear_t|biaffine))\."
    r"|^pointer\.biaffine\.weight$"
)


class ConversionError(ValueError):
    """A reference checkpoint that cannot be converted as asked (the message names the file / key)."""


@dataclass
class ConversionReport:
    """What happened to every entry of the reference checkpoint (saved as ``conversion_report.json``)."""

    checkpoint: str
    sha256: str
    encoder: str
    wrapper_entries_ignored: list[str] = field(default_factory=list)  # REx ``optimizer_state``, ``history``, ...
    mapped: dict[str, str] = field(default_factory=dict)  # reference key -> our key
    dropped: dict[str, str] = field(default_factory=dict)  # reference key -> why it is not needed
    unmapped: list[str] = field(default_factory=list)  # reference keys with no counterpart
    missing: list[str] = field(default_factory=list)  # our parameters that got no reference weight
    tag_token_ids: dict[str, int] = field(default_factory=dict)  # tag string -> id (reference == ours)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_reference_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The model state dict of a reference ``.pth`` (a REx ``{"model_state", "optimizer_state", "history"}`` dict or a
    bare state dict), loaded with ``weights_only=True``. Returns the state and the wrapper entries left unread."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"--checkpoint {path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # never retried with weights_only=False: that would execute whatever the pickle holds
        raise ConversionError(
            f"--checkpoint {path}: torch.load(weights_only=True) refused it (it pickles objects other than tensors "
            f"and plain containers); re-save only its state dict with torch.save(model.state_dict(), ...). "
            f"torch said: {str(exc).splitlines()[0]}"
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise ConversionError(f"--checkpoint {path}: not a readable torch checkpoint ({exc})") from exc
    if not isinstance(obj, dict):
        raise ConversionError(f"--checkpoint {path}: holds a {type(obj).__name__}, expected a dict (state dict)")
    ignored: list[str] = []
    if _REX_MODEL_ENTRY in obj:
        ignored = sorted(str(k) for k in obj if k != _REX_MODEL_ENTRY)
        obj = obj[_REX_MODEL_ENTRY]
        if not isinstance(obj, dict):
            raise ConversionError(f"--checkpoint {path}: '{_REX_MODEL_ENTRY}' is a {type(obj).__name__}, not a dict")
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(
                f"--checkpoint {path}: entry {key!r} is a {type(value).__name__}, not a tensor (not a state dict; "
                f"a REx checkpoint keeps the weights under '{_REX_MODEL_ENTRY}')"
            )
    return obj, ignored


def build_processor(encoder: str, max_length: int) -> tuple[LDNetProcessor, dict[str, int]]:
    """``LDNetProcessor`` on the encoder's tokenizer, and the tag ids the reference tokenizer gave (checked equal)."""
    tokenizer = AutoTokenizer.from_pretrained(encoder)
    base_len = len(tokenizer)
    vocab = tokenizer.get_vocab()
    present = [t for t in REFERENCE_TAGS.values() if t in vocab]
    if present:
        # src/transform.py asserts that add_tokens added exactly 7: such a tokenizer cannot be the reference's
        raise ConversionError(f"--encoder {encoder}: its tokenizer already holds {present}; the reference added all 7 tags")
    reference_ids = {tag: base_len + i for i, tag in enumerate(REFERENCE_TAGS.values())}
    processor = LDNetProcessor(tokenizer=tokenizer, max_length=max_length, special_tokens=dict(REFERENCE_TAGS))
    ours = {tag: processor.tokenizer.convert_tokens_to_ids(tag) for tag in REFERENCE_TAGS.values()}
    if ours != reference_ids:
        raise ConversionError(f"tag token ids differ: reference {reference_ids}, ours {ours}")
    return processor, reference_ids


def reference_config(
    state: dict[str, torch.Tensor], encoder: str, n_tokens: int, max_length: int = REFERENCE_SETTINGS["max_seq_length"]
) -> LDNetConfig:
    """``LDNetConfig`` for the checkpoint: the encoder's config with the checkpoint's vocabulary, the head size read
    from ``pointer.gp.dense.weight`` and ``REFERENCE_SETTINGS``."""
    for key in (_WORD_EMBEDDINGS, _DENSE):
        if key not in state:
            raise ConversionError(f"reference key {key!r} is missing: not a SchemaGuidedInstructBertModel state dict")
    rows = state[_WORD_EMBEDDINGS].shape[0]
    if rows != n_tokens:
        raise ConversionError(
            f"{_WORD_EMBEDDINGS}: {rows} rows, but the encoder's tokenizer plus the 7 tags has {n_tokens} tokens "
            f"(shape {tuple(state[_WORD_EMBEDDINGS].shape)}); was the checkpoint trained from another --encoder?"
        )
    out_features = state[_DENSE].shape[0]
    channels = REFERENCE_SETTINGS["num_channels"]
    if out_features % (2 * channels) or (out_features // (2 * channels)) % 2:
        raise ConversionError(
            f"{_DENSE}: shape {tuple(state[_DENSE].shape)} is not [{channels} * 2 * head_dim, d_h] with an even head_dim"
        )
    encoder_config = AutoConfig.from_pretrained(encoder)
    encoder_config.vocab_size = rows
    return LDNetConfig(
        encoder_config=encoder_config,
        encoder_name_or_path=encoder,
        head_dim=out_features // (2 * channels),
        **{**REFERENCE_SETTINGS, "max_seq_length": max_length},
    )


def map_state(
    state: dict[str, torch.Tensor], model: LDNetModel, report: ConversionReport
) -> dict[str, torch.Tensor]:
    """Reference state -> our state (names are identical by design, SPEC §9); fills ``report`` and checks shapes."""
    ours = model.state_dict()
    buffers = dict(model.named_buffers())
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if _POOLER.match(key):
            report.dropped[key] = "encoder pooler: the reference reads last_hidden_state only (so do we)"
            continue
        if _BUFFERS.match(key):
            # older transformers saved these constant buffers; ours are rebuilt by the encoder and must agree
            if key in buffers and not torch.equal(buffers[key], tensor[..., : buffers[key].shape[-1]].to(buffers[key])):
                raise ConversionError(f"{key}: buffer values differ from the encoder's own {tuple(buffers[key].shape)}")
            report.dropped[key] = "constant encoder buffer (not a parameter), equal to the encoder's own"
            continue
        if key in ours:
            if tuple(ours[key].shape) != tuple(tensor.shape):
                raise ConversionError(
                    f"shape mismatch for {key!r}: reference {tuple(tensor.shape)}, ours {tuple(ours[key].shape)}"
                )
            mapped[key] = tensor
            report.mapped[key] = key
            continue
        report.unmapped.append(key)
    report.missing = sorted(k for k in ours if k not in mapped and k not in buffers)
    return mapped


def convert(
    checkpoint: str | os.PathLike,
    encoder: str,
    out: str | os.PathLike | None = None,
    allow_unmapped: bool = False,
    allow_missing: bool = False,
    max_length: int = REFERENCE_SETTINGS["max_seq_length"],
) -> tuple[LDNetModel, LDNetProcessor, ConversionReport]:
    """Convert ``checkpoint`` (reference ``.pth``) on ``encoder`` (folder or Hub id: its config and tokenizer; its
    weights are not read). Saves model + processor + ``conversion_report.json`` into ``out`` when given."""
    path = Path(checkpoint)
    state, ignored = load_reference_state(path)
    report = ConversionReport(checkpoint=path.name, sha256=sha256_of(path), encoder=str(encoder),
                              wrapper_entries_ignored=ignored)
    processor, tag_ids = build_processor(encoder, max_length)
    report.tag_token_ids = tag_ids
    config = reference_config(state, str(encoder), len(processor.tokenizer), max_length)
    model = LDNetModel(config).eval()
    mapped = map_state(state, model, report)
    if report.unmapped and not allow_unmapped:
        multimodal = [k for k in report.unmapped if _MULTIMODAL.match(k)]
        hint = (f" ({len(multimodal)} of them belong to the multimodal reference models/model.py, which is not "
                "converted)" if multimodal else "")
        raise ConversionError(
            f"{len(report.unmapped)} reference keys have no counterpart{hint}: {report.unmapped[:20]}; "
            "pass --allow_unmapped to convert without them"
        )
    if report.missing and not allow_missing:
        raise ConversionError(
            f"{len(report.missing)} of our parameters get no reference weight (they would stay random): "
            f"{report.missing[:20]}; pass --allow_missing to keep them randomly initialised"
        )
    result = model.load_state_dict(mapped, strict=False)
    if result.unexpected_keys:  # pragma: no cover - map_state only keeps our own keys
        raise ConversionError(f"unexpected keys after mapping: {result.unexpected_keys[:20]}")
    report.config = {k: getattr(config, k) for k in REFERENCE_SETTINGS} | {"head_dim": config.head_dim}
    if out is not None:
        out = Path(out)
        model.save_pretrained(out, model_card={
            "description": (f"LDNet converted from the authors' checkpoint {path.name} (reference code "
                            "Lu-Yang666/LDNet, src/model.py) by examples/convert_original_checkpoint.py."),
        })
        processor.save_pretrained(out)
        (out / "conversion_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return model, processor, report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="the reference .pth (REx checkpoint or state dict)")
    parser.add_argument("--encoder", required=True,
                        help="encoder folder or Hub id the checkpoint was trained from (config + tokenizer are read)")
    parser.add_argument("--out", required=True, help="output folder (save_pretrained layout)")
    parser.add_argument("--allow_unmapped", action="store_true", help="convert even if reference keys have no home")
    parser.add_argument("--allow_missing", action="store_true",
                        help="convert even if some of our parameters get no reference weight (left random)")
    parser.add_argument("--max_length", type=int, default=REFERENCE_SETTINGS["max_seq_length"],
                        help="processor max_length (the reference trained with 512)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        _, _, report = convert(args.checkpoint, args.encoder, args.out, args.allow_unmapped, args.allow_missing,
                               args.max_length)
    except ConversionError as exc:
        print(f"convert_original_checkpoint: error: {exc}", file=sys.stderr)
        return 1
    print(f"mapped {len(report.mapped)} keys, dropped {len(report.dropped)} ({sorted(report.dropped)}), "
          f"unmapped {len(report.unmapped)} {report.unmapped}, our parameters without a reference weight "
          f"{len(report.missing)} {report.missing}; ignored checkpoint entries {report.wrapper_entries_ignored}")
    print(f"saved {args.out} (conversion_report.json inside)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
