"""LDNet losses, one function per paper equation group (Yang et al. 2025; SPEC §4.5-4.6).

* :func:`multilabel_categorical_crossentropy` — eqs 12-13, the multi-label categorical CE of one score grid;
* :func:`span_graph_loss` — eq 14, ``L_MR`` over records x channels;
* :func:`label_drop_loss` — eqs 17-18, ``L_LD``, the label-drop BCE.

The model-transfer MSE ``L_MT`` (eq 19) reads teacher scores that live in the training data, so it sits with the
trainer (``trainers.trainer.distillation_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Large negative used inside the fp32 loss to exclude cells from a logsumexp (never leaves the loss).
LSE_EXCLUDE = -1.0e12


def multilabel_categorical_crossentropy(
    scores: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Eqs 12-13 per grid: ``log(1 + sum_neg e^s) + log(1 + sum_pos e^-s)`` over the valid cells.

    Args:
        scores: ``[..., N]`` logits; labels: ``[..., N]`` in {0, 1}; valid: ``[..., N]`` bool.
    Returns:
        ``[...]`` loss per grid, computed in fp32.
    """
    s = scores.float()
    pos = labels.bool() & valid
    neg = (~labels.bool()) & valid
    zeros = torch.zeros_like(s[..., :1])
    neg_term = torch.logsumexp(torch.cat([s.masked_fill(~neg, LSE_EXCLUDE), zeros], dim=-1), dim=-1)
    pos_term = torch.logsumexp(torch.cat([(-s).masked_fill(~pos, LSE_EXCLUDE), zeros], dim=-1), dim=-1)
    return neg_term + pos_term


def span_graph_loss(
    gated: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Eq 14, ``L_MR``: eqs 12-13 on every record's channel grid ``[B, C, L, L]``.

    ``reduction="mean"`` averages over records x channels (reference code); ``"sum"`` sums the channels and averages
    the records (the paper's sum over relations ``r``).
    """
    per_grid = multilabel_categorical_crossentropy(
        gated.flatten(2), labels.flatten(2), valid.expand_as(gated).flatten(2)
    )  # [B, C]
    return per_grid.mean() if reduction == "mean" else per_grid.sum(-1).mean()


def label_drop_loss(
    gate_logits: torch.Tensor, targets: torch.Tensor, token_mask: torch.Tensor, reduction: str = "valid_mean"
) -> torch.Tensor:
    """Eqs 17-18, ``L_LD``: BCE of the gate logits ``u`` (``lhat = sigmoid(u)``, eq 15) against ``l*`` (SPEC §3.4).

    Args:
        gate_logits: ``[B, L]`` (one shared head) or ``[B, C, L]`` (a head per channel).
        targets: ``[B, L]`` gold label vector ``l*`` in {0, 1}, shared by the channels.
        token_mask: ``[B, L]`` real (non-pad) tokens.
        reduction: ``"valid_mean"`` over real tokens (SPEC §8.13) or ``"padded_mean"`` over the padded grid.
    """
    target = targets.float()
    mask = token_mask
    if gate_logits.dim() == 3:
        target = target[:, None, :].expand_as(gate_logits)
        mask = token_mask[:, None, :].expand_as(gate_logits)
    bce = F.binary_cross_entropy_with_logits(gate_logits.float(), target, reduction="none") * mask
    if reduction == "valid_mean":
        return bce.sum() / mask.sum().clamp(min=1)
    return bce.mean()


__all__ = ["LSE_EXCLUDE", "label_drop_loss", "multilabel_categorical_crossentropy", "span_graph_loss"]
