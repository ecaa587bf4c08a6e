"""Optional image fusion (paper eqs 3-8, SPEC §4.2): a timm ViT, image patches attend over the text, ``V`` per token.

``LDNetModel`` builds :class:`LDNetVisionFusion` when ``config.vision_model_name`` is set and computes
``M = H + fusion_alpha * V`` (eq 8) for the records that carry an image. Differences from the reference code
(``L models/model.py :: img_fusion2``), both from SPEC §8.15: the image->text cross-attention has a key padding mask
(pad tokens are never attended), and the default ``FFNN_I`` is the paper's per-position map (``fusion_mode="paper"``)
rather than the ``Linear(d_h, 256 * d_h)`` of the code (``fusion_mode="code"``, kept behind the flag).

This file is shipped as remote code: only relative imports of the package; ``timm`` is imported lazily.
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import nn

from .configuration_ldnet import LDNetConfig

#: Keys of a timm ViT checkpoint that a feature extractor (``num_classes=0``) does not have.
_HEAD_PREFIXES = ("head.", "head_drop.")


def _timm():
    # inside try: transformers' remote-code import check then does not demand timm from text-only checkpoints
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is a dependency of the package
        raise ImportError("LDNet image fusion needs `timm` (pip install timm)") from exc
    return timm


def build_vit(config: LDNetConfig) -> nn.Module:
    """The timm image encoder of ``config``: never downloaded (``pretrained=False``), classifier head removed.

    ``config.vision_weights_path`` (a local safetensors file) is loaded when given; a missing file is an error.
    """
    timm = _timm()

    kwargs = {**(config.vision_config or {}), "pretrained": False, "num_classes": 0}
    vit = timm.create_model(config.vision_model_name, **kwargs)
    path = config.vision_weights_path
    on_meta = any(p.device.type == "meta" for p in vit.parameters())
    if path and not on_meta:  # on meta (inside from_pretrained) the weights come from the LDNet checkpoint instead
        load_vit_weights(vit, path)
    return vit


def load_vit_weights(vit: nn.Module, path: str | os.PathLike) -> None:
    """Load a local safetensors file into ``vit`` (classifier-head keys ignored; any other mismatch raises)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"LDNetConfig.vision_weights_path: {path} does not exist (weights are never downloaded; export the timm "
            "model's state_dict with safetensors.torch.save_file)"
        )
    from safetensors.torch import load_file

    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith(_HEAD_PREFIXES)}
    missing, unexpected = vit.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"vision weights {path} do not fit {type(vit).__name__}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def vision_data_config(vit_or_model: nn.Module) -> dict[str, Any]:
    """timm data config (``input_size``, ``mean``, ``std``, ``interpolation``, ``crop_pct``, ``crop_mode``) for
    :class:`~modeling_ldnet.LDNetProcessor`'s ``image_config``, from an ``LDNetModel``, its fusion module or a ViT.

    ``input_size`` follows the ViT actually built (a ``img_size`` override in ``vision_config`` included).
    """
    resolve_model_data_config = _timm().data.resolve_model_data_config
    vit = vit_or_model
    if hasattr(vit, "vision") and isinstance(vit.vision, LDNetVisionFusion):
        vit = vit.vision
    if isinstance(vit, LDNetVisionFusion):
        vit = vit.vit
    cfg = dict(resolve_model_data_config(vit))
    img_size = getattr(getattr(vit, "patch_embed", None), "img_size", None)
    if img_size is not None:
        cfg["input_size"] = (3, *tuple(img_size))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}


