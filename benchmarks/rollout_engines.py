"""Rollout engines side by side: HF `generate` vs vLLM on the same model and prompts.

Reports, per engine, rollout tokens per second (the rollout phase: weight sync + generation) and
the whole GRPO step time (`grpo_step`: prepare, rollout, reward, ref/old log-probs, update),
medians over `--steps` measured steps after `--warmup`, and the ratios HF / vLLM.

    make bench-rollout                                              # CPU, a real-shaped tiny Qwen2-Audio
    .venv-vllm/bin/python benchmarks/rollout_engines.py --model /path/Qwen2-Audio-7B-Instruct \
        --prompts 8 --num-generations 8 --new-tokens 256 --dtype bfloat16     # GPU, the paper's settings

Equal work on both sides: one trainer context per engine (`build_context`, as `train` builds
it: the vLLM engine is colocated in this process), the same records every step, exactly
`--new-tokens` tokens per completion (EOS blocked by `min_new_tokens`; checked each step), the
`grpo` preset plus the distinct-character bonus of step_time.py (non-zero advantages on a random
model). Steps alternate HF, vLLM, HF, ... so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_time import with_spread  # noqa: E402

from audiothinker.config import Config, ModelConfig, validate  # noqa: E402
from audiothinker.trainer.data import load_training_records, training_file  # noqa: E402
from audiothinker.trainer.distributed import Dist  # noqa: E402
from audiothinker.trainer.step import build_context, grpo_step  # noqa: E402
from audiothinker.trainer.tracking import PhaseTimer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="checkpoint path (default: build a real-shaped tiny Qwen2-Audio)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--prompts", type=int, default=4, help="prompts per optimizer step")
    p.add_argument("--num-generations", type=int, default=4, help="G")
    p.add_argument("--new-tokens", type=int, default=64, help="exact completion length")
    p.add_argument("--steps", type=int, default=3, help="measured steps per engine")
    p.add_argument("--warmup", type=int, default=1, help="steps per engine dropped first (vLLM's first step warms up)")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.35, help="vLLM's share of the GPU")
    p.add_argument("--workdir", default=None, help="model and data go here (default: a temporary directory)")
    p.add_argument("--json", default=None, help="also write the medians and every step to this file")
    return p.parse_args(argv)


def config(model: str, engine: str, workdir: Path, args: argparse.Namespace) -> Config:
    cfg = Config(output_dir=str(workdir / engine), max_steps=args.warmup + args.steps, save_steps=0, seed=0)
    cfg.model = ModelConfig(name_or_path=model, dtype=args.dtype)
    cfg.data.synthetic_size = 64
    r = cfg.rollout
    r.engine, r.num_generations, r.max_new_tokens = engine, args.num_generations, args.new_tokens
    r.vllm_gpu_memory_utilization = args.gpu_memory_utilization
    cfg.train.per_device_batch_size, cfg.train.gradient_accumulation_steps = args.prompts, 1
    cfg.train.learning_rate, cfg.train.lr_scheduler, cfg.train.beta = 1e-6, "constant", 0.04
    cfg.reward.preset = "grpo"
    cfg.log.report_to = []
    return validate(cfg)


class Runner:
    """One engine's trainer context, stepping on fixed records."""

    def __init__(self, cfg: Config, records):
        self.cfg, self.records = cfg, records
        self.ctx = build_context(cfg, Dist.create(cfg))
        self.ctx.sampling = dataclasses.replace(self.ctx.sampling, min_new_tokens=cfg.rollout.max_new_tokens)
        score = self.ctx.score
        self.ctx.score = lambda recs, texts, step: dataclasses.replace(
            s := score(recs, texts, step), total=with_spread(s.total, texts)
        )
        self.rows: list[dict[str, float]] = []
        self.step = 0

    def run(self) -> dict[str, float]:
        timer = PhaseTimer()
        result = grpo_step(self.ctx, self.records, self.step, timer)
        self.step += 1
        phases = timer.pop()
        tokens = int(result.rollout.completion_mask.sum())
        expected = len(self.records) * self.cfg.rollout.num_generations * self.cfg.rollout.max_new_tokens
        if tokens != expected:
            raise RuntimeError(f"{self.cfg.rollout.engine}: {tokens} completion tokens, expected {expected}")
        rollout_s = phases["timing/rollout"]
        row = {"step_s": sum(v for k, v in phases.items() if k.startswith("timing/")), "rollout_s": rollout_s,
               "tokens_per_s": tokens / rollout_s, **{k: v for k, v in result.stats.items() if k.startswith("logprob_gap")}}
        self.rows.append(row)
        return row


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="rollout-bench-"))
    model = args.model
    if model is None:
        from audiothinker.models.tiny import build_tiny_qwen2_audio

        model = str(workdir / "tiny-qwen2_audio-30s")
        if not Path(model, "config.json").exists():  # the published layout shrunk: hidden 128 (4 heads of 32), 30 s x 128 mels
            build_tiny_qwen2_audio(model, seed=0, mel_seconds=30, hidden=128, n_mels=128)
    base = config(model, "hf", workdir, args)
    records = load_training_records(*training_file(base), base)[0][: args.prompts]
    runners = {e: Runner(config(model, e, workdir, args), records) for e in ("hf", "vllm")}
    for i in range(args.warmup + args.steps):
        for name, runner in runners.items():
            row = runner.run()
            tag = "warmup" if i < args.warmup else "step"
            print(f"{tag} {i}: {name:4s} step {row['step_s']:.2f}s rollout {row['rollout_s']:.2f}s {row['tokens_per_s']:.1f} tok/s")
    med = {
        name: {k: statistics.median(r[k] for r in runner.rows[args.warmup:]) for k in runner.rows[-1]}
        for name, runner in runners.items()
    }
    out = {"model": model, "args": vars(args), "median": med,
           "ratio": {"tokens_per_s_vllm_over_hf": med["vllm"]["tokens_per_s"] / med["hf"]["tokens_per_s"],
                     "step_time_hf_over_vllm": med["hf"]["step_s"] / med["vllm"]["step_s"]},
           "steps": {n: r.rows for n, r in runners.items()}}
    print(f"\n{'engine':8s} {'step s':>8s} {'rollout s':>10s} {'tok/s':>8s}   (medians of {args.steps} steps, "
          f"{args.prompts} prompts x G={args.num_generations} x {args.new_tokens} tokens)")
    for name, m in med.items():
        print(f"{name:8s} {m['step_s']:8.2f} {m['rollout_s']:10.2f} {m['tokens_per_s']:8.1f}")
    print(f"vLLM / HF rollout tokens per second: {out['ratio']['tokens_per_s_vllm_over_hf']:.2f}x; "
          f"HF / vLLM GRPO step time: {out['ratio']['step_time_hf_over_vllm']:.2f}x")
    if "logprob_gap/mean" in med["vllm"]:
        print(f"vLLM sampler vs learner log-prob gap: mean {med['vllm']['logprob_gap/mean']:.4f}, "
              f"max {med['vllm']['logprob_gap/max']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
