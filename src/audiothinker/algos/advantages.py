"""Group-relative advantages (GRPO; SPEC section 5): A_i = (R_i - mean_group) / (std + eps)."""

from __future__ import annotations

import torch

SCALES = ("group", "batch", "none")


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """Advantages for rewards laid out group by group.

    rewards: [N] with N = num_prompts * group_size; completions of one prompt are contiguous.
    scale: "group" divides by each group's std (GRPO), "batch" by the std of all rewards
    (Dr. GRPO / TRL scale_rewards="batch"), "none" only centres (Dr. GRPO).
    std is the unbiased estimator, as torch.std and TRL. A group whose rewards are all equal
    gets advantage 0 (never NaN): its centred rewards are 0 and the divisor is >= eps.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown advantage scale {scale!r}; valid: {list(SCALES)}")
    if rewards.ndim != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {group_size}")
    grouped = rewards.view(-1, group_size)  # [B, G]
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # [B, G]
    # The float mean of equal values can miss them by an ulp, and ulp / eps is ~1e-3: zero such groups exactly.
    same = (grouped == grouped[:, :1]).all(dim=1, keepdim=True)  # [B, 1]
    centred = centred.masked_fill(same, 0.0)
    if scale == "group":
        std = grouped.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(grouped[:, :1])
        centred = centred / (std + eps)
    elif scale == "batch":
        std = rewards.std() if rewards.numel() > 1 else rewards.new_zeros(())
        centred = centred / (std + eps)
    return centred.reshape(-1)  # [N]