class LDNetVisionFusion(nn.Module):
    """Eqs 3-7: ``V = tanh(FFNN_I(sum_p tanh(softmax(Q K^T / sqrt(d_h)) V_txt)))``, returned as ``[B, L, d_h]``.

    * ``Q = Wq(MLP(ViT(image)))`` (eq 4): patches (CLS included) are the queries;
      MLP = ``Lin(d_v, 2048)-Drop-ReLU-Lin(2048, 2048)-Drop-ReLU-Lin(2048, d_h)``.
    * ``K = Wk(H)``, ``V_txt = Wv(H)`` (eq 5), with a key padding mask from ``attention_mask``.
    * ``fusion_mode="paper"``: ``V[b, i] = tanh(w_i * v'[b] + c_i)`` with ``w, c in R^{max_seq_length}`` (``FFNN_I in
      R^{1 x |x|}``); ``"code"``: ``tanh(Linear(d_h, max_seq_length * d_h)(v'))`` reshaped to ``[B, max_seq_length, d_h]``.
      Both are cut to the batch length ``L <= max_seq_length``.

    With ``freeze_vision`` the ViT has no gradient (``requires_grad=False`` and run under ``no_grad``) and stays in
    eval mode.
    """

    def __init__(self, config: LDNetConfig):
        super().__init__()
        d_h = config.hidden_size
        self.freeze_vision = bool(config.freeze_vision)
        self.fusion_mode = config.fusion_mode
        self.max_length = int(getattr(config, "max_seq_length", None) or 512)
        self.vit = build_vit(config)
        d_v = int(getattr(self.vit, "num_features", 0) or self.vit.embed_dim)
        if config.vision_hidden_size not in (None, d_v):
            raise ValueError(
                f"LDNetConfig.vision_hidden_size={config.vision_hidden_size} but {config.vision_model_name} "
                f"with {config.vision_config} gives {d_v} features"
            )
        config.vision_hidden_size = d_v
        # keep timm's init (or the loaded weights) when LDNetModel.post_init initialises the LDNet modules
        for m in self.vit.modules():
            m._is_hf_initialized = True
        if self.freeze_vision:
            self.vit.requires_grad_(False)
            self.vit.eval()
        hidden, drop = int(config.vision_mlp_hidden), float(getattr(config, "vision_dropout", 0.5))
        self.mlp = nn.Sequential(
            nn.Linear(d_v, hidden),
            nn.Dropout(drop),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.Dropout(drop),
            nn.ReLU(),
            nn.Linear(hidden, d_h),
        )
        self.query = nn.Linear(d_h, d_h)  # FFNN_q^I
        self.key = nn.Linear(d_h, d_h)  # FFNN_k^I
        self.value = nn.Linear(d_h, d_h)  # FFNN_v^I
        if self.fusion_mode == "paper":
            self.position_weight = nn.Parameter(torch.ones(self.max_length))  # w
            self.position_bias = nn.Parameter(torch.zeros(self.max_length))  # c
            self.expand = None
        else:
            self.expand = nn.Linear(d_h, self.max_length * d_h)

    def train(self, mode: bool = True) -> LDNetVisionFusion:
        super().train(mode)
        if self.freeze_vision:
            # from_pretrained swaps in new Parameters (requires_grad=True) and then calls eval(): re-freeze here
            self.vit.requires_grad_(False)
            self.vit.eval()
        return self

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[B, 3, h, w]`` -> patch features ``[B, n_p, d_v]`` (eq 3; CLS/register tokens included)."""
        pixel_values = pixel_values.to(next(self.vit.parameters()).dtype)
        if self.freeze_vision:
            with torch.no_grad():
                return self.vit.forward_features(pixel_values)
        return self.vit.forward_features(pixel_values)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, pixel_values: torch.Tensor
    ) -> torch.Tensor:
        b, length, d_h = hidden.shape
        if length > self.max_length:
            raise ValueError(f"image fusion: sequence length {length} > config.max_seq_length {self.max_length}")
        feats = self.image_features(pixel_values).to(hidden.dtype)
        q = self.query(self.mlp(feats))  # [B, P, d_h]  eq 4
        k, v = self.key(hidden), self.value(hidden)  # [B, L, d_h]  eq 5
        scores = torch.einsum("bpd,bld->bpl", q, k) / math.sqrt(d_h)
        if attention_mask is not None:  # key padding mask (SPEC §8.15)
            scores = scores.masked_fill(~attention_mask.bool()[:, None, :], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)
        pooled = torch.tanh(torch.einsum("bpl,bld->bpd", attn, v)).sum(dim=1)  # v' [B, d_h]  eq 6
        if self.expand is None:  # paper: FFNN_I in R^{1 x |x|}
            w = self.position_weight[:length].to(pooled.dtype)
            c = self.position_bias[:length].to(pooled.dtype)
            out = w[None, :, None] * pooled[:, None, :] + c[None, :, None]
        else:  # code: Linear(d_h, max_length * d_h)
            out = self.expand(pooled).view(b, self.max_length, d_h)[:, :length]
        return torch.tanh(out)  # V [B, L, d_h]  eq 7
