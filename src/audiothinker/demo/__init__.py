"""`audiothinker demo`: a tiny audio thinker that learns when to think, end to end on one CPU.

    audiothinker demo [--quick] [--out runs/demo] [--seed 42] [--seeds 3]

Stages, in order (each has a progress bar; a finished stage is reused when the demo is re-run
with the same settings for it and the stages it reads, so an interrupted demo continues where it
stopped and a change to RL settings reuses the cold start):
  1. data        the synthetic tone set (data.synthetic; easy: one perception, medium: two,
                 hard: the parity of 3-4 perceptions), with flawed and inconsistent cold-start
                 traces; a held-out test split from another seed (<out>/data/test.jsonl)
  2. model       a tiny random Qwen2-Audio in the published layout (30 s window, 128 mel bins,
                 real chat template); its audio encoder stays at its random init (frozen, cached)
  3. cold start  `audiothinker sft` (<out>/sft/final): the three prompts (DemoPlan.prompt_shares);
                 under the adaptive one a seeded coin picks a trace or a direct answer, with a
                 chance per task (easy and medium: 0.25 or 0.75, one task at each; hard: 0.5 for
                 both: DemoPlan.think_fractions), so the choice depends on the question but not on
                 its difficulty; then a shorter phase with the flawed traces fixed (DemoPlan.sft_fix_steps)
  4. eval        the cold start with the adaptive prompt ("prompt only"), and forced into each
                 mode (first tag given): does thinking help it, on which items? And how far its
                 think-or-answer choice is shared between questions (decision coupling: the cosine
                 of two tasks' gradients of the first-tag log-odds)
  5. RL          GRPO from the cold start with each of the paper's Table 1 presets, each with its
                 own prompt: grpo (no-think), grpo_cot (think), atar, atar_cr, atar_cr_tr
                 (adaptive), Dr. GRPO advantages split at the think-or-answer
                 token, two passes per rollout batch, the audio projector fixed
                 (recipes/demo/rl.yaml); the
                 rule judge stands in for the LLM judge (<out>/<preset>/final)
  6. eval        every preset on the held-out split with its own prompt, greedy and sampled
                 (1 completion per item at temperature 1.0; 960 held-out items), side by side like RL
  7. report      <out>/report.md (+ report.json, PNGs): Table 1 and Figure 2 analogues, the
                 forced-mode table, inconsistency (atar vs atar_cr), think quality (atar_cr vs
                 atar_cr_tr), the targets, RL curves, wall and CPU time

`--seeds N` runs the whole demo at seeds S, S+1, ... into <out>/seed-<s>/ and writes
<out>/report.md with each target per seed, how often it held, the mean and spread of every
figure, and the hard-accuracy targets item by item per seed. `--judge-base-url URL` (with
`--judge-backend openai`, the default when a URL is given) puts an OpenAI-compatible LLM judge
in place of the rule judge, for RL and evaluation.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time
from pathlib import Path
from typing import Any

from audiothinker.demo.plan import (PLANS, PRESETS, PROMPTS, RECIPES, TRACE_SHARES, DemoPlan, StageJob, Stages,
                                    available_cpus, longest_first, reused_seconds, task_think_fractions)
from audiothinker.demo.targets import aggregate_metrics, aggregate_targets, targets
from audiothinker.judge.base import JUDGE_BACKENDS

__all__ = ["PLANS", "PRESETS", "PROMPTS", "RECIPES", "DemoPlan", "demo", "demo_seeds", "targets"]


def make_data(out: Path, plan: DemoPlan, seed: int) -> dict[str, str]:
    from audiothinker.data.synthetic import write_synthetic

    train = write_synthetic(out, plan.train_items, seed, split="train", trace_shares=TRACE_SHARES)
    test = write_synthetic(out, plan.test_items, seed, split="test")
    return {"train": str(train), "test": str(test)}


def make_model(out: Path, plan: DemoPlan, seed: int) -> str:
    from audiothinker.models.tiny import build_tiny_qwen2_audio

    return str(build_tiny_qwen2_audio(out / "weights", seed=seed, hidden=plan.hidden, layers=plan.layers,
                                      audio_layers=plan.audio_layers))


def run_sft(recipes: Path, overrides: list[str], fractions: dict[str, float], fix_steps: int,
            prompt_shares: tuple[float, float, float], loss_tokens: float | None = None) -> str:
    """The cold start; with fix_steps, in two phases: the mixed traces (flawed and inconsistent ones included)
    to <output_dir>/mixed, then `fix_steps` more with the flawed traces fixed to <output_dir>/final.
    prompt_shares: the mixed prompts' (adaptive, think, no_think) shares; loss_tokens: `SFTOptions.loss_tokens`."""
    from audiothinker.config import load_config
    from audiothinker.sft import SFTOptions, sft

    def config(*extra: str) -> Any:
        return load_config(recipes / "sft.yaml", [*overrides, *extra])

    opts = SFTOptions(sum(fractions.values()) / len(fractions), "mixed", task_think_fractions=fractions,
                      prompt_shares=prompt_shares, loss_tokens=loss_tokens)
    base = config()
    if not fix_steps:
        return str(sft(base, opts))
    first = sft(config(f"output_dir={Path(base.output_dir) / 'mixed'}"), opts)
    return str(sft(config(f"model.name_or_path={first}", f"max_steps={fix_steps}"),
                   dataclasses.replace(opts, fix_flawed=True)))


