"""ONNX export of LDNet: encoder + span-graph heads + label-drop gate, with dynamic batch and sequence axes.

    python -m modeling_ldnet.onnx_ldnet path/to/ldnet-folder ldnet.onnx

Inputs ``input_ids`` and ``attention_mask`` (int64, ``[batch, sequence]``; ``token_type_ids`` too with
``with_token_type_ids=True``); outputs ``logits`` (``[batch, 3, sequence, sequence]``, the model's decision logits)
and ``label_drop_probs`` (``[batch, sequence]``, or ``[batch, 3, sequence]`` with a per-channel gate). Decode the
logits with ``LDNetProcessor.post_process_extraction`` as usual. Image fusion is not exported (text-only graph).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("logits", "label_drop_probs")


class LDNetOnnxWrapper(nn.Module):
    """Positional-input, tuple-output view of an ``LDNetModel`` for export."""

    def __init__(self, model: nn.Module, with_token_type_ids: bool = False) -> None:
        super().__init__()
        self.model = model
        self.with_token_type_ids = with_token_type_ids

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None):
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.with_token_type_ids:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs)
        lhat = out.label_drop_probs
        if lhat is None:  # LDNet_MR (no label drop): a constant gate of ones keeps the output signature
            lhat = torch.ones_like(attention_mask, dtype=out.logits.dtype)
        return out.logits, lhat


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    opset: int = 18,
    with_token_type_ids: bool = False,
    example_length: int = 16,
    dynamo: bool = True,
    optimize: bool = True,
) -> Path:
    """Export ``model`` (an ``LDNetModel``) to ``path`` with dynamic ``batch`` and ``sequence`` axes.

    The encoder runs with eager attention during export. ``dynamo=True`` (default) uses ``torch.export`` (the
    sequence axis is bounded by the encoder's ``max_position_embeddings``); ``dynamo=False`` the TorchScript exporter.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    saved_impl = _set_eager(model)
    try:
        wrapper = LDNetOnnxWrapper(model, with_token_type_ids).eval()
        names = list(INPUT_NAMES) + (["token_type_ids"] if with_token_type_ids else [])
        vocab = int(model.config.encoder_config.vocab_size)
        ids = torch.randint(5, min(vocab, 1000), (2, example_length), dtype=torch.long)
        mask = torch.ones_like(ids)
        mask[1, example_length // 2 :] = 0
        args: tuple = (ids, mask) + ((torch.zeros_like(ids),) if with_token_type_ids else ())
        if dynamo:
            # the encoder's position table bounds the sequence axis (torch.export refuses an unbounded one)
            max_len = getattr(model.config.encoder_config, "max_position_embeddings", None)
            batch = torch.export.Dim("batch", min=1)
            seq = torch.export.Dim("sequence", min=2, max=max_len) if max_len else torch.export.Dim("sequence", min=2)
            shapes = {n: {0: batch, 1: seq} for n in names}
            program = torch.onnx.export(
                wrapper,
                args,
                dynamic_shapes=shapes,
                input_names=names,
                output_names=list(OUTPUT_NAMES),
                opset_version=opset,
                dynamo=True,
                external_data=False,
                optimize=optimize,
            )
            program.save(str(path))
        else:
            axes = {n: {0: "batch", 1: "sequence"} for n in names}
            axes["logits"] = {0: "batch", 2: "sequence", 3: "sequence"}
            axes["label_drop_probs"] = {0: "batch", 1: "sequence"}
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                input_names=names,
                output_names=list(OUTPUT_NAMES),
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
    finally:
        _restore_attn(model, saved_impl)
        model.train(was_training)
    return path


def _set_eager(model: nn.Module) -> Any:
    plm = getattr(model, "plm", None)
    cfg = getattr(plm, "config", None)
    if cfg is None:
        return None
    saved = getattr(cfg, "_attn_implementation", None)
    if hasattr(plm, "set_attn_implementation"):
        try:
            plm.set_attn_implementation("eager")
            return saved
        except Exception as exc:  # noqa: BLE001 - fall back to the config switch
            logger.debug("set_attn_implementation('eager') failed (%s); setting the config", exc)
    cfg._attn_implementation = "eager"
    return saved


def _restore_attn(model: nn.Module, saved: Any) -> None:
    plm = getattr(model, "plm", None)
    if plm is None or saved is None:
        return
    if hasattr(plm, "set_attn_implementation"):
        try:
            plm.set_attn_implementation(saved)
            return
        except Exception as exc:  # noqa: BLE001
            logger.debug("set_attn_implementation(%r) failed (%s); setting the config", saved, exc)
    plm.config._attn_implementation = saved


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="saved LDNet folder (or Hub id)")
    parser.add_argument("output", help="where to write the .onnx file")
    parser.add_argument("--opset", type=int, default=18)
    parser.add_argument("--token-type-ids", action="store_true", help="also take token_type_ids (BERT-style)")
    parser.add_argument("--torchscript", action="store_true", help="use the TorchScript exporter (dynamo=False)")
    parser.add_argument("--trust-remote-code", action="store_true")
    a = parser.parse_args(argv)
    from transformers import AutoModel

    model = AutoModel.from_pretrained(a.model, trust_remote_code=a.trust_remote_code)
    out = export_onnx(model, a.output, opset=a.opset, with_token_type_ids=a.token_type_ids, dynamo=not a.torchscript)
    print(out)


if __name__ == "__main__":
    main()
