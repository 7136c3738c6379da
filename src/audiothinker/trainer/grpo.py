"""The GRPO training loop for audio LLMs (Audio-Thinker; SPEC sections 3 and 5).

Each step (trainer/step.py: `grpo_step`) is one rollout batch: rollout, score, advantages,
update. Around it this loop handles the data stream, resume, evaluation, logging and
checkpoints. Rollouts come from the engine named by `rollout.engine` (rollout/: HF `generate` on
the training weights, or an in-process vLLM engine synced before each rollout); the reference
policy is the adapter-disabled model under LoRA, else a frozen copy.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from audiothinker.config import Config, to_dict
from audiothinker.data.loaders import LoadResult
from audiothinker.data.records import AudioQA
from audiothinker.judge.base import Judge
from audiothinker.judge.scoring import stats_delta
from audiothinker.models.base import is_peft
from audiothinker.models.loading import save_pretrained
from audiothinker.rewards import Preset, get_preset
from audiothinker.trainer.checkpoint import latest_checkpoint, load_checkpoint, newest_intact_checkpoint, save_checkpoint
from audiothinker.trainer.data import drop_over_long_prompts, load_training_records, training_file
from audiothinker.trainer.distributed import Dist, unwrap_for_generation
from audiothinker.trainer.logging import SkipLog, StepLogger
from audiothinker.trainer.state import PromptSampler
from audiothinker.trainer.step import StepContext, build_context, grpo_step
from audiothinker.trainer.tracking import PhaseTimer

if TYPE_CHECKING:
    from audiothinker.trainer.evaluation import PeriodicEval


def build_judge_for(cfg: Config, preset: Preset) -> Judge | None:
    """The judge of R_c/R_t (`judge.backend`, through the factory), or None when the preset has neither term."""
    if not (preset.consistency or preset.think_quality):
        return None
    from audiothinker.judge.factory import build_judge

    judge = build_judge(cfg.judge)
    judge.check()  # fail before the first rollout, naming the URL, if the judge is unreachable
    return judge


def _judge_delta(judge: Judge | None, before: dict) -> tuple[dict, dict]:
    """Per-step change of the judge's cumulative counters (requests sent, cache hits, failures)."""
    if judge is None:
        return {}, before
    now = judge.stats()
    return stats_delta(now, before), now


class JudgeDownWatch:
    """Counts consecutive steps in which the judge returned no score at all (over the global batch)."""

    def __init__(self, max_down_steps: int):
        self.max_down_steps, self.streak, self.first = max_down_steps, 0, 0
        self.error: Exception | None = None  # set when the run must stop (raised after the step is logged)

    def update(self, acc, judge: Judge | None, scored, step: int) -> float:
        """1.0 if the judge was down this step (warning on stderr), else 0.0; sets `error` after too many in a row."""
        import torch

        counts = acc.reduce(torch.tensor([scored.judge_requests, scored.judge_answered], device=acc.device), "sum")
        requests, answered = (int(x) for x in counts.tolist())
        if requests == 0 or answered > 0:
            self.streak = 0
            return 0.0
        self.streak += 1
        self.first = self.first if self.streak > 1 else step
        last = judge.last_error() if judge is not None else None
        if acc.is_main_process:
            print(f"warning: step {step}: the judge returned no score for any of {requests} requests "
                  f"(last error: {last or 'none, unparseable output'}); R_c and R_t left out of this step's advantages "
                  f"({self.streak} step(s) in a row)", file=sys.stderr)
        if self.max_down_steps and self.streak >= self.max_down_steps:
            from audiothinker.judge.scoring import JudgeUnavailableError

            self.error = JudgeUnavailableError(
                f"the judge returned no score in {self.streak} consecutive steps ({self.first}-{step}, "
                f"judge.max_down_steps={self.max_down_steps}; last error: {last or 'none, unparseable output'}); "
                "stopped rather than train without R_c and R_t. Fix the judge and continue with --resume"
            )
        return 1.0


@dataclasses.dataclass
class Run:
    """What a training run holds from its start to its end (besides the step's own state in `ctx`)."""

    cfg: Config
    ctx: StepContext
    records: list[AudioQA]  # the training set, over-long prompts dropped
    load_result: LoadResult
    sampler: PromptSampler  # which prompts each step takes; its step counter is checkpointed
    judge: Judge | None
    evaluator: PeriodicEval | None


