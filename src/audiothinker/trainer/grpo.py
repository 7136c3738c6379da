"""The GRPO training loop for audio LLMs (Audio-Thinker; SPEC sections 3 and 5).

One step = one rollout batch:
  1. rollout   every process samples G completions for its prompts (audio in the forward)
  2. score     parse, judge, combine the preset's rewards; lambda is the global think fraction
  3. advantage group-relative, from the rewards of each prompt's G completions
  4. update    num_iterations passes of gradient_accumulation_steps micro-batches; clipped
               surrogate + beta * k3 KL to the reference; audio features in every forward
  5. log, checkpoint
Simplifications: generation uses HF `generate` on the training weights (no separate engine
process); the reference policy is the adapter-disabled model under LoRA, else a frozen copy.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from audiothinker.algos import group_advantages, policy_loss, reduce_loss
from audiothinker.config import Config, to_dict
from audiothinker.models.base import ScoringModule
from audiothinker.models.loading import load_policy, save_pretrained
from audiothinker.rewards import get_preset
from audiothinker.rollout import SamplingParams, build_engine
from audiothinker.trainer.checkpoint import latest_checkpoint, save_checkpoint
from audiothinker.trainer.data import load_training_records, prompt_batch, slice_batch, training_file
from audiothinker.trainer.distributed import Dist, unwrap_for_generation
from audiothinker.trainer.logging import StepLogger
from audiothinker.trainer.scoring import score_batch
from audiothinker.trainer.state import PromptSampler
from audiothinker.trainer.tracking import PhaseTimer


def build_judge_for(cfg: Config, preset) -> Any:
    if not (preset.consistency or preset.think_quality):
        return None
    if cfg.judge.backend == "rule":
        from audiothinker.judge import RuleJudge

        return RuleJudge()
    from audiothinker.judge.factory import build_judge

    judge = build_judge(cfg.judge)
    if hasattr(judge, "check"):
        judge.check()  # fail before the first rollout, naming the URL, if the judge is unreachable
    return judge


def _optimizer(model: torch.nn.Module, cfg: Config, total_updates: int):
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters (is everything frozen?)")
    opt = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay)
    sched = get_scheduler(cfg.train.lr_scheduler, opt, num_warmup_steps=cfg.train.warmup_steps, num_training_steps=total_updates)
    return opt, sched


def train(cfg: Config, resume: bool = False) -> Path:
    """Run GRPO as configured; returns the directory of the final model."""
    dist = Dist.create(cfg)
    acc = dist.accelerator
    out = Path(cfg.output_dir)
    preset = get_preset(cfg.reward.preset)
    G, GA, mu = cfg.rollout.num_generations, cfg.train.gradient_accumulation_steps, cfg.train.num_iterations
    local_prompts = cfg.train.per_device_batch_size * GA
    global_prompts = local_prompts * acc.num_processes

    with acc.main_process_first():
        path, fmt = training_file(cfg)
        records, load_result = load_training_records(path, fmt, cfg)
        policy = load_policy(cfg.model)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    judge = build_judge_for(cfg, preset)
    engine = build_engine(cfg.rollout.engine, policy)

    scorer = ScoringModule(policy.model, policy)
    optimizer, scheduler = _optimizer(scorer, cfg, cfg.max_steps * mu)
    scorer, optimizer = acc.prepare(scorer, optimizer)
    acc.register_for_checkpointing(scheduler)
    sampler = PromptSampler(len(records), cfg.seed, cfg.data.shuffle)
    acc.register_for_checkpointing(sampler)
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

    if resume:
        ckpt = latest_checkpoint(out)
        if ckpt is None:
            acc.print(f"--resume: no checkpoint under {out / 'checkpoints'}; starting from step 0")
        else:
            acc.load_state(str(ckpt))
            acc.print(f"resumed from {ckpt} at step {sampler.step}")

    sampling = SamplingParams(cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.top_k, cfg.rollout.max_new_tokens)
    logger = StepLogger(cfg, acc, total=cfg.max_steps, start=sampler.step)
    timer = PhaseTimer()
    device = acc.device
    judge_stats = judge.stats() if judge is not None and hasattr(judge, "stats") else {}
    evaluator = None
    if cfg.eval.eval_steps > 0:
        from audiothinker.judge import RuleJudge
        from audiothinker.trainer.evaluation import PeriodicEval

        evaluator = PeriodicEval(cfg, acc, policy, preset.prompt, judge or RuleJudge())

    stop = min(cfg.max_steps, cfg.stop_at_step or cfg.max_steps)
    while sampler.step < stop:
        step = sampler.step
        recs = [records[i] for i in sampler.take(global_prompts, acc.process_index, acc.num_processes)]
        with timer("prepare"):
            batch = prompt_batch(
                policy, recs, preset.prompt, cfg.data.max_audio_seconds, cfg.rollout.max_prompt_length
            ).to(device)
        with timer("rollout"), unwrap_for_generation(acc, scorer) as gen_model:
            rollout = engine.generate(gen_model, batch, G, sampling)
        with timer("reward"):
            scored = score_batch(
                recs, rollout.texts, G, preset, judge, step, cfg.max_steps, dist.global_fraction, dist.global_mean
            )
            rewards = torch.tensor(scored.total, dtype=torch.float32, device=device)  # [B*G]
            advantages = dist.advantages(rewards, G, cfg.train.scale_rewards)  # [B*G]
        micro = [
            (slice_batch(batch, a, a + cfg.train.per_device_batch_size), slice(a * G, (a + cfg.train.per_device_batch_size) * G))
            for a in range(0, local_prompts, cfg.train.per_device_batch_size)
        ]
        with timer("ref_old_logp"), torch.no_grad():
            ref_logps = [_ref_logp(acc, scorer, ref_scorer, cfg, mb, rollout, sl, G) for mb, sl in micro]
            old_logps = [
                scorer(mb, rollout.completion_ids[sl], rollout.completion_mask[sl], G, cfg.rollout.temperature)
                if mu > 1 else None
                for mb, sl in micro
            ]
        num_items = dist.dapo_normaliser(rollout.completion_mask) if cfg.train.loss_type == "dapo" else None
        with timer("update"):
            stats = _update(acc, scorer, optimizer, scheduler, cfg, micro, rollout, advantages, ref_logps, old_logps, num_items)
        sampler.step += 1
        judge_delta = {}
        if judge is not None and hasattr(judge, "stats"):
            now = judge.stats()
            judge_delta = {k: v - judge_stats.get(k, 0) for k, v in now.items() if isinstance(v, (int, float))}
            judge_stats = now
        if evaluator is not None and evaluator.due(sampler.step):
            with timer("eval"), unwrap_for_generation(acc, scorer) as gen_model:
                stats.update(evaluator.run(sampler.step, gen_model))
        logger.log_step(sampler.step, recs, rollout, scored, stats, timer.pop(), judge_delta, scheduler.get_last_lr()[0])
        if cfg.save_steps and sampler.step % cfg.save_steps == 0 and sampler.step < cfg.max_steps:
            save_checkpoint(acc, out, sampler.step, cfg.save_total_limit)

    save_checkpoint(acc, out, sampler.step, cfg.save_total_limit)
    if sampler.step < cfg.max_steps:
        logger.close(load_result)
        acc.print(f"stopped at step {sampler.step} of {cfg.max_steps}; continue with --resume")
        acc.end_training()
        return latest_checkpoint(out)
    final = out / "final"
    state = acc.get_state_dict(scorer)
    if acc.is_main_process:
        unwrapped = acc.unwrap_model(scorer).model
        policy.model = unwrapped
        sd = None if hasattr(unwrapped, "peft_config") else {k.removeprefix("model."): v for k, v in state.items()}
        save_pretrained(policy, final, state_dict=sd)
    logger.close(load_result)
    acc.wait_for_everyone()
    acc.end_training()
    return final


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

