"""Group-relative advantages (GRPO; SPEC section 5): A_i = (R_i - mean_group) / (std + eps).

The divisor is a registry (`train.scale_rewards`), verl style: each scale is a pure function of the
grouped rewards and the rewards of the whole global batch (gathered by the caller).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Scale = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | None"]
"""(grouped rewards [B, G], global-batch rewards [M]) -> the std to divide by (broadcasts to [B, G]); None: centre only."""

SCALES: dict[str, Scale] = {}


def register_scale(name: str) -> Callable[[Scale], Scale]:
    """Decorator: make an advantage scale selectable as `train.scale_rewards: <name>`."""

    def add(fn: Scale) -> Scale:
        if name in SCALES and SCALES[name] is not fn:
            raise ValueError(f"advantage scale {name!r} is registered twice")
        SCALES[name] = fn
        return fn

    return add


def scale_names() -> list[str]:
    return list(SCALES)


@register_scale("group")
def group_std(grouped: torch.Tensor, batch_rewards: torch.Tensor) -> torch.Tensor:
    """Each group's std (GRPO)."""
    return grouped.std(dim=1, keepdim=True) if grouped.size(1) > 1 else torch.zeros_like(grouped[:, :1])  # [B, 1]


@register_scale("batch")
def batch_std(grouped: torch.Tensor, batch_rewards: torch.Tensor) -> torch.Tensor:
    """The std of every reward of the global batch (Dr. GRPO / TRL scale_rewards="batch")."""
    return batch_rewards.std() if batch_rewards.numel() > 1 else batch_rewards.new_zeros(())  # []


@register_scale("none")
def no_scale(grouped: torch.Tensor, batch_rewards: torch.Tensor) -> None:
    """Centre only (Dr. GRPO)."""
    return None


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4,
    batch_rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """Advantages for rewards laid out group by group.

    rewards: [N] with N = num_prompts * group_size; completions of one prompt are contiguous.
    scale: a registered scale: "group" divides by each group's std (GRPO), "batch" by the std of
    all rewards (Dr. GRPO / TRL scale_rewards="batch"), "none" only centres (Dr. GRPO).
    batch_rewards: [M] the rewards of the global batch (all processes; groups never straddle
    processes, so only "batch" reads it); default `rewards`.
    std is the unbiased estimator, as torch.std and TRL. A group whose rewards are all equal
    gets advantage 0 (never NaN): its centred rewards are 0 and the divisor is >= eps.
    """
    grouped = _grouped(rewards, group_size, scale)  # [B, G]
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # [B, G]
    return _scaled(grouped, centred, rewards, scale, eps, batch_rewards)


def _grouped(rewards: torch.Tensor, group_size: int, scale: str) -> torch.Tensor:
    """rewards [N] as [B, G], after checking the scale's name and the shape."""
    if scale not in SCALES:
        raise ValueError(f"unknown advantage scale {scale!r}; valid: {list(SCALES)}")
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {group_size}")
    return rewards.view(-1, group_size)


def _scaled(grouped: torch.Tensor, centred: torch.Tensor, rewards: torch.Tensor, scale: str, eps: float,
            batch_rewards: torch.Tensor | None) -> torch.Tensor:
    """Centred rewards [B, G] divided by the scale's std, flattened to [N]; a group of equal rewards is 0."""
    # The float mean of equal values can miss them by an ulp, and ulp / eps is ~1e-3: zero such groups exactly.
    same = (grouped == grouped[:, :1]).all(dim=1, keepdim=True)  # [B, 1]
    centred = centred.masked_fill(same, 0.0)
    std = SCALES[scale](grouped, rewards if batch_rewards is None else batch_rewards)
    if std is not None:
        centred = centred / (std + eps)
    return centred.reshape(-1)  # [N]


def within_mode_advantages(
    rewards: torch.Tensor, thinks: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4,
    batch_rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """Rewards centred on the mean of their group's completions of the same mode (think or not), divided
    by the divisor `group_advantages` uses. [N]; a completion alone in its mode in its group gets 0.

    rewards, thinks: [N], group by group (thinks: bool).
    """
    if thinks.shape != rewards.shape:
        raise ValueError(f"thinks of shape {tuple(thinks.shape)} do not match rewards of shape {tuple(rewards.shape)}")
    grouped = _grouped(rewards, group_size, scale)  # [B, G]
    modes = thinks.view(-1, group_size).bool()  # [B, G]
    centred = torch.zeros_like(grouped)
    for mode in (modes, ~modes):
        w = mode.to(grouped.dtype)
        mean = (grouped * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp(min=1.0)  # [B, 1]
        centred = torch.where(mode, grouped - mean, centred)
    return _scaled(grouped, centred, rewards, scale, eps, batch_rewards)


def decision_positions(completion_ids: torch.Tensor, thinks: torch.Tensor, group_size: int) -> torch.Tensor:
    """The position of the token that decides each completion's mode: the last position at which it first
    differs from a completion of the other mode in its group (with `<think>` / `<answer>` openings, the
    token after their shared prefix). [N] long; -1 where the group has one mode only.

    completion_ids: [N, T]; thinks: [N] bool, group by group.
    """
    n, t = completion_ids.shape
    ids = completion_ids.view(-1, group_size, t)  # [B, G, T]
    modes = thinks.view(-1, group_size).bool()  # [B, G]
    differs = ids.unsqueeze(2) != ids.unsqueeze(1)  # [B, G, G, T]
    any_diff = differs.any(-1)
    first = torch.where(any_diff, differs.int().argmax(-1), torch.full_like(any_diff, t - 1, dtype=torch.long))
    other = modes.unsqueeze(2) != modes.unsqueeze(1)  # [B, G, G]: j is of the other mode than i
    pos = torch.where(other, first, torch.full_like(first, -1)).amax(-1)  # [B, G]
    return pos.reshape(n)


def mode_split_advantages(
    advantages: torch.Tensor, within: torch.Tensor, decision: torch.Tensor, length: int, decision_weight: float = 1.0
) -> torch.Tensor:
    """Per-token advantages [N, length]: the group advantage up to and including the decision token, the
    within-mode advantage after it (a completion whose group has one mode: the group advantage throughout,
    which is then its within-mode one).

    So the payoff of a mode as a whole (its mean against the group's) moves only the tokens that choose
    the mode, and the tokens after them are weighed against completions of their own mode alone.
    decision_weight (`train.decision_weight`) multiplies the advantage of the tokens up to and including the
    decision; a one-mode group (decision -1) has none, so it is unchanged.
    """
    positions = torch.arange(length, device=advantages.device).unsqueeze(0)  # [1, T]
    choice = (advantages * decision_weight).unsqueeze(1)  # [N, 1]
    return torch.where(positions <= decision.unsqueeze(1), choice, within.unsqueeze(1))