def run_rl(recipes: Path, preset: str, overrides: list[str], progress: bool = True) -> str:
    """One preset's GRPO run; progress=False: no progress bar of its own (a side-by-side run, whose bar the
    demo draws)."""
    from audiothinker.config import load_config
    from audiothinker.trainer.grpo import train

    quiet = [] if progress else ["log.progress=false"]
    cfg = load_config(recipes / "rl.yaml",
                      [f"reward.preset={preset}", f"eval.prompt={PROMPTS[preset]}", *overrides, *quiet])
    return str(train(cfg))


def cpu_times() -> dict[str, float]:
    """CPU time of this process, its threads and its finished child processes (the parallel RL runs) so far (s):
    what the run costs, whatever else shares the CPUs."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"user": own.ru_utime + children.ru_utime, "sys": own.ru_stime + children.ru_stime}


def _rl_settings(recipes: Path) -> Any:
    from audiothinker.config import load_config

    return load_config(recipes / "rl.yaml").rollout


def _judge_sets(backend: str, base_url: str | None, model: str | None) -> list[str]:
    return [f"judge.backend={backend}"] + ([f"judge.base_url={base_url}"] if base_url else []) \
        + ([f"judge.model={model}"] if model else [])


def _keys(plan: DemoPlan, seed: int, recipes: Path, judge: dict, overrides: list[str]) -> dict[str, dict]:
    """Each stage's key: its own settings and the keys of the stages it reads (see `Stages`)."""
    from audiothinker.data.synthetic import GENERATOR_VERSION

    text = {p.name: p.read_text() for p in sorted(recipes.glob("*.yaml"))}
    train = {"items": plan.train_items, "seed": seed, "traces": TRACE_SHARES, "generator": GENERATOR_VERSION}
    data = {**train, "items": (plan.train_items, plan.test_items)}
    model = {"sizes": (plan.hidden, plan.layers, plan.audio_layers), "seed": seed}
    # The cold start and RL read the training split only (RL's periodic evaluations read the first
    # rl_eval_items held-out items, the same at any test_items): a larger held-out split reuses them.
    sft = {"data": train, "model": model, "steps": plan.sft_steps,
           "think_fractions": task_think_fractions(seed, plan.think_fractions),
           "fix_steps": plan.sft_fix_steps, "prompt_shares": plan.prompt_shares, "recipe": text.get("sft.yaml")}
    if plan.sft_loss_tokens is not None:  # at its default the key is as before the setting: finished runs are reused
        sft["loss_tokens"] = plan.sft_loss_tokens
    rl_eval_items = min(plan.rl_eval_items, plan.test_items) if plan.rl_eval_steps else 0
    rl = {"sft": sft, "sizes": (plan.rl_steps, plan.rl_batch, plan.rl_generations, plan.rl_eval_steps,
                                rl_eval_items, plan.max_new_tokens), "recipe": text.get("rl.yaml"), "judge": judge,
          "overrides": overrides}
    # The held-out evaluations read rl.yaml only for the completion limit, which `Evaluations` keys on itself:
    # an RL setting changed reruns RL and the presets' evaluations, not the cold start's.
    return {"data": data, "model": model, "sft": sft, "rl": rl, "eval": {"data": data, "judge": judge}}


