"""Sampler/learner mismatch: the log-prob gap and truncated importance sampling (TIS).

A fast sampler (vLLM) and the learner (transformers) compute the same policy with different
kernels, so pi_vllm(token) and pi_old(token) differ slightly even on equal weights; the samples
are then slightly off-policy. TIS (TRL's `vllm_importance_sampling_correction`, verl's TIS)
weights each token's loss by min(pi_old / pi_vllm, cap), computed without gradient.
"""

from __future__ import annotations

import torch


def logprob_gap(learner: torch.Tensor, sampler: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(mean, max) of |learner - sampler| log-probs over the completion tokens. learner/sampler/mask [N, C]."""
    m = mask.bool()
    if not bool(m.any()):
        return 0.0, 0.0
    diff = (learner.detach().float() - sampler.float()).abs()[m]  # [tokens]
    return float(diff.mean()), float(diff.max())


def tis_weights(learner_old: torch.Tensor, sampler: torch.Tensor, cap: float) -> torch.Tensor:
    """min(exp(log pi_old - log pi_sampler), cap) per token, no gradient. [N, C] -> [N, C]."""
    return torch.exp(learner_old.detach().float() - sampler.float()).clamp(max=cap)
