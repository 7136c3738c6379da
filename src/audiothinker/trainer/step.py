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
import math
from dataclasses import dataclass
from typing import Callable

import torch

from audiothinker.algos import (choice_token_mask, decision_positions, get_loss_type, global_token_normaliser,
                                group_advantages, kl_weights, mode_split_advantages, policy_loss, reduce_loss,
                                within_mode_advantages)
from audiothinker.algos.importance import logprob_gap, tis_weights
from audiothinker.algos.optim import backward_and_step, build_optimizer
from audiothinker.config import Config
from audiothinker.data.batching import Skip, prompt_batch, prompt_batch_skipping, slice_batch
from audiothinker.data.records import AudioQA
from audiothinker.judge.base import Judge
from audiothinker.models.base import Policy, PromptBatch, ScoringModule
from audiothinker.models.loading import load_policy
from audiothinker.parsing import first_tag_ids
from audiothinker.rewards import Preset, get_preset
from audiothinker.rollout import EngineOptions, Rollout, RolloutEngine, SamplingParams, build_engine
from audiothinker.trainer.distributed import Dist, unwrap_for_generation
from audiothinker.trainer.scoring import ScoredBatch, score_batch
from audiothinker.trainer.tracking import PhaseTimer


@dataclass
class StepContext:
    cfg: Config
    dist: Dist
    policy: Policy  # the family adapter
    engine: RolloutEngine
    scorer: torch.nn.Module  # ScoringModule around the policy model, prepared by accelerate
    ref_scorer: torch.nn.Module | None  # frozen copy; None with LoRA (adapter disabled) or beta = 0
    optimizer: torch.optim.Optimizer  # accelerate's wrapper of it
    scheduler: torch.optim.lr_scheduler.LRScheduler  # transformers.get_scheduler
    preset: Preset
    judge: Judge | None  # None: the preset needs no judge
    sampling: SamplingParams
    score: Callable[[list[AudioQA], list[str], int], ScoredBatch]  # (records, texts, step) -> rewards


@dataclass
class StepResult:
    batch: PromptBatch
    rollout: Rollout
    scored: ScoredBatch
    stats: dict[str, float]  # loss, kl, clip ratios, grad norm
    records: list[AudioQA] | None = None  # the records trained on (data.on_error=skip may replace some)
    skips: list[Skip] = dataclasses.field(default_factory=list)  # one per record left out


def build_context(cfg: Config, dist: Dist, judge: Judge | None = None) -> StepContext:
    """Policy, rollout engine, optimizer, scheduler and reference, prepared by accelerate."""
    acc = dist.accelerator
    preset = get_preset(cfg.reward.preset)
    with acc.main_process_first():  # the first process builds a tiny model; the others load it
        policy = load_policy(cfg.model)
    scorer = ScoringModule(policy.model, policy)
    optimizer, scheduler = build_optimizer(scorer, cfg.train, cfg.max_steps * cfg.train.num_iterations)
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

    sampling = sampling_params(cfg)
    engine = build_engine(cfg.rollout.engine, policy, engine_options(cfg, policy, acc.process_index))
    return StepContext(cfg, dist, policy, engine, scorer, ref_scorer, optimizer, scheduler, preset, judge, sampling, score)


def sampling_params(cfg: Config) -> SamplingParams:
    r = cfg.rollout
    return SamplingParams(
        r.temperature, r.top_p, r.top_k, r.max_new_tokens,
        repetition_penalty=r.repetition_penalty,
        seed=None,  # set per step in grpo_step
    )


def engine_options(cfg: Config, policy: Policy, process_index: int = 0) -> EngineOptions:
    r = cfg.rollout
    seconds = min(cfg.data.max_audio_seconds or policy.max_audio_seconds, policy.max_audio_seconds)
    audio_tokens = int(25 * seconds) + 2 if math.isfinite(seconds) else 0  # 25 audio tokens/s (both families); text: none
    return EngineOptions(
        name_or_path=policy.name_or_path, dtype=cfg.model.dtype, seed=cfg.seed + process_index,
        max_model_len=r.vllm_max_model_length or r.max_prompt_length + audio_tokens + r.max_new_tokens,
        max_num_seqs=max(cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps * r.num_generations, 8),
        gpu_memory_utilization=r.vllm_gpu_memory_utilization, enable_sleep_mode=r.vllm_enable_sleep_mode,
    )