def demo(out: Path, plan_name: str = "full", *, seed: int = 42, recipes: Path = RECIPES,
         judge_backend: str = "rule", judge_base_url: str | None = None, judge_model: str | None = None,
         overrides: list[str] | None = None, echo: bool = True, jobs: int = 1) -> dict[str, Any]:
    """Run every stage for one seed; returns report.json's content (with "report": the path of report.md).
    jobs: RL runs, then presets' evaluations, at a time (each in a forked process; 1: in turn, in this process)."""
    from rich.console import Console

    from audiothinker.data.loaders import load_records
    from audiothinker.demo.evaluate import Evaluations, build_judge

    console, plan, overrides = Console(), PLANS[plan_name], list(overrides or [])
    judge_cfg = {"backend": judge_backend, "base_url": judge_base_url, "model": judge_model}
    keys = _keys(plan, seed, recipes, judge_cfg, overrides)
    stages, cpu0 = Stages(console, out), cpu_times()
    judge = build_judge(judge_backend, judge_base_url, judge_model)  # an unreachable judge fails before any training
    data = stages.run("data", out / "data", keys["data"], make_data, out / "data", plan, seed)
    model = stages.run("model", out / "model", keys["model"], make_model, out / "model", plan, seed)
    common = [f"seed={seed}", f"data.train_file={data['train']}"]
    sft_final = stages.run("cold start (SFT)", out / "sft", keys["sft"], run_sft, recipes, [
        f"output_dir={out / 'sft'}", f"model.name_or_path={model}", f"max_steps={plan.sft_steps}", *common,
    ], task_think_fractions(seed, plan.think_fractions), plan.sft_fix_steps, plan.prompt_shares, plan.sft_loss_tokens)
    test = load_records(data["test"], "jsonl").records
    max_new = plan.max_new_tokens or _rl_settings(recipes).max_new_tokens
    ev = Evaluations(stages, out / "eval", test, judge, (judge_backend, judge_base_url, judge_model), max_new,
                     keys["eval"])
    ev.cold_start(sft_final, keys["sft"])
    rl_sets = [*common, f"model.name_or_path={sft_final}", f"max_steps={plan.rl_steps}",
               f"train.per_device_batch_size={plan.rl_batch}", f"rollout.num_generations={plan.rl_generations}",
               f"rollout.max_new_tokens={max_new}",
               f"eval.eval_steps={plan.rl_eval_steps}", f"eval.file={data['test']}", f"eval.limit={plan.rl_eval_items}",
               *_judge_sets(judge_backend, judge_base_url, judge_model), *overrides]
    # The RL runs read only the cold start, so they run side by side (`jobs` at a time, the longest first);
    # their results do not depend on it (measured: the same weights with 1 or 2 torch threads).
    rl_jobs = [StageJob(f"RL: {p}", out / p, {**keys["rl"], "preset": p}, run_rl,
                        (recipes, p, [f"output_dir={out / p}", *rl_sets]), (out / p / "metrics.jsonl", plan.rl_steps),
                        worker_kwargs={"progress": False})
               for p in longest_first(PRESETS)]
    finals = stages.run_parallel(rl_jobs, jobs)
    ev.presets({p: (finals[f"RL: {p}"], {**keys["rl"], "preset": p}) for p in PRESETS}, jobs)
    return _finish(out, plan_name, plan, seed, judge_backend, ev, stages, cpu0, echo, console)


