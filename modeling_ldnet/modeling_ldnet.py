"""LDNet: encoder -> (optional image fusion) -> 3-channel RoPE GlobalPointer span graph -> label-drop gate.

Equation numbers refer to the paper (Yang et al. 2025); section numbers to ``shared/docs/SPEC.md``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_ldnet import NEW_MODEL_DEFAULTS, LDNetConfig
from .loss_ldnet import label_drop_loss, multilabel_categorical_crossentropy, span_graph_loss

#: Fill value of masked score cells. Finite in fp16 (max 65504) and bf16, and sigmoid(-1e4) == 0 exactly.
MASK_VALUE = -1.0e4


@dataclass
class LDNetOutput(ModelOutput):
    """Output of :class:`LDNetModel`.

    Attributes:
        loss: ``w_mr * span_graph_loss + w_ld * label_drop_loss`` when targets are given.
        logits: ``[B, 3, L, L]`` decision logits of the gated span graph ``P`` (eq 16); a link ``(c, i, j)`` exists
            when ``sigmoid(logits) > threshold``. Masked (pad) cells hold ``MASK_VALUE``.
        label_drop_probs: ``lhat = sigmoid(FFNN(M))`` (eq 15): ``[B, L]`` (shared head) or ``[B, 3, L]``.
        span_graph_loss: multi-label categorical CE ``L_MR`` (eqs 12-14).
        label_drop_loss: label-drop BCE ``L_LD`` (eqs 17-18).
        last_hidden_state: ``M`` (encoder output, fused with the image when one is given), ``[B, L, d_h]``.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    label_drop_probs: torch.FloatTensor | None = None
    span_graph_loss: torch.FloatTensor | None = None
    label_drop_loss: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


