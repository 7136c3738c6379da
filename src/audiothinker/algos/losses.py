"""Clipped GRPO surrogate with k3 KL, and the loss reductions of TRL's `loss_type` (a registry, verl style)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(pi || pi_ref) per token: exp(ref - logp) - (ref - logp) - 1 (>= 0)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def choice_token_mask(
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, think_ids: Sequence[int], answer_ids: Sequence[int]
) -> torch.Tensor:
    """[N, T] bool: True at the token that chooses think or answer, in each completion that opens with the
    `<think>` or the `<answer>` tag (think_ids / answer_ids: their token ids). That token is the first at which
    the two tags' ids differ (`think` after a shared `<` in Qwen's vocabulary; the first token where a tag is one
    token). A completion that opens with neither tag has no such token.
    """
    k = next((i for i, (a, b) in enumerate(zip(think_ids, answer_ids)) if a != b), None)
    if k is None:
        raise ValueError(f"the think and answer tags tokenize alike up to the shorter one ({list(think_ids)} / "
                         f"{list(answer_ids)}): no token chooses between them")
    choice = torch.zeros_like(completion_ids, dtype=torch.bool)
    if completion_ids.size(1) <= k:
        return choice
    prefix = completion_ids.new_tensor(list(think_ids[:k])).view(1, k)
    at_k = completion_ids[:, k]
    opens = (completion_ids[:, :k] == prefix).all(1) & ((at_k == think_ids[k]) | (at_k == answer_ids[k]))
    choice[:, k] = opens & completion_mask[:, k].bool()
    return choice


def kl_weights(choice: torch.Tensor, beta: float, decision_beta: float) -> torch.Tensor:
    """[N, T] KL coefficients: `decision_beta` at the tokens that choose the mode (`choice_token_mask`), `beta`
    at every other token."""
    return torch.where(choice, float(decision_beta), float(beta))  # on choice's device


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
    beta: float | torch.Tensor = 0.0,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
) -> PolicyLossOutput:
    """Per-token loss  -min(r A, clip(r, 1-eps, 1+eps_high) A) + beta * KL_k3.

    logp, old_logp, ref_logp: [N, T] token log-probs; advantages: [N] (one per completion) or [N, T] (one
    per token, `train.mode_advantage: split`); beta: one coefficient, or [N, T] (one per token, `kl_weights`).
    """
    eps_high = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(logp - old_logp)  # [N, T]
    adv = advantages.unsqueeze(1) if advantages.ndim == 1 else advantages  # [N, 1] or [N, T]
    surrogate = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + eps_high) * adv
    per_token = -torch.min(surrogate, clipped)  # [N, T]
    kl = None
    if isinstance(beta, torch.Tensor) or beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs reference log-probs")
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + beta * kl
    clipped_low = (ratio < 1.0 - epsilon) & (adv < 0)
    clipped_high = (ratio > 1.0 + eps_high) & (adv > 0)
    return PolicyLossOutput(per_token, kl, clipped_low, clipped_high)


class LossType(NamedTuple):
    # (per_token_loss [N, T], mask [N, T], *, max_completion_length, num_items) -> scalar
    reduce: Callable[..., torch.Tensor]
    global_normaliser: bool  # divides by a count over the whole global batch (`num_items`), not by this micro-batch's


LOSS_TYPES: dict[str, LossType] = {}
"""`train.loss_type` -> its reduction; every name registered with `register_loss_type`."""


def register_loss_type(name: str, *, global_normaliser: bool = False) -> Callable[[Callable], Callable]:
    """Decorator: make a loss reduction selectable as `train.loss_type: <name>`.

    global_normaliser: the reduction needs `num_items` (active tokens of the global batch / processes);
    the step computes it and undoes accelerate's division of the loss by gradient_accumulation_steps.
    """

    def add(fn: Callable) -> Callable:
        if name in LOSS_TYPES and LOSS_TYPES[name].reduce is not fn:
            raise ValueError(f"loss_type {name!r} is registered twice")
        LOSS_TYPES[name] = LossType(fn, global_normaliser)
        return fn

    return add


def loss_type_names() -> list[str]:
    return list(LOSS_TYPES)


def get_loss_type(name: str) -> LossType:
    if name not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {name!r}; valid: {list(LOSS_TYPES)}")
    return LOSS_TYPES[name]


def reduce_loss(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: str,
    max_completion_length: int | None = None,
    num_items: float | None = None,
) -> torch.Tensor:
    """Reduce [N, T] per-token losses to a scalar with the registered `loss_type` (TRL's meanings)."""
    reduce = get_loss_type(loss_type).reduce
    return reduce(per_token_loss, mask.to(per_token_loss.dtype), max_completion_length=max_completion_length,
                  num_items=num_items)


@register_loss_type("grpo")
def grpo_loss(per_token_loss: torch.Tensor, mask: torch.Tensor, **_: object) -> torch.Tensor:
    """Mean over sequences of each sequence's token mean (length-biased; the paper's GRPO)."""
    return ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()


@register_loss_type("dr_grpo")
def dr_grpo_loss(per_token_loss: torch.Tensor, mask: torch.Tensor, *, max_completion_length: int | None = None,
                 **_: object) -> torch.Tensor:
    """Token sum / (N * max_completion_length): a constant normaliser (Dr. GRPO)."""
    if max_completion_length is None:
        raise ValueError("dr_grpo needs max_completion_length")
    return (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)


@register_loss_type("dapo", global_normaliser=True)
def dapo_loss(per_token_loss: torch.Tensor, mask: torch.Tensor, *, num_items: float | None = None,
              **_: object) -> torch.Tensor:
    """Token sum / num_items, the active-token count of the whole global batch divided by the number
    of processes (gradients are averaged across processes; see `global_token_normaliser`)."""
    if num_items is None:
        raise ValueError("dapo needs num_items (active tokens in the global batch / processes)")
    return (per_token_loss * mask).sum() / max(float(num_items), 1.0)


@register_loss_type("bnpo")
def bnpo_loss(per_token_loss: torch.Tensor, mask: torch.Tensor, **_: object) -> torch.Tensor:
    """Token mean over this (local) batch."""
    return (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)


def global_token_normaliser(global_tokens: float, num_processes: int) -> float:
    """`num_items` of a global-normaliser loss type: active tokens summed over every process, divided by
    the number of processes, since DDP averages the processes' gradients."""
    return global_tokens / num_processes