def grpo_step(
    ctx: StepContext, records: list[AudioQA], step: int, timer: PhaseTimer, pool: list[AudioQA] | None = None
) -> StepResult:
    """Rollout, score, advantages, update on this process's `records`; phases timed into `timer`.

    With data.on_error=skip a record whose clip or prompt fails is replaced by the next usable one
    of `pool` (the training set); StepResult.records and .skips say which.
    """
    cfg, acc, G = ctx.cfg, ctx.dist.accelerator, ctx.cfg.rollout.num_generations
    bs = cfg.train.per_device_batch_size
    skips: list = []
    with timer("prepare"):
        args = (ctx.policy, records, ctx.preset.prompt, cfg.data.max_audio_seconds, cfg.rollout.max_prompt_length)
        if cfg.data.on_error == "skip":
            batch, records, skips = prompt_batch_skipping(*args, pool=pool or records)
        else:
            batch = prompt_batch(*args)
        batch = batch.to(acc.device)
    with timer("rollout"), unwrap_for_generation(acc, ctx.scorer) as gen_model:
        # The weights of the last optimizer step (full: inside the ZeRO-3/FSDP gather); HF: no copy.
        ctx.engine.sync_weights(gen_model)
        seed = hash((cfg.seed, step, acc.process_index)) % 2**31  # engines with their own RNG: same rollouts on resume
        rollout = ctx.engine.generate(batch, G, dataclasses.replace(ctx.sampling, seed=seed))
    with timer("reward"):
        scored = ctx.score(records, rollout.texts, step)
        rewards = torch.tensor(scored.total, dtype=torch.float32, device=acc.device)  # [B*G]
        # Groups live on one process; the "batch" scale reads the global batch's rewards.
        batch_rewards = ctx.dist.gather(rewards)
        advantages = group_advantages(rewards, G, cfg.train.scale_rewards, batch_rewards=batch_rewards)  # [B*G]
        if cfg.train.mode_advantage == "split":
            advantages = split_by_mode(advantages, rewards, scored.think, rollout.completion_ids, G,
                                       cfg.train.scale_rewards, batch_rewards, cfg.train.decision_weight)  # [B*G, C]
    betas = token_betas(cfg, ctx.policy, rollout)  # train.beta, or [B*G, C] with train.decision_beta
    micro = [(slice_batch(batch, a, a + bs), slice(a * G, (a + bs) * G)) for a in range(0, len(records), bs)]
    with timer("ref_old_logp"), torch.no_grad():
        ref_logps = [_ref_logp(acc, ctx.scorer, ctx.ref_scorer, cfg, mb, rollout, sl, G) for mb, sl in micro]
        separate = separate_old_logps(len(micro), cfg.train.gradient_accumulation_steps, cfg.train.num_iterations,
                                      getattr(acc, "step", 0))
        old_logps = [
            ctx.scorer(mb, rollout.completion_ids[sl], rollout.completion_mask[sl], G, cfg.rollout.temperature)
            if own else None  # None: the first pass's log-probs, detached (see separate_old_logps)
            for (mb, sl), own in zip(micro, separate)
        ]
    num_items = None  # DAPO: active tokens of the global batch / processes
    if get_loss_type(cfg.train.loss_type).global_normaliser:
        num_items = global_token_normaliser(ctx.dist.global_sum(float(rollout.completion_mask.sum())), ctx.dist.num_processes)
    with timer("update"):
        stats = _update(
            acc, ctx.scorer, ctx.optimizer, ctx.scheduler, cfg, micro, rollout, advantages, betas, ref_logps, old_logps,
            num_items,
        )
    return StepResult(batch, rollout, scored, stats, records, skips)


def split_by_mode(advantages: torch.Tensor, rewards: torch.Tensor, thinks: list[bool], completion_ids: torch.Tensor,
                  group_size: int, scale: str, batch_rewards: torch.Tensor, decision_weight: float = 1.0) -> torch.Tensor:
    """`train.mode_advantage: split`: per-token advantages [N, C] (algos.advantages.mode_split_advantages)."""
    modes = torch.tensor(thinks, dtype=torch.bool, device=rewards.device)
    within = within_mode_advantages(rewards, modes, group_size, scale, batch_rewards=batch_rewards)
    decision = decision_positions(completion_ids, modes, group_size)
    return mode_split_advantages(advantages, within, decision, completion_ids.size(1), decision_weight)


def token_betas(cfg: Config, policy: Policy, rollout: Rollout) -> float | torch.Tensor:
    """The KL coefficient: train.beta, or per token [N, C] with train.decision_beta at the token that picks the mode."""
    t = cfg.train
    if t.decision_beta is None or t.decision_beta == t.beta:
        return t.beta
    tags = first_tag_ids(policy.tokenizer)
    choice = choice_token_mask(rollout.completion_ids, rollout.completion_mask, tags["think"], tags["no_think"])
    return kl_weights(choice, t.beta, t.decision_beta)


