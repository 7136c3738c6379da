"""One GRPO step, and the objects it needs (SPEC section 5).

    rollout    G completions per prompt, audio in the forward
    score      parse, judge, combine the preset's rewards (lambda over the global batch)
    advantage  group-relative
    update     num_iterations passes of gradient_accumulation_steps micro-batches: clipped
               surrogate + beta * k3 KL to the reference, audio features in every forward

`train()` in grpo.py drives this step; the step-time benchmark calls it directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch

from audiothinker.algos import policy_loss, reduce_loss
from audiothinker.config import Config
from audiothinker.data.records import AudioQA
from audiothinker.models.base import PromptBatch, ScoringModule
from audiothinker.models.loading import load_policy
from audiothinker.rewards import Preset, get_preset
from audiothinker.rollout import Rollout, SamplingParams, build_engine
from audiothinker.trainer.data import prompt_batch, slice_batch
from audiothinker.trainer.distributed import Dist, unwrap_for_generation
from audiothinker.trainer.scoring import ScoredBatch, score_batch
from audiothinker.trainer.tracking import PhaseTimer


@dataclass
class StepContext:
    cfg: Config
    dist: Dist
    policy: Any  # the family adapter
    engine: Any  # RolloutEngine
    scorer: torch.nn.Module  # ScoringModule around the policy model, prepared by accelerate
    ref_scorer: torch.nn.Module | None  # frozen copy; None with LoRA (adapter disabled) or beta = 0
    optimizer: Any
    scheduler: Any
    preset: Preset
    judge: Any
    sampling: SamplingParams
    score: Callable[[list[AudioQA], list[str], int], ScoredBatch]  # (records, texts, step) -> rewards


@dataclass
class StepResult:
    batch: PromptBatch
    rollout: Rollout
    scored: ScoredBatch
    stats: dict[str, float]  # loss, kl, clip ratios, grad norm


def _optimizer(model: torch.nn.Module, cfg: Config, total_updates: int):
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters (is everything frozen?)")
    opt = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay)
    sched = get_scheduler(cfg.train.lr_scheduler, opt, num_warmup_steps=cfg.train.warmup_steps, num_training_steps=total_updates)
    return opt, sched


def build_context(cfg: Config, dist: Dist, judge: Any = None) -> StepContext:
    """Policy, rollout engine, optimizer, scheduler and reference, prepared by accelerate."""
    acc = dist.accelerator
    preset = get_preset(cfg.reward.preset)
    with acc.main_process_first():  # the first process builds a tiny model; the others load it
        policy = load_policy(cfg.model)
    scorer = ScoringModule(policy.model, policy)
    optimizer, scheduler = _optimizer(scorer, cfg, cfg.max_steps * cfg.train.num_iterations)
    scorer, optimizer = acc.prepare(scorer, optimizer)
    acc.register_for_checkpointing(scheduler)
    ref_scorer = None
    if cfg.train.beta > 0 and not cfg.model.lora:
        ref_cfg = dataclasses.replace(cfg.model, lora=False, gradient_checkpointing=False)
        ref_model = load_policy(ref_cfg, path=policy.name_or_path).model
        ref_model.requires_grad_(False).eval()
        ref_scorer = ScoringModule(ref_model, policy)
        if acc.distributed_type.name == "DEEPSPEED":  # ZeRO-3 must shard the reference too
            ref_scorer = acc.prepare_model(ref_scorer, evaluation_mode=True)
        else:
            ref_scorer.to(acc.device)
    G = cfg.rollout.num_generations

    def score(records: list[AudioQA], texts: list[str], step: int) -> ScoredBatch:
        return score_batch(records, texts, G, preset, judge, step, cfg.max_steps, dist.global_fraction, dist.global_mean)

    sampling = SamplingParams(cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.top_k, cfg.rollout.max_new_tokens,
                              repetition_penalty=cfg.rollout.repetition_penalty)
    engine = build_engine(cfg.rollout.engine, policy)
    return StepContext(cfg, dist, policy, engine, scorer, ref_scorer, optimizer, scheduler, preset, judge, sampling, score)


def grpo_step(ctx: StepContext, records: list[AudioQA], step: int, timer: PhaseTimer) -> StepResult:
    """Rollout, score, advantages, update on this process's `records`; phases timed into `timer`."""
    cfg, acc, G = ctx.cfg, ctx.dist.accelerator, ctx.cfg.rollout.num_generations
    bs = cfg.train.per_device_batch_size
    with timer("prepare"):
        batch = prompt_batch(
            ctx.policy, records, ctx.preset.prompt, cfg.data.max_audio_seconds, cfg.rollout.max_prompt_length
        ).to(acc.device)
    with timer("rollout"), unwrap_for_generation(acc, ctx.scorer) as gen_model:
        rollout = ctx.engine.generate(gen_model, batch, G, ctx.sampling)
    with timer("reward"):
        scored = ctx.score(records, rollout.texts, step)
        rewards = torch.tensor(scored.total, dtype=torch.float32, device=acc.device)  # [B*G]
        advantages = ctx.dist.advantages(rewards, G, cfg.train.scale_rewards)  # [B*G]
    micro = [(slice_batch(batch, a, a + bs), slice(a * G, (a + bs) * G)) for a in range(0, len(records), bs)]
    with timer("ref_old_logp"), torch.no_grad():
        ref_logps = [_ref_logp(acc, ctx.scorer, ctx.ref_scorer, cfg, mb, rollout, sl, G) for mb, sl in micro]
        old_logps = [
            ctx.scorer(mb, rollout.completion_ids[sl], rollout.completion_mask[sl], G, cfg.rollout.temperature)
            if cfg.train.num_iterations > 1 else None  # one pass: old = current, detached (ratio 1)
            for mb, sl in micro
        ]
    num_items = ctx.dist.dapo_normaliser(rollout.completion_mask) if cfg.train.loss_type == "dapo" else None
    with timer("update"):
        stats = _update(
            acc, ctx.scorer, ctx.optimizer, ctx.scheduler, cfg, micro, rollout, advantages, ref_logps, old_logps, num_items
        )
    return StepResult(batch, rollout, scored, stats)