def rope_cos_sin(
    length: int, dim: int, theta: float, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos``/``sin`` of the RoPE angles ``pos * theta ** (-2m / dim)``, ``[length, dim / 2]`` each."""
    inv_freq = theta ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rope(
    x: torch.Tensor, theta: float = 10000.0, cos_sin: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """Rotary position embedding with interleaved pairs (SPEC §4.3), positions ``0..L-1`` on dim -2.

    ``x[..., 2m], x[..., 2m+1]`` are rotated by angle ``pos * theta ** (-2m / d)``, so that
    ``<R_i q, R_j k> = q^T R_{j-i} k`` (eq 10). ``cos_sin`` (from :func:`rope_cos_sin`) avoids recomputing the
    angles when queries and keys are rotated alike.
    """
    cos, sin = cos_sin if cos_sin is not None else rope_cos_sin(x.shape[-2], x.shape[-1], theta, x.device, x.dtype)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((x_even * cos - x_odd * sin, x_odd * cos + x_even * sin), dim=-1).flatten(-2)


class RoPEGlobalPointer(nn.Module):
    """Eqs 9-11: one ``Linear(d_h, C * 2 * d_i)`` split into per-channel queries/keys, RoPE, scaled dot product."""

    def __init__(self, hidden_size: int, num_channels: int, head_dim: int, use_rope: bool, rope_theta: float):
        super().__init__()
        self.num_channels, self.head_dim = num_channels, head_dim
        self.use_rope, self.rope_theta = use_rope, rope_theta
        self.dense = nn.Linear(hidden_size, num_channels * 2 * head_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        b, length, _ = hidden.shape
        z = self.dense(hidden).view(b, length, self.num_channels, 2, self.head_dim)
        q, k = z[..., 0, :].transpose(1, 2), z[..., 1, :].transpose(1, 2)  # [B, C, L, d]
        if self.use_rope:
            cos_sin = rope_cos_sin(length, self.head_dim, self.rope_theta, q.device, q.dtype)
            q, k = rope(q, cos_sin=cos_sin), rope(k, cos_sin=cos_sin)
        return torch.einsum("bcid,bcjd->bcij", q, k) / math.sqrt(self.head_dim)


class LDNetPointer(nn.Module):
    """Holds the span-graph scorer under the reference module path ``pointer.gp.dense`` (SPEC §9)."""

    def __init__(self, config: LDNetConfig):
        super().__init__()
        self.gp = RoPEGlobalPointer(
            config.hidden_size, config.num_channels, config.head_dim, config.use_rope, config.rope_theta
        )

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.gp(hidden)


def links_to_dense(links: torch.Tensor, batch_size: int, num_channels: int, length: int) -> torch.Tensor:
    """Sparse gold links ``[n, 4]`` (batch, channel, i, j) -> dense ``{0,1}`` grid ``[B, C, L, L]`` (uint8)."""
    grid = torch.zeros(batch_size, num_channels, length, length, dtype=torch.uint8, device=links.device)
    if links.numel():
        links = links.long()
        grid[links[:, 0], links[:, 1], links[:, 2], links[:, 3]] = 1
    return grid


class LDNetPreTrainedModel(PreTrainedModel):
    config_class = LDNetConfig
    base_model_prefix = "ldnet"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # the loss is a per-batch mean: Trainer must scale it for gradient accumulation itself
    accepts_loss_kwargs = False

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class LDNetModel(LDNetPreTrainedModel):
    """LDNet span-graph extractor over any ``AutoModel`` text encoder.

    Forward inputs are the processor's output (``input_ids``, ``attention_mask``, optional ``token_type_ids``,
    ``pixel_values``/``image_mask``) and, for training, gold targets: ``span_graph_links`` (sparse ``[n, 4]``:
    batch, channel, i, j) or ``span_graph_labels`` (dense ``[B, 3, L, L]``), plus ``label_drop_targets`` ``[B, L]``.
    """

    def __init__(self, config: LDNetConfig, encoder: PreTrainedModel | None = None):
        super().__init__(config)
        self.plm = encoder if encoder is not None else AutoModel.from_config(config.encoder_config)
        if getattr(self.plm, "pooler", None) is not None:
            self.plm.pooler = None  # unused: LDNet reads the token states only
        self.pointer = LDNetPointer(config)
        # learnable per-channel prior on the link scores (None: the paper's bias-free scores, eq 11)
        self.score_bias = (
            nn.Parameter(torch.full((config.num_channels,), float(config.score_bias_init)))
            if config.score_bias_init is not None
            else None
        )
        n_gate = config.num_channels if config.label_drop_per_channel else 1
        self.bce_linear = nn.Linear(config.hidden_size, n_gate) if config.use_label_drop else None
        self.vision = None
        if config.vision_model_name:
            from .vision_ldnet import LDNetVisionFusion

            self.vision = LDNetVisionFusion(config)
        self.post_init()

    # -- construction helpers -------------------------------------------------------------------------------
    @classmethod
    def from_encoder(
        cls, encoder_name_or_path: str, tokenizer: Any | None = None, **config_kwargs: Any
    ) -> "LDNetModel":
        """Wrap a pre-trained encoder (local folder or Hub id) into a fresh LDNet with new heads.

        If ``tokenizer`` is given (e.g. ``processor.tokenizer``, which holds the 7 added tag tokens), the encoder's
        embeddings are resized to ``len(tokenizer)``. Without it, the encoder's own tokenizer is loaded from the same
        path and the embeddings are grown to hold the tag tokens ``LDNetProcessor`` adds to it (so
        ``LDNetProcessor(AutoTokenizer.from_pretrained(path))`` matches the model); a path without a tokenizer is
        refused (pass ``tokenizer=``) rather than failing later inside the embedding lookup.

        New models get the measured-best settings of ``NEW_MODEL_DEFAULTS`` (bench/RESULTS.md) unless
        ``config_kwargs`` override them; ``LDNetConfig()``'s own defaults stay the paper/reference-code form, so
        folders saved before those settings existed load unchanged.

        A local path that does not exist (absolute, ``./``, ``../``, ``~``) raises ``FileNotFoundError`` naming it, and
        any other loading failure an ``OSError`` naming ``encoder_name_or_path`` (transformers' own message, e.g.
        "Repo id must be in the form ...", is kept as the cause).
        """
        if not isinstance(encoder_name_or_path, (str, os.PathLike)):
            raise TypeError(f"LDNetModel.from_encoder: encoder_name_or_path must be a path or a Hub id, got "
                            f"{type(encoder_name_or_path).__name__}")
        path = os.fspath(encoder_name_or_path)
        looks_local = os.path.isabs(path) or path.startswith((".", "~")) or "\\" in path or path.count("/") > 1
        if looks_local and not os.path.isdir(os.path.expanduser(path)):
            raise FileNotFoundError(f"LDNetModel.from_encoder: no encoder folder at {path!r}")
        try:
            encoder = AutoModel.from_pretrained(os.path.expanduser(path) if looks_local else path)
        except (OSError, ValueError) as exc:
            raise OSError(
                f"LDNetModel.from_encoder({path!r}): could not load an encoder from there ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from exc
        config = LDNetConfig(
            encoder_config=encoder.config,
            encoder_name_or_path=str(encoder_name_or_path),
            **{**NEW_MODEL_DEFAULTS, **config_kwargs},
        )
        model = cls(config)
        # copy the pre-trained weights into the freshly initialised model (the pooler is dropped on purpose)
        missing, _ = model.plm.load_state_dict(encoder.state_dict(), strict=False)
        if missing:
            raise RuntimeError(f"encoder weights missing after loading {encoder_name_or_path}: {missing[:5]}")
        if tokenizer is not None:
            model.resize_token_embeddings(len(tokenizer))
            return model
        try:
            encoder_tokenizer = AutoTokenizer.from_pretrained(encoder_name_or_path)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(
                f"LDNetModel.from_encoder({encoder_name_or_path!r}): no tokenizer found there to size the embeddings "
                "for the 7 LDNet tag tokens; pass tokenizer=processor.tokenizer"
            ) from exc
        n_vocab = getattr(encoder.config, "vocab_size", None) or 0
        if len(encoder_tokenizer) < 0.9 * n_vocab:  # transformers builds an empty tokenizer when files are missing
            raise ValueError(
                f"LDNetModel.from_encoder({encoder_name_or_path!r}): the tokenizer found there has {len(encoder_tokenizer)}"
                f" tokens for an encoder vocabulary of {n_vocab} (tokenizer files missing?); pass "
                "tokenizer=processor.tokenizer"
            )
        # the same tokens, in the same order, as LDNetProcessor adds to this tokenizer
        vocab = encoder_tokenizer.get_vocab()
        added = len(dict.fromkeys(t for t in config.special_tokens.values() if t not in vocab))
        needed = len(encoder_tokenizer) + added
        if needed > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(needed)
        return model

    def get_input_embeddings(self) -> nn.Module:
        return self.plm.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.plm.set_input_embeddings(value)

    def resize_token_embeddings(self, new_num_tokens: int | None = None, **kwargs: Any) -> nn.Embedding:
        emb = self.plm.resize_token_embeddings(new_num_tokens, **kwargs)
        self.config.encoder_config = self.plm.config
        return emb

    def save_pretrained(self, save_directory, *args, model_card=None, **kwargs):
        """``PreTrainedModel.save_pretrained``, then the model card ``README.md`` (and the ``universal-ie`` pipeline
        code, so the folder works with ``pipeline(..., trust_remote_code=True)``); see ``modelcard_ldnet``.

        ``model_card``: extra card information (``schema``, ``training_data``, ``metrics``, ...) or ``False``.
        """
        from .modelcard_ldnet import save_model_folder

        return save_model_folder(
            self, super().save_pretrained, save_directory, *args, model_card=model_card, **kwargs
        )

    # -- forward --------------------------------------------------------------------------------------------
    def _gate(self, lhat: torch.Tensor, length: int, neutral: float = 1.0) -> torch.Tensor:
        """Broadcast a per-token gate ``[B, L]`` / ``[B, C, L]`` to ``[B, C|1, L, L]`` along the configured axis
        (eq 16), with the drop-rate ablation (ungated rows hold ``neutral``: 1 for a factor, 0 for a log-odds term).
        """
        if lhat.dim() == 2:
            lhat = lhat[:, None, :]  # [B, 1, L]
        axis = self.config.label_drop_axis
        col = lhat[:, :, None, :].expand(-1, -1, length, -1)
        row = lhat[:, :, :, None].expand(-1, -1, -1, length)
        if axis == "column":
            gate = col
        elif axis == "row":
            gate = row
        else:  # both: token i and token j must both be kept
            gate = col * row if neutral == 1.0 else col + row
        rate = self.config.label_drop_rate
        if self.training and rate < 1.0:
            # SPEC §4.4 ablation: only round(rate * L) sampled rows are gated, sampled per record
            k = max(1, round(rate * length))
            order = torch.rand(lhat.shape[0], length, device=lhat.device).argsort(dim=-1)
            rows = torch.zeros(lhat.shape[0], length, dtype=torch.bool, device=lhat.device)
            rows.scatter_(1, order[:, :k], True)
            gate = torch.where(rows[:, None, :, None], gate, torch.full_like(gate, neutral))
        return gate

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        span_graph_links: torch.Tensor | None = None,
        span_graph_labels: torch.Tensor | None = None,
        label_drop_targets: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs: Any,
    ) -> LDNetOutput:
        cfg = self.config
        ref = input_ids if input_ids is not None else inputs_embeds
        if ref is None:
            raise ValueError("LDNetModel.forward needs input_ids or inputs_embeds")
        b, length = ref.shape[0], ref.shape[1]
        if attention_mask is None:
            attention_mask = torch.ones(b, length, dtype=torch.long, device=ref.device)
        enc_kwargs: dict[str, Any] = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            enc_kwargs["token_type_ids"] = token_type_ids
        if input_ids is not None:
            enc_kwargs["input_ids"] = input_ids
        else:
            enc_kwargs["inputs_embeds"] = inputs_embeds
        hidden = self.plm(**enc_kwargs).last_hidden_state  # H, eqs 1-2

        if self.vision is not None and pixel_values is not None and cfg.fusion_alpha > 0:
            fused = self.vision(hidden, attention_mask, pixel_values)  # V, eqs 4-7
            if image_mask is not None:
                fused = fused * image_mask.to(fused.dtype)[:, None, None]
            hidden = hidden + cfg.fusion_alpha * fused  # M, eq 8

        scores = self.pointer(hidden)  # S [B, C, L, L], eqs 9-11
        valid_tok = attention_mask.bool()
        valid = valid_tok[:, None, :, None] & valid_tok[:, None, None, :]  # [B, 1, L, L]

        # pure inference (no targets, no autograd): gate and mask in place, so one [B, C, L, L] grid is alive
        # instead of three (scores, gated, masked logits) -- bench/RESULTS.md §1c, L=512
        has_targets = span_graph_links is not None or span_graph_labels is not None
        in_place = not has_targets and not torch.is_grad_enabled()
        if self.score_bias is not None:
            bias = self.score_bias.to(scores.dtype)[None, :, None, None]
            scores = scores.add_(bias) if in_place else scores + bias
        lhat = None
        u = None
        if self.bce_linear is not None:
            u = self.bce_linear(hidden)  # [B, L, 1|C]
            u = u.squeeze(-1) if u.shape[-1] == 1 else u.transpose(1, 2)  # [B, L] or [B, C, L]
            lhat = torch.sigmoid(u)
            mode = cfg.label_drop_mode
            if mode == "log_odds":
                # P = S + log(lhat): a dropped token (lhat -> 0) removes its links at inference; with
                # label_drop_detach the gate learns from L_LD alone, so L_MR cannot push it up (bench/RESULTS.md §10)
                log_gate = F.logsigmoid(u.detach() if cfg.label_drop_detach else u).to(scores.dtype)
                gate = self._gate(log_gate, length, neutral=0.0)
                gated = decision = scores.add_(gate) if in_place else scores + gate
            else:
                gate = self._gate(lhat.detach() if cfg.label_drop_detach else lhat, length)
                if mode == "prob":
                    p = (torch.sigmoid(scores.float()) * gate.float()).clamp(1e-7, 1 - 1e-7)
                    decision = (torch.log(p) - torch.log1p(-p)).to(scores.dtype)
                    gated = None if in_place else scores * gate  # only the loss reads it
                else:
                    # P, eq 16 (mask applied after gating: SPEC §8.12)
                    gated = decision = scores.mul_(gate) if in_place else scores * gate
        else:
            gated = decision = scores
        logits = decision.masked_fill_(~valid, MASK_VALUE) if in_place else decision.masked_fill(~valid, MASK_VALUE)

        sg_loss = ld_loss = loss = None
        if has_targets:
            if span_graph_labels is None:
                span_graph_labels = links_to_dense(span_graph_links, b, cfg.num_channels, length)
            sg_loss = span_graph_loss(gated, span_graph_labels, valid, cfg.span_graph_loss_reduction)  # eqs 12-14
            loss = cfg.span_graph_loss_weight * sg_loss
        if u is not None and label_drop_targets is not None:
            ld_loss = label_drop_loss(u, label_drop_targets, valid_tok, cfg.label_drop_loss_reduction)  # eqs 17-18
            ld = cfg.label_drop_loss_weight * ld_loss
            loss = ld if loss is None else loss + ld

        return LDNetOutput(
            loss=loss,
            logits=logits,
            label_drop_probs=lhat,
            span_graph_loss=sg_loss,
            label_drop_loss=ld_loss,
            last_hidden_state=hidden,
        )


__all__ = ["MASK_VALUE", "LDNetModel", "LDNetOutput", "LDNetPreTrainedModel", "links_to_dense",
           "multilabel_categorical_crossentropy", "rope", "rope_cos_sin"]

AutoConfig.register("ldnet", LDNetConfig, exist_ok=True)
AutoModel.register(LDNetConfig, LDNetModel, exist_ok=True)