def start_run(cfg: Config, resume: bool) -> Run:
    """Data, judge (checked), model, engine and optimizer; the newest intact checkpoint when resuming."""
    from audiothinker.data.audio import AUDIO_STATS

    AUDIO_STATS.reset()  # the end-of-run audio report counts this run only
    dist = Dist.create(cfg)
    acc = dist.accelerator
    out = Path(cfg.output_dir)
    preset = get_preset(cfg.reward.preset)
    with acc.main_process_first():
        train_path, train_format = training_file(cfg)
        records, load_result = load_training_records(train_path, train_format, cfg)
    judge = build_judge_for(cfg, preset)  # reachable (checked) and able to score these records, or stop here
    if judge is not None:
        judge.check_records(records, str(train_path))
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    ctx = build_context(cfg, dist, judge)
    records = drop_over_long_prompts(ctx.policy, records, load_result, cfg, preset.prompt)  # before step 1, not at it
    if acc.is_main_process and load_result.skipped:
        print(f"warning: {load_result.summary()}", file=sys.stderr)
    sampler = PromptSampler(len(records), cfg.seed, cfg.data.shuffle)
    acc.register_for_checkpointing(sampler)
    if resume:
        ckpt = newest_intact_checkpoint(acc, out)
        if ckpt is None:
            acc.print(f"--resume: no checkpoint under {out / 'checkpoints'}; starting from step 0")
        else:
            load_checkpoint(acc, ckpt)
            acc.print(f"resumed from {ckpt} at step {sampler.step}")
    evaluator = None
    if cfg.eval.eval_steps > 0:
        from audiothinker.judge.factory import build_judge
        from audiothinker.trainer.evaluation import PeriodicEval

        # The inconsistency rate needs a judge: without R_c/R_t in the preset, the rule judge's R_c is free.
        eval_judge = judge or build_judge(dataclasses.replace(cfg.judge, backend="rule"))
        evaluator = PeriodicEval(cfg, acc, ctx.policy, eval_judge)
    return Run(cfg, ctx, records, load_result, sampler, judge, evaluator)


def train(cfg: Config, resume: bool = False) -> Path:
    """Run GRPO as configured; returns the directory of the final model (or of the checkpoint, with stop_at_step)."""
    run = start_run(cfg, resume)
    ctx, sampler, judge, evaluator = run.ctx, run.sampler, run.judge, run.evaluator
    acc, out = ctx.dist.accelerator, Path(cfg.output_dir)
    logger = StepLogger(cfg, acc, total=cfg.max_steps, start=sampler.step)
    skip_log = SkipLog(out, acc, start=sampler.step)
    skip_log.add_load(run.load_result.skipped)
    timer, judge_stats = PhaseTimer(), _judge_delta(judge, {})[1]
    down_watch = JudgeDownWatch(cfg.judge.max_down_steps)
    global_prompts = cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps * acc.num_processes
    stop = min(cfg.max_steps, cfg.stop_at_step or cfg.max_steps)
    while sampler.step < stop:
        recs = [run.records[i] for i in sampler.take(global_prompts, acc.process_index, acc.num_processes)]
        result = grpo_step(ctx, recs, sampler.step, timer, pool=run.records)
        sampler.step += 1
        recs = result.records or recs
        skip_log.add_step(sampler.step, result.skips)
        judge_delta, judge_stats = _judge_delta(judge, judge_stats)
        judge_delta["down"] = down_watch.update(acc, judge, result.scored, sampler.step)
        if evaluator is not None and evaluator.due(sampler.step):
            with timer("eval"), unwrap_for_generation(acc, ctx.scorer) as gen_model:
                result.stats.update(evaluator.run(sampler.step, gen_model))
        logger.log_step(
            sampler.step, recs, result.rollout, result.scored, result.stats, timer.pop(), judge_delta,
            ctx.scheduler.get_last_lr()[0],
        )
        if down_watch.error is not None:
            save_checkpoint(acc, out, sampler.step, cfg.save_total_limit)  # --resume continues after this step
            logger.close(run.load_result, skip_log)
            raise down_watch.error
        if cfg.save_steps and sampler.step % cfg.save_steps == 0 and sampler.step < cfg.max_steps:
            save_checkpoint(acc, out, sampler.step, cfg.save_total_limit)
    return finish_run(run, lambda: logger.close(run.load_result, skip_log))


def finish_run(run: Run, close_logs: Callable[[], None]) -> Path:
    """Last checkpoint, `final/` when max_steps was reached, logs closed, the engine's memory back; returns
    the final model's directory (or the checkpoint's)."""
    cfg, ctx, acc = run.cfg, run.ctx, run.ctx.dist.accelerator
    out, step = Path(cfg.output_dir), run.sampler.step
    save_checkpoint(acc, out, step, cfg.save_total_limit)
    final = out / "final" if step >= cfg.max_steps else None
    if final is not None:
        _save_final(acc, ctx, final)
    else:
        acc.print(f"stopped at step {step} of {cfg.max_steps}; continue with --resume")
    close_logs()
    ctx.engine.close()  # a vLLM engine gives its memory back before the process goes on
    acc.wait_for_everyone()
    acc.end_training()
    return final or latest_checkpoint(out)


def _save_final(acc, ctx, final: Path) -> None:
    state = acc.get_state_dict(ctx.scorer)  # every process: ZeRO-3 gathers here
    if acc.is_main_process:
        unwrapped = acc.unwrap_model(ctx.scorer).model
        ctx.policy.model = unwrapped
        sd = None if is_peft(unwrapped) else {k.removeprefix("model."): v for k, v in state.items()}
        save_pretrained(ctx.policy, final, state_dict=sd)
