"""Time one GRPO training step: ours vs TRL's `GRPOTrainer`, and ours with audio vs text-only.

Launch (CPU, about a minute on 2 cores; figures and how to read them in benchmarks/README.md):
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/step_time.py --steps 16     # needs `pip install "trl==1.16.*"`
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/step_time.py --no-trl       # ours only (text and audio)

Ours is the trainer's own step: `build_context` + `grpo_step` (trainer/step.py), the calls
`trainer/grpo.py:train` makes. `--fast` also times it with the prototype sampler of
benchmarks/fast_paths.py in place of HF `generate` (prototype only; not in src/).

All systems run in one process, their steps interleaved (TRL, ours text, ours audio, [ours+fast
text, ours+fast audio], TRL, ...) so that noise from other work on the machine hits all of them
alike; the first `--warmup` steps of each are dropped and medians of the next `--steps` are
reported. One torch thread by default, for all systems (README: two threads on a shared 2-core
box spin-wait and make every timing random), and glibc told to keep freed memory
(`keep_freed_memory`; README: otherwise one system's page faults depend on the other's frees).

Equivalence choices (one optimizer step = 8 prompts x 4 completions x 64 tokens on both sides):
- Model: the same tiny random Qwen2 (`build_tiny_text`: hidden 64, 2 layers, vocab ~1k),
  float32, loaded from the same directory by both; TRL keeps a frozen reference copy
  (beta > 0, no PEFT) and so do we (`train.beta > 0`, `model.lora=False`).
- Batch: ours `per_device_batch_size=8, gradient_accumulation_steps=1, num_generations=4`;
  TRL `per_device_train_batch_size=32` (TRL counts completions), `num_generations=4`,
  `gradient_accumulation_steps=1`, `steps_per_generation=1` (so `generation_batch_size=32`):
  one `generate` call of 32 sequences and one micro-batch of 32 per optimizer step on both.
- Prompts: the same records each step (ours is fed the records TRL just trained on), rendered
  by the same chat template; the script checks both tokenize a prompt to the same ids.
- Tokens: exactly 64 new tokens per completion on both, EOS disabled by `min_new_tokens=64`
  (TRL: `generation_kwargs`; ours: `SamplingParams.min_new_tokens`); checked every step.
- Sampling: temperature 1.0, top_p 1.0, no top-k; `num_iterations=1` (no old-logp pass on
  either side), `loss_type="grpo"`, `beta=0.04`, `epsilon=0.2`, group-scaled advantages,
  `max_grad_norm=1.0`, AdamW (`optim="adamw_torch"`, non-fused like ours), constant LR 1e-6,
  no weight decay; TRL's `use_bias_correction_kl=False` (its KL is then our k3 exactly).
- Reward: one cheap Python function on both, audiothinker's `score_batch` with the `grpo`
  preset (answer accuracy + format), no judge, plus 0.01 x distinct characters of the
  completion (`with_spread`) so that advantages are not all zero on a random model.
- Off on TRL's side so it does no work ours skips: `gradient_checkpointing=False`, `bf16=False`,
  `report_to="none"`, `logging_steps` past the run, `save_strategy="no"`, `log_completions=False`.
  TRL's own work is kept: its loss forward also returns token entropies, and on CPU its fused
  LM head scores every prompt and completion position (it scores completions only on GPUs).
- Timing windows: TRL, from `on_step_begin` to `on_step_end` (its `training_step`: prompt
  tokenization, generate, rewards, ref forward, loss forward/backward, then clip, optimizer and
  scheduler steps); ours, one `grpo_step` call and its phases prepare -> rollout -> reward ->
  ref_old_logp (shown as ref) -> update. The only differences from training: `ctx.score` is
  wrapped to add `with_spread`, and the sampling settings force `min_new_tokens`.
- Audio vs text: `build_tiny_qwen2_audio` has the same language model sizes (hidden 64, 2
  layers, same tokenizer) plus a 2-layer audio encoder over 2 s of mel frames; its prompt
  carries ~53 more tokens (<|audio_bos|>, 50 x <|AUDIO|>, <|audio_eos|>, newline).
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from audiothinker.config import Config, ModelConfig, validate  # noqa: E402
from audiothinker.models.loading import resolve_tiny  # noqa: E402
from audiothinker.rewards import get_preset  # noqa: E402
from audiothinker.trainer.data import load_training_records, training_file  # noqa: E402
from audiothinker.trainer.distributed import Dist  # noqa: E402
from audiothinker.trainer.scoring import score_batch  # noqa: E402
from audiothinker.trainer.step import build_context, grpo_step  # noqa: E402
from audiothinker.trainer.tracking import PhaseTimer  # noqa: E402

PHASES = ("prepare", "rollout", "reward", "ref", "update")


def with_spread(totals: list[float], texts: list[str]) -> list[float]:
    """The preset's rewards plus a small distinct-character bonus, so a random tiny model's groups
    get non-zero advantages (the grpo preset alone scores all its completions 0) and both
    trainers really move their weights and their KL."""
    return [t + 0.01 * len(set(x)) for t, x in zip(totals, texts)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=8, help="prompts per optimizer step")
    p.add_argument("--num-generations", type=int, default=4, help="G, completions per prompt")
    p.add_argument("--new-tokens", type=int, default=64, help="exact completion length (EOS disabled)")
    p.add_argument("--steps", type=int, default=8, help="measured steps per system")
    p.add_argument("--warmup", type=int, default=2, help="steps per system dropped before measuring")
    p.add_argument("--lr", type=float, default=1e-6, help="learning rate of both")
    p.add_argument("--beta", type=float, default=0.04, help="KL coefficient of both")
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch.set_num_threads for all systems (0 = torch's default, one per core); see the README on why 1",
    )
    p.add_argument(
        "--system-malloc", action="store_true",
        help="keep glibc's default malloc tuning (by default freed memory stays in the process; README: page faults)",
    )
    p.add_argument("--workdir", default=None, help="models and data go here (default: a temporary directory)")
    p.add_argument("--json", default=None, help="also write the medians and every step's phases to this file")
    p.add_argument("--no-trl", action="store_true", help="time ours only (text and audio)")
    p.add_argument("--no-audio", action="store_true", help="skip the audio model")
    p.add_argument("--fast", action="store_true", help="also time ours with the prototype sampler of benchmarks/fast_paths.py")
    return p.parse_args(argv)


def keep_freed_memory() -> bool:
    """glibc: no heap trimming, mmap only above 32 MiB, so freed memory is reused, not given back to the OS.

    With the defaults, whether a step's large temporaries come from fresh (page-faulting) mmaps
    depends on what the other system in the process freed before (glibc's mmap threshold adapts
    process-wide): TRL's step measured 10 to 25 % slower next to ours than with this setting.
    Returns False where it does not apply (not glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
    return bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20))


