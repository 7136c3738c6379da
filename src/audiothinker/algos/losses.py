"""Clipped GRPO surrogate with k3 KL, and the loss reductions of TRL's `loss_type`."""

from __future__ import annotations

from typing import NamedTuple

import torch

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo")


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi || pi_ref) per token: exp(ref - logp) - (ref - logp) - 1 (>= 0)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


class PolicyLossOutput(NamedTuple):
    per_token_loss: torch.Tensor  # [N, T]
    kl: torch.Tensor | None  # [N, T], None when beta == 0
    clipped_low: torch.Tensor  # [N, T] bool: ratio < 1 - eps with negative advantage (gradient cut)
    clipped_high: torch.Tensor  # [N, T] bool: ratio > 1 + eps_high with positive advantage (gradient cut)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
) -> PolicyLossOutput:
    """Per-token loss  -min(r A, clip(r, 1-eps, 1+eps_high) A) + beta * KL_k3.

    logp, old_logp, ref_logp: [N, T] token log-probs; advantages: [N] (one per completion).
    """
    eps_high = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(logp - old_logp)  # [N, T]
    adv = advantages.unsqueeze(1)  # [N, 1]
    surrogate = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + eps_high) * adv
    per_token = -torch.min(surrogate, clipped)  # [N, T]
    kl = None
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs reference log-probs")
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + beta * kl
    clipped_low = (ratio < 1.0 - epsilon) & (adv < 0)
    clipped_high = (ratio > 1.0 + eps_high) & (adv > 0)
    return PolicyLossOutput(per_token, kl, clipped_low, clipped_high)


def reduce_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    max_completion_length: int | None = None,
    num_items: float | None = None,
) -> torch.Tensor:
    """Reduce [N, T] per-token losses to a scalar, with TRL's meanings of `loss_type`.

    grpo:    mean over sequences of each sequence's token mean (length-biased; the paper's GRPO).
    bnpo:    token mean over this (local) batch.
    dr_grpo: token sum / (N * max_completion_length): a constant normaliser (Dr. GRPO).
    dapo:    token sum / num_items, the active-token count of the whole global batch divided
             by the number of processes (gradients are averaged across processes).
    """
    mask = mask.to(per_token_loss.dtype)
    if loss_type == "grpo":
        return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "bnpo":
        return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("dr_grpo needs max_completion_length")
        return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
    if loss_type == "dapo":
        if num_items is None:
            raise ValueError("dapo needs num_items (active tokens in the global batch / processes)")
        return (per_token_loss * mask).sum() / max(float(num_items), 1.0)
    raise ValueError(f"unknown loss_type {loss_type!r}; valid: {list(LOSS_TYPES)}")