def _finish(out: Path, plan_name: str, plan: DemoPlan, seed: int, judge_backend: str, ev: Any, stages: Stages,
            cpu0: dict[str, float], echo: bool, console: Any) -> dict[str, Any]:
    """Targets, report files and the printed tables of one seed."""
    from audiothinker.demo.report import write_report

    checks = targets(ev.summaries, ev.forced)
    timings = {**stages.timings, "total": time.perf_counter() - stages.start}
    cpu = {k: v - cpu0[k] for k, v in cpu_times().items()}
    paired = ev.paired()
    report, table = write_report(out, plan_name, plan, seed, judge_backend, ev.summaries, ev.forced, checks,
                                 timings, cpu, ev.coupling, paired)
    if echo:
        console.rule(f"[bold]results, seed {seed} (held-out test split)[/]")
        print("\n".join(table), flush=True)  # plain print: a Markdown table must not be wrapped
        cpu_min = (cpu["user"] + cpu["sys"]) / 60
        reused = reused_seconds(timings)
        earlier = f" (reused stages took {reused / 60:.1f} min when they ran)" if reused else ""
        print(f"\nwall {timings['total'] / 60:.1f} min this run{earlier}, CPU {cpu_min:.1f} min; report: {report}")
    return {"report": str(report), "summaries": ev.summaries, "forced": ev.forced, "targets": checks,
            "paired": paired}


def demo_seeds(out: Path, plan_name: str, seeds: list[int], **kwargs: Any) -> Path:
    """The demo at each seed (<out>/seed-<s>/), then <out>/report.md over all of them."""
    from audiothinker.demo.report import seeds_report

    t0, cpu0 = time.perf_counter(), cpu_times()
    results = {s: demo(out / f"seed-{s}", plan_name, seed=s, **kwargs) for s in seeds}
    target_rows = aggregate_targets({s: r["targets"] for s, r in results.items()})
    metric_rows = aggregate_metrics({s: r["summaries"] for s, r in results.items()})
    cpu = {k: v - cpu0[k] for k, v in cpu_times().items()}
    paired = {s: r["paired"] for s, r in results.items()}
    report, lines = seeds_report(out, seeds, target_rows, metric_rows, time.perf_counter() - t0, cpu, paired)
    print("\n".join(lines), flush=True)
    print(f"\nreport: {report}")
    return report


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="end-to-end demo on one CPU: cold start, the five Table 1 presets, report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output directory (report.md, plots, runs)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="plan",
                      help="fewer items and steps, same pipeline (checks the pipeline, not the targets)")
    size.add_argument("--plan", choices=sorted(PLANS),
                      help="size of the run: full (default) | quick | smoke (seconds, for tests; learns nothing)")
    p.set_defaults(plan="full")
    p.add_argument("--seed", type=int, default=42, help="seed of data, model init, training and sampling")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="run the demo at N seeds (--seed, --seed+1, ...) and report mean and spread")
    p.add_argument("--recipes", type=Path, default=RECIPES, help="directory with sft.yaml and rl.yaml")
    p.add_argument("--judge-backend", choices=sorted(JUDGE_BACKENDS), default=None,
                   help="judge of R_c/R_t, the inconsistency rate and think quality (default: rule; openai with a URL)")
    p.add_argument("--judge-base-url", default=None,
                   help="OpenAI-compatible judge server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", default=None, help="judge model name as served (default Qwen/Qwen3-8B-Base)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of every RL config, e.g. --set train.beta=0.02 (repeatable)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="RL runs (then the presets' evaluations) at a time, each in its own process with CPUs / N "
                        "torch threads (default: the CPUs this process may use, at most the 5 presets; 1 runs them "
                        "in turn)")


def run(args: argparse.Namespace) -> int:
    from audiothinker.config import ConfigError

    backend = args.judge_backend or ("openai" if args.judge_base_url else "rule")
    if backend == "openai" and not args.judge_base_url:
        raise ConfigError("--judge-base-url: required with --judge-backend openai")
    for name in ("sft.yaml", "rl.yaml"):
        if not (args.recipes / name).is_file():
            raise ConfigError(f"--recipes: {args.recipes} has no {name} (run from a source checkout or pass --recipes)")
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds: must be >= 1, got {args.seeds}")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs: must be >= 1, got {args.jobs}")
    kwargs = {"recipes": args.recipes, "judge_backend": backend, "judge_base_url": args.judge_base_url,
              "judge_model": args.judge_model, "overrides": args.overrides,
              "jobs": args.jobs or min(available_cpus(), len(PRESETS))}
    if args.seeds:
        demo_seeds(Path(args.out), args.plan, [args.seed + k for k in range(args.seeds)], **kwargs)
    else:
        demo(Path(args.out), args.plan, seed=args.seed, **kwargs)
    return 0