# ---- ours ------------------------------------------------------------------------------------


def our_config(model_path: str, workdir: Path, args: argparse.Namespace) -> Config:
    cfg = Config(output_dir=str(workdir / "ours"), max_steps=args.warmup + args.steps, save_steps=0, seed=0)
    cfg.model = ModelConfig(name_or_path=model_path, dtype="float32")
    cfg.data.synthetic_size = 128
    cfg.rollout.num_generations = args.num_generations
    cfg.rollout.max_new_tokens = args.new_tokens
    cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.top_k = 1.0, 1.0, 0
    cfg.train.per_device_batch_size = args.prompts
    cfg.train.gradient_accumulation_steps = 1
    cfg.train.num_iterations = 1
    cfg.train.beta = args.beta
    cfg.train.loss_type = "grpo"
    cfg.train.learning_rate = args.lr
    cfg.train.lr_scheduler = "constant"
    cfg.reward.preset = "grpo"
    cfg.log.report_to = []
    return validate(cfg)


class OurStep:
    """The trainer's step: `build_context` once, then `grpo_step(records)` per call, timed by phase."""

    def __init__(self, cfg: Config, fast: bool = False):
        self.cfg = cfg
        self.ctx = build_context(cfg, Dist.create(cfg))
        # Exactly max_new_tokens per completion: EOS is masked until then (the benchmark's choice, not the trainer's).
        self.ctx.sampling = dataclasses.replace(self.ctx.sampling, min_new_tokens=cfg.rollout.max_new_tokens)
        score = self.ctx.score

        def score_with_spread(records: list, texts: list[str], step: int):
            scored = score(records, texts, step)
            return dataclasses.replace(scored, total=with_spread(scored.total, texts))

        self.ctx.score = score_with_spread
        if fast:
            from fast_paths import install

            install(self.ctx.policy)  # the engine calls policy.generate
        self.timer = PhaseTimer()
        self.step_index = 0

    def step(self, recs: list) -> dict[str, float]:
        """One `grpo_step` on `recs`; returns {phase: seconds}, total and the prompt length."""
        start = time.perf_counter()
        result = grpo_step(self.ctx, recs, self.step_index, self.timer)
        total = time.perf_counter() - start
        self.step_index += 1
        n, C = result.rollout.completion_ids.shape
        if C != self.cfg.rollout.max_new_tokens or int(result.rollout.completion_mask.sum()) != n * C:
            raise AssertionError(f"ours generated {int(result.rollout.completion_mask.sum())} tokens, not {n} x {C}")
        times = {k.removeprefix("timing/").replace("ref_old_logp", "ref"): v for k, v in self.timer.pop().items()}
        times["total"] = total
        times["prompt_len"] = result.batch.input_ids.size(1)
        return times