def _ref_logp(acc, scorer, ref_scorer, cfg: Config, mb, rollout, sl, G):
    if cfg.train.beta == 0:
        return None
    args = (mb, rollout.completion_ids[sl], rollout.completion_mask[sl], G, cfg.rollout.temperature)
    if ref_scorer is not None:
        return ref_scorer(*args)
    peft_model = acc.unwrap_model(scorer).model
    with peft_model.disable_adapter():  # LoRA: the reference is the base model, no second copy
        return scorer(*args)


def _update(acc, scorer, optimizer, scheduler, cfg: Config, micro, rollout, advantages, ref_logps, old_logps, num_items):
    """num_iterations passes over the rollout batch, one optimizer step per pass."""
    G = cfg.rollout.num_generations
    sums = {"loss": 0.0, "kl": 0.0, "clip_low": 0.0, "clip_high": 0.0, "tokens": 0.0, "grad_norm": 0.0}
    ga = cfg.train.gradient_accumulation_steps
    for _ in range(cfg.train.num_iterations):
        for (mb, sl), ref, old in zip(micro, ref_logps, old_logps):
            ids, mask = rollout.completion_ids[sl], rollout.completion_mask[sl]
            with acc.accumulate(scorer):
                logp = scorer(mb, ids, mask, G, cfg.rollout.temperature)  # [n*G, C]
                out = policy_loss(
                    logp, logp.detach() if old is None else old, advantages[sl], ref,
                    cfg.train.beta, cfg.train.epsilon, cfg.train.epsilon_high,
                )
                loss = reduce_loss(out.per_token_loss, mask, cfg.train.loss_type, cfg.rollout.max_new_tokens, num_items)
                if cfg.train.loss_type == "dapo":
                    loss = loss * ga  # accelerate divides by ga; dapo's normaliser already spans the global batch
                acc.backward(loss)
                if acc.sync_gradients:
                    if cfg.train.max_grad_norm > 0:
                        sums["grad_norm"] += float(acc.clip_grad_norm_(scorer.parameters(), cfg.train.max_grad_norm))
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
            m = mask.float()
            n_tok = float(m.sum())
            sums["loss"] += float(loss.detach()) / ga
            sums["tokens"] += n_tok
            if out.kl is not None:
                sums["kl"] += float((out.kl.detach() * m).sum())
            sums["clip_low"] += float((out.clipped_low.float() * m).sum())
            sums["clip_high"] += float((out.clipped_high.float() * m).sum())
    tok = max(sums["tokens"], 1.0)
    return {
        "loss": sums["loss"] / cfg.train.num_iterations,
        "kl": sums["kl"] / tok,
        "clip_ratio/low": sums["clip_low"] / tok,
        "clip_ratio/high": sums["clip_high"] / tok,
        "clip_ratio/region": (sums["clip_low"] + sums["clip_high"]) / tok,
        "grad_norm": sums["grad_norm"] / cfg.train.num_iterations,
    }

