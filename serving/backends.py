"""Inference backends for ``pipeline("universal-ie")``: ``torch`` | ``onnx`` | ``onnx-int8``.

Every backend is the same :class:`~modeling_ldnet.UniversalIEPipeline` (same preprocessing, long-text windows,
decoding and answers); only the forward pass differs. The ONNX backends replace the pipeline's ``model`` with an
onnxruntime session over the project's export (:func:`modeling_ldnet.onnx_ldnet.export_onnx`); ``onnx-int8``
quantizes that export with onnxruntime's dynamic int8 quantization (int8 weights, activations quantized per call).

    from serving.backends import load_pipeline
    ie = load_pipeline("runs/demo/model", backend="onnx-int8")
    ie("Jerry Smith lives in New York .", schema={"ent": ["person", "location"]})

Exports are cached next to the model (``<model>/onnx/``) or in ``onnx_dir``; a cached file older than the
weights is exported again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, pipeline

from modeling_ldnet import LDNetOutput, LDNetProcessor, UniversalIEPipeline
from modeling_ldnet.onnx_ldnet import export_onnx

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
FP32_NAME = "model.onnx"
INT8_NAME = "model_int8.onnx"


class OnnxLDNetModel:
    """Drop-in forward pass for the pipeline: takes the model inputs as tensors, runs an onnxruntime session and
    returns an :class:`LDNetOutput` (``logits``, ``label_drop_probs``), like ``LDNetModel.forward`` in eval mode."""

    def __init__(self, path: str | os.PathLike, config: Any, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            # one session per process; intra-op threads are the CPU budget (inter-op stays sequential)
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.name_or_path = getattr(config, "_name_or_path", "")
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.training = False

    def eval(self) -> OnnxLDNetModel:
        return self

    def to(self, *_: Any, **__: Any) -> OnnxLDNetModel:
        return self

    def can_generate(self) -> bool:
        return False

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        **_: Any,
    ) -> LDNetOutput:
        if pixel_values is not None:
            raise ValueError("onnx backend: the ONNX export is text-only (no image fusion); use --backend torch")
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": attention_mask.cpu().numpy()}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = (
                token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            ).cpu().numpy()
        elif token_type_ids is not None and bool(token_type_ids.any()):
            raise ValueError(f"onnx backend: {self.path} was exported without token_type_ids, but the inputs use them")
        logits, lhat = self.session.run(None, feeds)
        return LDNetOutput(logits=torch.from_numpy(logits), label_drop_probs=torch.from_numpy(lhat))


def _weights_mtime(model_dir: Path) -> float:
    files = list(model_dir.glob("*.safetensors")) + [model_dir / "config.json"]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)


def export_backend_files(
    model: Any, model_dir: str | os.PathLike, backend: str, onnx_dir: str | os.PathLike | None = None
) -> Path:
    """The ``.onnx`` file for ``backend`` (exported / quantized when missing or older than the weights)."""
    model_dir = Path(model_dir)
    out = Path(onnx_dir) if onnx_dir else model_dir / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / FP32_NAME
    stale = _weights_mtime(model_dir)
    if not fp32.is_file() or fp32.stat().st_mtime < stale:
        logger.info("exporting %s to %s", model_dir, fp32)
        # the TorchScript exporter: its graph quantizes cleanly and it needs no torch.export tracing of the encoder
        export_onnx(model, fp32, dynamo=False)
    if backend == "onnx":
        return fp32
    int8 = out / INT8_NAME
    if not int8.is_file() or int8.stat().st_mtime < fp32.stat().st_mtime:
        quantize_int8(fp32, int8)
    return int8


def quantize_int8(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """onnxruntime dynamic quantization: int8 weights for MatMul / Gemm (the encoder and the span-graph heads),
    activations quantized on the fly; everything else (embeddings, layer norms, softmax) stays fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model_input=str(src),
        model_output=str(dst),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        per_channel=True,  # per output channel: markedly less F1 loss than per tensor for the small heads
    )
    return Path(dst)


def load_pipeline(
    model_dir: str | os.PathLike,
    backend: str = "torch",
    *,
    threads: int | None = None,
    onnx_dir: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
    window_stride: int | None = None,
) -> UniversalIEPipeline:
    """``pipeline("universal-ie", model=model_dir)`` on CPU with the given forward ``backend``.

    ``window_stride``: overrides the saved processor's overlap of long-text windows (in text tokens), for the whole
    life of this pipeline (a server setting, never a per-request one).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if threads:
        torch.set_num_threads(int(threads))
    if trust_remote_code:  # the folder's own code (as on the Hub)
        ie = pipeline("universal-ie", model=str(model_dir), device="cpu", trust_remote_code=True)
    else:  # this package's classes (registered with the Auto classes on import), no remote code executed
        model = AutoModel.from_pretrained(str(model_dir))
        processor = LDNetProcessor.from_pretrained(str(model_dir))
        ie = pipeline("universal-ie", model=model, processor=processor, device="cpu")
    if window_stride is not None:
        if not 0 <= int(window_stride) < int(ie.processor.max_length):
            raise ValueError(f"window_stride must be in [0, {ie.processor.max_length}), got {window_stride}")
        ie.processor.window_stride = int(window_stride)
    if backend != "torch":
        path = export_backend_files(ie.model, model_dir, backend, onnx_dir)
        ie.model = OnnxLDNetModel(path, ie.model.config, threads=threads)
    ie.backend = backend
    return ie