# ---- TRL -------------------------------------------------------------------------------------


def build_trl(model_path: str, records: list, workdir: Path, args: argparse.Namespace, on_step):
    """A TRL GRPOTrainer doing the same step; `on_step(trl_times, record_indices)` runs after each of its steps."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from audiothinker.models.text import _text_only
    from audiothinker.prompts import chat_messages

    preset = get_preset("grpo")
    G = args.num_generations
    rows = [
        {"prompt": _text_only(chat_messages(r.question, r.choices, preset.prompt)), "record_index": i}
        for i, r in enumerate(records)
    ]
    total_steps = args.warmup + args.steps
    seen: dict[str, list] = {"indices": []}

    def grpo_reward(prompts, completions, record_index, **kwargs) -> list[float]:
        """audiothinker's reward (preset grpo) on TRL's completions."""
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        seen["indices"] = list(record_index)
        recs = [records[i] for i in record_index]
        mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
        fraction = lambda flags: mean([float(f) for f in flags])  # noqa: E731
        return with_spread(score_batch(recs, texts, 1, preset, None, 0, total_steps, fraction, mean).total, texts)

    config = GRPOConfig(
        output_dir=str(workdir / "trl"),
        use_cpu=True, bf16=False, fp16=False, model_init_kwargs={"dtype": torch.float32},
        per_device_train_batch_size=args.prompts * G, num_generations=G,
        gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1,
        max_completion_length=args.new_tokens, generation_kwargs={"min_new_tokens": args.new_tokens},
        temperature=1.0, top_p=1.0, top_k=0,
        beta=args.beta, loss_type="grpo", epsilon=0.2, scale_rewards="group", use_bias_correction_kl=False,
        learning_rate=args.lr, lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch",
        gradient_checkpointing=False, max_steps=total_steps, logging_steps=total_steps + 1,
        save_strategy="no", report_to="none", disable_tqdm=True, log_completions=False, seed=0,
    )
    trainer = GRPOTrainer(model=model_path, reward_funcs=grpo_reward, args=config, train_dataset=Dataset.from_list(rows))

    phase = _instrument(trainer)

    class Interleave(TrainerCallback):
        def on_step_begin(self, *_, **__):
            phase.clear()
            phase["start"] = time.perf_counter()

        def on_step_end(self, *_, **__):
            total = time.perf_counter() - phase.pop("start")
            metrics = trainer._metrics["train"]
            lengths = (metrics["completions/min_length"][-1], metrics["completions/max_length"][-1])
            if lengths != (args.new_tokens, args.new_tokens):
                raise AssertionError(f"TRL generated completions of {lengths} tokens, not {args.new_tokens}")
            gs = phase.pop("gen_and_score")
            times = {k: phase.get(k, 0.0) for k in ("rollout", "reward", "ref")}
            times["prepare"] = gs - sum(times.values())  # tokenize, advantages, metrics
            times["update"] = total - gs  # loss forward + backward, clip, optimizer and scheduler steps
            times["total"] = total
            on_step(times, seen["indices"][::G])

    trainer.add_callback(Interleave())
    return trainer


def _instrument(trainer) -> dict[str, float]:
    """Wrap TRL's step methods with timers; returns the dict they add seconds to."""
    phase: dict[str, float] = {}

    def timed(name, fn, when=lambda *a, **k: True):
        def wrapper(*a, **k):
            if not when(*a, **k):
                return fn(*a, **k)
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                phase[name] = phase.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    trainer._generate_and_score_completions = timed("gen_and_score", trainer._generate_and_score_completions)
    trainer._generate_single_turn = timed("rollout", trainer._generate_single_turn)
    trainer._calculate_rewards = timed("reward", trainer._calculate_rewards)
    trainer._get_per_token_logps_and_entropies = timed(
        "ref", trainer._get_per_token_logps_and_entropies, when=lambda model, *a, **k: model is trainer.ref_model
    )
    return phase


