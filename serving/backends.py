"""Inference backends for ``pipeline("universal-ie")``: ``torch`` | ``onnx`` | ``onnx-int8``.

Every backend is the same :class:`~modeling_ldnet.UniversalIEPipeline` (same preprocessing, long-text windows,
decoding and answers); only the forward pass differs. The ONNX backends replace the pipeline's ``model`` with an
onnxruntime session over the project's export (:func:`modeling_ldnet.onnx_ldnet.export_onnx`); ``onnx-int8``
quantizes that export with onnxruntime's dynamic int8 quantization (int8 weights, activations quantized per call).

    from serving.backends import load_pipeline
    ie = load_pipeline("runs/demo/model", backend="onnx-int8")
    ie("Jerry Smith lives in New York .", schema={"ent": ["people", "location"]})

Exports are cached next to the model (``<model>/onnx/``) or in ``onnx_dir``; a cached file older than the
weights is exported again. Writing them logs one line (where, how many bytes); onnxruntime's own logging below
ERROR (the quantizer logs a line per tensor) is kept quiet unless ``verbose_onnxruntime=True``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
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
#: onnxruntime's log severity when quiet: 3 = errors only (0 verbose, 1 info, 2 warning)
ORT_QUIET_SEVERITY = 3


class OnnxLDNetModel:
    """Drop-in forward pass for the pipeline: takes the model inputs as tensors, runs an onnxruntime session and
    returns an :class:`LDNetOutput` (``logits``, ``label_drop_probs``), like ``LDNetModel.forward`` in eval mode."""

    def __init__(self, path: str | os.PathLike, config: Any, threads: int | None = None, verbose: bool = False) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if not verbose:
            opts.log_severity_level = ORT_QUIET_SEVERITY
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
    model: Any,
    model_dir: str | os.PathLike,
    backend: str,
    onnx_dir: str | os.PathLike | None = None,
    verbose_onnxruntime: bool = False,
) -> Path:
    """The ``.onnx`` file for ``backend`` (exported / quantized when missing or older than the weights); logs one
    line naming the folder and the bytes written when it writes anything."""
    model_dir = Path(model_dir)
    out = Path(onnx_dir) if onnx_dir else model_dir / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / FP32_NAME
    stale = _weights_mtime(model_dir)
    written: list[Path] = []
    with quiet_onnxruntime(not verbose_onnxruntime):
        if not fp32.is_file() or fp32.stat().st_mtime < stale:
            # the TorchScript exporter: its graph quantizes cleanly and it needs no torch.export tracing of the encoder
            export_onnx(model, fp32, dynamo=False)
            written.append(fp32)
        target = fp32
        if backend == "onnx-int8":
            target = out / INT8_NAME
            if not target.is_file() or target.stat().st_mtime < fp32.stat().st_mtime:
                quantize_int8(fp32, target)
                written.append(target)
    if written:
        sizes = {p.name: _file_bytes(p) for p in written}
        logger.warning(
            "%s backend: wrote %s into %s (%s bytes in all; cached for the next start, --onnx-dir puts it elsewhere)",
            backend, ", ".join(f"{k} ({v:,} bytes)" for k, v in sizes.items()), out, f"{sum(sizes.values()):,}",
        )
    return target


def _file_bytes(path: Path) -> int:
    """A file's bytes, with its external-data files (``<name>.data``) when the export wrote any."""
    extra = [p for p in path.parent.glob(path.name + "*") if p != path and p.is_file()]
    return path.stat().st_size + sum(p.stat().st_size for p in extra)


class _DropOnnxruntimeInfo(logging.Filter):
    """Drops records below ERROR logged by onnxruntime's Python code: the quantizer logs a line per tensor on the
    root logger, and warns that the graph was not pre-processed (advice for calibrated static quantization)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or f"{os.sep}onnxruntime{os.sep}" not in record.pathname


@contextlib.contextmanager
def quiet_onnxruntime(quiet: bool = True) -> Iterator[None]:
    """onnxruntime's logging below ERROR off (its Python side and its C++ default logger) inside the block."""
    if not quiet:
        yield
        return
    import onnxruntime as ort

    drop = _DropOnnxruntimeInfo()
    root = logging.getLogger()
    root.addFilter(drop)
    ort.set_default_logger_severity(ORT_QUIET_SEVERITY)
    try:
        yield
    finally:
        root.removeFilter(drop)


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
    verbose_onnxruntime: bool = False,
) -> UniversalIEPipeline:
    """``pipeline("universal-ie", model=model_dir)`` on CPU with the given forward ``backend``.

    ``window_stride``: overrides the saved processor's overlap of long-text windows (in text tokens), for the whole
    life of this pipeline (a server setting, never a per-request one). ``verbose_onnxruntime``: keep onnxruntime's
    INFO / WARNING logging (quiet by default).
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
        # pipeline_class: this package's class even when a trust_remote_code load re-registered the task
        ie = pipeline("universal-ie", model=model, processor=processor, device="cpu", pipeline_class=UniversalIEPipeline)
    if window_stride is not None:
        if not 0 <= int(window_stride) < int(ie.processor.max_length):
            raise ValueError(f"window_stride must be in [0, {ie.processor.max_length}), got {window_stride}")
        ie.processor.window_stride = int(window_stride)
    if backend != "torch":
        path = export_backend_files(ie.model, model_dir, backend, onnx_dir, verbose_onnxruntime)
        ie.model = OnnxLDNetModel(path, ie.model.config, threads=threads, verbose=verbose_onnxruntime)
    ie.backend = backend
    return ie