def separate_old_logps(micro_batches: int, accumulation: int, iterations: int, calls_before: int = 0) -> list[bool]:
    """Which micro-batches need a forward of their own for the old (rollout-time) log-probs.

    The first pass over a micro-batch runs on the rollout's weights when no optimizer step came before it
    in this GRPO step: its own log-probs, detached, are the old ones (ratio 1), and later passes reuse
    them. accelerate steps the optimizer on every `accumulation`-th `accumulate` call, counting from its
    counter (`calls_before`, `Accelerator.step`), so with one pass none needs a forward, and with more,
    only the micro-batches after the first optimizer step do: none when the batch is one accumulation
    window, as the trainer's always is (TRL and verl run the extra forward for every micro-batch).
    """
    if iterations <= 1:
        return [False] * micro_batches
    last_before_step = next(j for j in range(accumulation) if (calls_before + j + 1) % accumulation == 0)
    return [i > last_before_step for i in range(micro_batches)]


def _ref_logp(acc, scorer, ref_scorer, cfg: Config, mb, rollout, sl, G):
    if cfg.train.beta == 0:
        return None
    args = (mb, rollout.completion_ids[sl], rollout.completion_mask[sl], G, cfg.rollout.temperature)
    if ref_scorer is not None:
        return ref_scorer(*args)
    peft_model = acc.unwrap_model(scorer).model
    with peft_model.disable_adapter():  # LoRA: the reference is the base model, no second copy
        return scorer(*args)


def _update(acc, scorer, optimizer, scheduler, cfg: Config, micro, rollout, advantages, betas, ref_logps, old_logps,
            num_items):
    """num_iterations passes over the rollout batch, one optimizer step per pass."""
    G = cfg.rollout.num_generations
    sums = {"loss": 0.0, "kl": 0.0, "clip_low": 0.0, "clip_high": 0.0, "tokens": 0.0, "grad_norm": 0.0}
    gaps: list[tuple[float, float, float]] = []  # (mean gap, max gap, tokens) per micro-batch
    ga = cfg.train.gradient_accumulation_steps
    for it in range(cfg.train.num_iterations):
        for i, ((mb, sl), ref) in enumerate(zip(micro, ref_logps)):
            old = old_logps[i]
            ids, mask = rollout.completion_ids[sl], rollout.completion_mask[sl]
            with acc.accumulate(scorer):
                logp = scorer(mb, ids, mask, G, cfg.rollout.temperature)  # [n*G, C]
                if old is None:  # the weights the rollout ran on (separate_old_logps): old = current, detached
                    old = old_logps[i] = logp.detach()
                old_lp = old
                beta = betas[sl] if isinstance(betas, torch.Tensor) else betas
                out = policy_loss(logp, old_lp, advantages[sl], ref, beta, cfg.train.epsilon, cfg.train.epsilon_high)
                per_token = out.per_token_loss
                if rollout.logprobs is not None:  # the sampler reported its log-probs (vLLM)
                    if it == 0:
                        gaps.append((*logprob_gap(old_lp, rollout.logprobs[sl], mask), float(mask.sum())))
                    if cfg.rollout.vllm_importance_sampling_correction:
                        per_token = per_token * tis_weights(old_lp, rollout.logprobs[sl], cfg.rollout.vllm_importance_sampling_cap)
                loss = reduce_loss(per_token, mask, cfg.train.loss_type, cfg.rollout.max_new_tokens, num_items)
                if get_loss_type(cfg.train.loss_type).global_normaliser:
                    loss = loss * ga  # accelerate divides by ga; this normaliser already spans the global batch
                norm = backward_and_step(acc, scorer, loss, optimizer, scheduler, cfg.train.max_grad_norm)
                if norm is not None:
                    sums["grad_norm"] += norm
            m = mask.float()
            n_tok = float(m.sum())
            sums["loss"] += float(loss.detach()) / ga
            sums["tokens"] += n_tok
            if out.kl is not None:
                sums["kl"] += float((out.kl.detach() * m).sum())
            sums["clip_low"] += float((out.clipped_low.float() * m).sum())
            sums["clip_high"] += float((out.clipped_high.float() * m).sum())
    tok = max(sums["tokens"], 1.0)
    gap_stats = {}
    if gaps:
        n = max(sum(g[2] for g in gaps), 1.0)
        gap_stats = {"logprob_gap/mean": sum(g[0] * g[2] for g in gaps) / n, "logprob_gap/max": max(g[1] for g in gaps)}
    return gap_stats | {
        "loss": sums["loss"] / cfg.train.num_iterations,
        "kl": sums["kl"] / tok,
        "clip_ratio/low": sums["clip_low"] / tok,
        "clip_ratio/high": sums["clip_high"] / tok,
        "clip_ratio/region": (sums["clip_low"] + sums["clip_high"]) / tok,
        "grad_norm": sums["grad_norm"] / cfg.train.num_iterations,
    }