def check_same_prompt_ids(model_path: str, records: list) -> int:
    """Our TextPolicy and TRL (apply_chat_template on the messages) must give the same prompt ids."""
    from transformers import AutoTokenizer

    from audiothinker.models.text import TextPolicy, _text_only
    from audiothinker.prompts import chat_messages

    tok = AutoTokenizer.from_pretrained(model_path)
    ours_policy = TextPolicy(torch.nn.Identity(), tok)
    msgs = chat_messages(records[0].question, records[0].choices, get_preset("grpo").prompt)
    ours = ours_policy.build_prompts([msgs], [None]).input_ids[0].tolist()
    theirs = tok.apply_chat_template(_text_only(msgs), add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    if ours != list(theirs):
        raise AssertionError(f"prompt ids differ:\nours   {ours}\nTRL    {list(theirs)}")
    return len(ours)


# ---- report ----------------------------------------------------------------------------------


def medians(steps: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(s[k] for s in steps) for k in steps[0]} if steps else {}


def table(results: dict[str, list[dict[str, float]]], tokens: int) -> str:
    cols = ("total", *PHASES)
    lines = [
        f"{'system':<26}" + "".join(f"{c:>10}" for c in cols) + f"{'tok/s':>9}{'prompt':>8}",
        "-" * (26 + 10 * len(cols) + 17),
    ]
    for name, steps in results.items():
        m = medians(steps)
        if not m:
            continue
        prompt = f"{m['prompt_len']:>8.0f}" if "prompt_len" in m else f"{'':>8}"
        lines.append(
            f"{name:<26}" + "".join(f"{m.get(c, float('nan')):>10.3f}" for c in cols) + f"{tokens / m['total']:>9.0f}" + prompt
        )
    return "\n".join(lines)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    tokens = args.prompts * args.num_generations * args.new_tokens
    print(f"\nmedian seconds per optimizer step ({tokens} completion tokens); phases: {', '.join(PHASES)}")
    print(table(results, tokens))
    m = {k: medians(v) for k, v in results.items()}
    print()
    for a, b, target in (
        ("ours (text)", "TRL GRPOTrainer (text)", 0.8),
        ("ours (audio)", "ours (text)", 1.3),
        ("ours+fast (text)", "TRL GRPOTrainer (text)", 0.8),
        ("ours+fast (audio)", "ours+fast (text)", 1.3),
    ):
        if m.get(a) and m.get(b):  # ratio of medians, and median of per-round ratios (one round, one load)
            r = m[a]["total"] / m[b]["total"]
            paired = statistics.median(x["total"] / y["total"] for x, y in zip(results[a], results[b]))
            verdict = "met" if max(r, paired) <= target else "NOT met"
            print(f"{a + ' / ' + b:<50} = {r:.2f}  (paired {paired:.2f})   target <= {target:.2f}: {verdict}")
    if results.get("TRL GRPOTrainer (text)"):
        print("TRL phases: prepare = the rest of _generate_and_score_completions (tokenize, advantages, metrics);")
        print("            update = loss forward + backward + clip + optimizer step; ours: the loop's PhaseTimer.")
    return m


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = "glibc defaults" if args.system_malloc else ("freed memory kept" if keep_freed_memory() else "system")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="audiothinker-step-time-"))
    text_path = resolve_tiny("tiny:text", workdir / "models")
    audio_path = resolve_tiny("tiny:qwen2_audio", workdir / "models")
    text_cfg = our_config(text_path, workdir, args)
    records, _ = load_training_records(*training_file(text_cfg), text_cfg)
    prompt_len = check_same_prompt_ids(text_path, records)

    audio_cfg = None if args.no_audio else our_config(audio_path, workdir, args)
    runners = {"ours (text)": OurStep(text_cfg)}
    if audio_cfg is not None:
        runners["ours (audio)"] = OurStep(audio_cfg)
    if args.fast:
        runners["ours+fast (text)"] = OurStep(text_cfg, fast=True)
        if audio_cfg is not None:
            runners["ours+fast (audio)"] = OurStep(audio_cfg, fast=True)
    results: dict[str, list[dict[str, float]]] = {"TRL GRPOTrainer (text)": [], **{name: [] for name in runners}}
    total = args.warmup + args.steps

    def ours_steps(recs: list, k: int) -> None:
        names = list(runners)
        for name in names[k % len(names):] + names[: k % len(names)]:  # rotate, so no system always goes first
            times = runners[name].step(recs)
            if k >= args.warmup:
                results[name].append(times)
            print(f"  step {k + 1}/{total} {name:<22} {times['total']:.3f}s", flush=True)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, malloc: {malloc}; workdir {workdir}")
    print(
        f"batch: {args.prompts} prompts x {args.num_generations} completions x {args.new_tokens} tokens; "
        f"text prompt {prompt_len} tokens (first record); {args.warmup} warm-up + {args.steps} measured steps each"
    )
    if args.no_trl:
        for k in range(total):
            ours_steps([records[(k * args.prompts + i) % len(records)] for i in range(args.prompts)], k)
    else:
        import trl

        calls = [0]

        def after_trl(times: dict[str, float], indices: list[int]) -> None:
            k = calls[0]
            calls[0] += 1
            if k >= args.warmup:
                results["TRL GRPOTrainer (text)"].append(times)
            print(f"  step {k + 1}/{total} {'TRL (text)':<22} {times['total']:.3f}s", flush=True)
            ours_steps([records[i] for i in indices], k)

        print(f"TRL {trl.__version__}")
        build_trl(text_path, records, workdir, args, after_trl).train()

    m = report(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "medians": m, "steps": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
