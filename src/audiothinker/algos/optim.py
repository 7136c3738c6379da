"""The optimizer, its schedule and the optimizer step: one helper for GRPO (trainer/step.py) and SFT (sft.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from audiothinker.config import TrainConfig


def build_optimizer(
    model: torch.nn.Module, train: TrainConfig, total_updates: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over the trainable parameters (train.learning_rate, train.weight_decay) and the
    train.lr_scheduler schedule (train.warmup_steps; warmup_stable_decay: train.lr_decay_ratio) over
    `total_updates` optimizer steps."""
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters (is everything frozen?)")
    opt = torch.optim.AdamW(params, lr=train.learning_rate, weight_decay=train.weight_decay)
    extra = {}
    if train.lr_scheduler == "warmup_stable_decay":  # linear decay to 0 over the last lr_decay_ratio of the run
        extra = {"num_decay_steps": decay_steps(train.lr_decay_ratio, total_updates, train.warmup_steps),
                 "decay_type": "linear"}
    sched = get_scheduler(train.lr_scheduler, opt, num_warmup_steps=train.warmup_steps, num_training_steps=total_updates,
                          scheduler_specific_kwargs=extra)
    return opt, sched


def decay_steps(ratio: float, total_updates: int, warmup_steps: int) -> int:
    """Optimizer steps of a final decay that takes `ratio` of `total_updates`: at least one, at most those
    after the warm-up."""
    after_warmup = total_updates - warmup_steps
    if after_warmup < 1:
        raise ValueError(f"train.warmup_steps: {warmup_steps} leaves no step of the {total_updates} to decay over")
    return min(after_warmup, max(1, round(ratio * total_updates)))


def backward_and_step(
    acc: Any, model: torch.nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: Any,
    max_grad_norm: float,
) -> float | None:
    """Backward of one micro-batch (inside `acc.accumulate(model)`); after the last micro-batch of an
    accumulation (`acc.sync_gradients`): clip to `max_grad_norm` (0: off), optimizer and scheduler
    step, gradients zeroed. Returns the gradient norm before clipping when it clipped, else None."""
    acc.backward(loss)
    if not acc.sync_gradients:
        return None
    norm = float(acc.clip_grad_norm_(model.parameters(), max_grad_norm)) if max_grad_norm > 0 else None
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return norm
