"""Cold start: supervised fine-tuning on records that carry a think trace (`metadata["reasoning"]`).

    audiothinker sft --config recipes/demo/sft.yaml --set max_steps=200

Each time an item is drawn, a seeded coin picks its target's shape, with no link to the item's
difficulty or task, so the cold-start model knows both shapes but not when to use which:
    think     <think>{reasoning}</think><answer>{answer}</answer><eos>
    no-think  <answer>{answer}</answer><eos>
Prompts go through the same `prompt_batch` path as GRPO, and the loss is computed from the
policy's `token_logprobs` (via `ScoringModule`), so the audio features reach every forward and
SFT and RL score tokens the same way. Loss = mean negative log-likelihood of the micro-batch's target
tokens; with `--loss-tokens N`, their summed NLL over a constant N tokens per item instead (see `nll_loss`).

It reads the same config tree as `train` (model, data, train.learning_rate/batch sizes/schedule,
max_steps, seed, output_dir, log.progress); the SFT-only knobs are the flags below.
The final model goes to `<output_dir>/final` (and every `save_steps` to `<output_dir>/step-N`), loadable
with `load_policy(ModelConfig(name_or_path=...))`; per-step metrics to `<output_dir>/sft_metrics.jsonl`:
loss, and `answer_nll/<shape or difficulty>`, the NLL of the answer text alone (teacher-forced; for
direct answers it shows when the model starts to use the audio).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from audiothinker.config import Config, load_config, to_dict
from audiothinker.data.records import AudioQA
from audiothinker.models.base import Policy


MIXED_SHARES = (0.5, 0.25, 0.25)
"""Default shares of the adaptive, think and no-think prompts among the micro-batches of `--prompt mixed`."""


@dataclass
class SFTOptions:
    think_fraction: float = 0.5
    """Chance that an item's target is a think trace (else a direct answer); independent of difficulty."""
    prompt: str = "adaptive"
    """Prompt kind of the SFT inputs: adaptive | think | no_think | mixed (per micro-batch, a seeded draw by
    `prompt_shares`: the adaptive prompt with the coin's shape, the think prompt with a trace, the no-think
    prompt with a direct answer), so the cold start follows all three prompts."""
    fix_flawed: bool = False
    """Train on `metadata["reasoning_clean"]` (the synthetic set's correct trace) where an item carries a
    flawed trace (misheard facts); inconsistent traces (true facts, another conclusion) stay. The demo's
    second cold-start phase: flawed traces teach misheard tones, and R_c keeps a slip to fix."""
    task_think_fractions: dict[str, float] | None = None
    """Per task (`record.task`), the chance of a think target instead of `think_fraction`; other tasks keep it."""
    prompt_shares: tuple[float, float, float] = MIXED_SHARES
    """`prompt="mixed"`: the shares of the adaptive, think and no-think prompts among the micro-batches (each
    in [0, 1], summing to 1). The forced prompts' targets are all traces or all direct answers, so they move
    the think rate of the adaptive-prompt items' targets too: an item's direct targets are
    (1 - p) * adaptive + no_think."""
    loss_tokens: float | None = None
    """None: the loss is the mean NLL over the micro-batch's target tokens. A number N: the micro-batch's summed NLL
    over N tokens per item (a constant, as Dr. GRPO's loss normalizer), so a token's weight does not depend on
    how long the other targets of its micro-batch are (see `nll_loss`); N near the mean target length keeps the
    step size of the mean."""

    def __post_init__(self) -> None:
        self.prompt_shares = check_prompt_shares(self.prompt_shares)
        if self.loss_tokens is not None and not self.loss_tokens > 0:
            raise ValueError(f"loss tokens: must be a positive number of tokens per item, got {self.loss_tokens}")

    def fraction(self, task: str | None) -> float:
        """The think chance of an item of `task`."""
        return (self.task_think_fractions or {}).get(task or "", self.think_fraction)


# --------------------------------------------------------------------------- targets and loss (pure)


def target_text(record: AudioQA, think: bool, fix_flawed: bool = False) -> str:
    """The SFT target of `record` in one of the two valid shapes (SPEC section 2); fix_flawed: the correct
    trace in place of a flawed one (`SFTOptions.fix_flawed`)."""
    if not think:
        return f"<answer>{record.answer}</answer>"
    flawed = record.metadata.get("trace") == "flawed"
    key = "reasoning_clean" if fix_flawed and flawed else "reasoning"
    reasoning = record.metadata.get(key)
    if not reasoning:
        raise ValueError(f"record {record.id!r} has no metadata[{key!r}] for a think target")
    return f"<think>{reasoning}</think><answer>{record.answer}</answer>"


def think_coin(seed: int, epoch: int, record_id: str, think_fraction: float) -> bool:
    """The seeded coin that picks a target's shape; it sees only (seed, epoch, id), never the difficulty."""
    return random.Random(f"{seed}/{epoch}/{record_id}").random() < think_fraction


def check_prompt_shares(shares: Any) -> tuple[float, float, float]:
    """`shares` as a tuple of three floats in [0, 1] summing to 1, else a ValueError saying what is wrong."""
    values = tuple(float(x) for x in shares)
    if len(values) != 3:
        raise ValueError(f"prompt shares: need 3 (adaptive, think, no_think), got {len(values)}: {values}")
    if any(not 0.0 <= x <= 1.0 for x in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"prompt shares: each must be in [0, 1] and they must sum to 1, got {values}")
    return values  # type: ignore[return-value]


def batch_prompt(seed: int, position: int, prompt: str, shares: tuple[float, float, float] = MIXED_SHARES) -> str:
    """The prompt kind of one micro-batch: `prompt` itself, or for "mixed" a seeded draw by the
    (adaptive, think, no_think) `shares` (see SFTOptions)."""
    if prompt != "mixed":
        return prompt
    u = random.Random(f"{seed}/prompt/{position}").random()
    return "adaptive" if u < shares[0] else "think" if u < shares[0] + shares[1] else "no_think"


def target_shape(kind: str, coin: bool) -> bool:
    """Think target or not: the forced prompts fix it; the adaptive prompt takes the coin."""
    return {"think": True, "no_think": False}.get(kind, coin)


def target_tokens(tokenizer: Any, record: AudioQA, think: bool, eos_id: int,
                  fix_flawed: bool = False) -> tuple[list[int], tuple[int, int]]:
    """Token ids of the target (EOS appended) and the [start, stop) span of the answer text inside it."""
    text = target_text(record, think, fix_flawed)
    head = text[: text.index("<answer>") + len("<answer>")]

    def enc(s: str) -> list[int]:
        return list(_encode(tokenizer, s))

    head_ids, answer_ids = enc(head), enc(record.answer)
    ids = enc(text) + [eos_id]
    if ids[: len(head_ids) + len(answer_ids)] != head_ids + answer_ids:  # tokenizer merged across a boundary
        return ids, (0, 0)
    return ids, (len(head_ids), len(head_ids) + len(answer_ids))


@functools.lru_cache(maxsize=1 << 16)
def _encode(tokenizer: Any, text: str) -> tuple[int, ...]:
    """Token ids of `text` without special tokens; memoized, as every epoch encodes the same targets again."""
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_right(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token rows -> (ids [B, C], mask [B, C])."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def nll_loss(logp: torch.Tensor, mask: torch.Tensor, tokens_per_item: float | None = None) -> torch.Tensor:
    """Negative log-likelihood of the batch's target tokens: logp, mask [B, C] -> scalar.

    tokens_per_item None: the mean over the batch's target tokens. Each item's own tokens are in that count, so
    a long target weighs each of its tokens less than a short one does: a 78-token trace in a micro-batch
    of 32 weighs its first token (the think tag) 0.93 of a 10-token direct answer's. A number: the sum over
    B * tokens_per_item, a constant, so every token weighs the same whatever the lengths."""
    m = mask.to(logp.dtype)
    total = -(logp * m).sum()
    if tokens_per_item is not None:
        return total / (mask.shape[0] * tokens_per_item)
    return total / m.sum().clamp(min=1.0)


def answer_nll(logp: torch.Tensor, spans: list[tuple[int, int]]) -> list[float | None]:
    """Per-row NLL of the answer text alone (None where the span is empty): how well the audio is used."""
    out: list[float | None] = []
    for row, (a, b) in zip(logp.detach(), spans):
        out.append(float(-row[a:b].sum()) if b > a else None)
    return out


# --------------------------------------------------------------------------- the loop


def preload_audio(records: list[AudioQA], policy: Policy, max_audio_seconds: float | None) -> list[AudioQA]:
    """Read every clip once (resampled, cut to the policy's window); SFT revisits items many times."""
    from audiothinker.data.audio import AUDIO_STATS, load_record_audio

    limit = min(max_audio_seconds or policy.max_audio_seconds, policy.max_audio_seconds)
    return [
        dataclasses.replace(r, audio=load_record_audio(r, policy.sampling_rate, max_seconds=limit, stats=AUDIO_STATS),
                            sampling_rate=policy.sampling_rate)
        for r in records
    ]


def sft(cfg: Config, opts: SFTOptions | None = None) -> Path:
    """Run supervised fine-tuning as configured; returns the directory of the final model."""
    opts = opts or SFTOptions()
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from audiothinker.algos.optim import build_optimizer
    from audiothinker.models.base import ScoringModule
    from audiothinker.models.loading import load_policy, save_pretrained
    from audiothinker.trainer.data import load_training_records, training_file
    from audiothinker.trainer.state import PromptSampler
    from audiothinker.trainer.tracking import JsonlWriter

    acc = Accelerator(gradient_accumulation_steps=cfg.train.gradient_accumulation_steps, project_dir=cfg.output_dir)
    set_seed(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**to_dict(cfg), "sft": dataclasses.asdict(opts)}, indent=2))

    path, fmt = training_file(cfg)
    records, _ = load_training_records(path, fmt, cfg)
    policy = load_policy(cfg.model, cache_dir=out.parent / ".models")
    records = preload_audio(records, policy, cfg.data.max_audio_seconds)
    tok = policy.tokenizer
    eos_id = tok.convert_tokens_to_ids(tok.eos_token) if tok.eos_token else policy.model.generation_config.eos_token_id
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_id

    scorer = ScoringModule(policy.model, policy)
    optimizer, scheduler = build_optimizer(scorer, cfg.train, cfg.max_steps)
    scorer, optimizer = acc.prepare(scorer, optimizer)
    scorer.train()
    sampler = PromptSampler(len(records), cfg.seed, cfg.data.shuffle)
    metrics = JsonlWriter(out / "sft_metrics.jsonl", acc.is_main_process)
    progress = _progress(cfg, acc.is_main_process)
    start = time.perf_counter()

    for step in range(1, cfg.max_steps + 1):
        row = {"step": step, **_train_step(acc, scorer, optimizer, scheduler, cfg, opts, policy, records, sampler,
                                           (eos_id, pad_id)), "timing/elapsed": time.perf_counter() - start}
        metrics.write(row)
        if progress is not None:
            progress.update(progress.task_ids[0], completed=step,
                            info=f"loss {row['loss']:.3f}  answer nll {_mean_answer_nll(row):.3f}")
        if cfg.save_steps and step % cfg.save_steps == 0 and step < cfg.max_steps and acc.is_main_process:
            _save_step(acc, scorer, policy, out, step, cfg.save_total_limit)
    if progress is not None:
        progress.stop()

    final = out / "final"
    if acc.is_main_process:
        policy.model = acc.unwrap_model(scorer).model
        save_pretrained(policy, final)
    acc.wait_for_everyone()
    acc.end_training()
    return final


def _train_step(acc: Any, scorer: Any, optimizer: Any, scheduler: Any, cfg: Config, opts: SFTOptions, policy: Policy,
                records: list[AudioQA], sampler: Any, eos_pad: tuple[int, int]) -> dict[str, float]:
    """One optimizer step over gradient_accumulation_steps micro-batches; returns its metrics."""
    from audiothinker.algos.optim import backward_and_step
    from audiothinker.data.batching import prompt_batch

    losses, n_think, n_items = [], 0, 0
    answer_sums: dict[str, list[float]] = {}
    bs = cfg.train.per_device_batch_size
    for _ in range(cfg.train.gradient_accumulation_steps):
        epoch = sampler.cursor // len(records)
        kind = batch_prompt(cfg.seed, sampler.cursor, opts.prompt, opts.prompt_shares)  # the cursor names the micro-batch
        recs = [records[i] for i in sampler.take(bs * acc.num_processes, acc.process_index, acc.num_processes)]
        shapes = [target_shape(kind, think_coin(cfg.seed, epoch, r.id, opts.fraction(r.task))) for r in recs]
        batch = prompt_batch(policy, recs, kind, cfg.data.max_audio_seconds).to(acc.device)
        targets = [target_tokens(policy.tokenizer, r, s, eos_pad[0], opts.fix_flawed) for r, s in zip(recs, shapes)]
        ids, mask = (t.to(acc.device) for t in pad_right([t for t, _ in targets], eos_pad[1]))  # [B, C]
        with acc.accumulate(scorer):
            logp = scorer(batch, ids, mask, 1)  # [B, C]: audio features in the forward
            loss = nll_loss(logp, mask, opts.loss_tokens)
            backward_and_step(acc, scorer, loss, optimizer, scheduler, cfg.train.max_grad_norm)
        losses.append(float(loss.detach()))
        _collect_answer_nll(answer_sums, recs, shapes, answer_nll(logp, [span for _, span in targets]))
        n_think += sum(shapes)
        n_items += len(shapes)
    return {
        "loss": sum(losses) / len(losses), "think_share": n_think / n_items,
        **{f"answer_nll/{k}": sum(v) / len(v) for k, v in sorted(answer_sums.items())},
        "lr": scheduler.get_last_lr()[0],
    }


def _collect_answer_nll(sums: dict[str, list[float]], records: list[AudioQA], shapes: list[bool],
                        nlls: list[float | None]) -> None:
    """Group answer NLLs by target shape and by difficulty (when the records have one)."""
    for r, think, nll in zip(records, shapes, nlls):
        if nll is None:
            continue
        for key in ("think" if think else "direct", r.difficulty):
            if key:
                sums.setdefault(key, []).append(nll)


def _save_step(acc: Any, scorer: Any, policy: Policy, out: Path, step: int, keep: int | None) -> None:
    """A loadable model at <out>/step-NNNNNN (weights only: SFT is short, it restarts rather than resumes)."""
    from audiothinker.models.loading import save_pretrained

    model = policy.model
    policy.model = acc.unwrap_model(scorer).model
    save_pretrained(policy, out / f"step-{step:06d}")
    policy.model = model
    if keep:
        for old in sorted(out.glob("step-*"))[:-keep]:
            shutil.rmtree(old)


def _mean_answer_nll(row: dict) -> float:
    parts = [row[k] for k in ("answer_nll/think", "answer_nll/direct") if k in row]
    return sum(parts) / len(parts) if parts else float("nan")


def _progress(cfg: Config, main: bool):
    if not (main and cfg.log.progress):
        return None
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]SFT[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
    )
    progress.add_task("sft", total=cfg.max_steps, info="")
    progress.start()
    return progress


# --------------------------------------------------------------------------- CLI


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sft", help="cold start: supervised fine-tuning on think traces and direct answers",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="YAML config file (same tree as `train`; see recipes/demo/sft.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.learning_rate=1e-3 (repeatable)")
    defaults = SFTOptions()
    p.add_argument("--think-fraction", type=float, default=defaults.think_fraction,
                   help="chance that an item's target is a think trace; independent of difficulty")
    p.add_argument("--prompt", default=defaults.prompt, choices=["adaptive", "think", "no_think", "mixed"],
                   help="prompt kind of the SFT inputs")
    p.add_argument("--prompt-shares", default=",".join(f"{x:g}" for x in defaults.prompt_shares), metavar="A,T,N",
                   help="with --prompt mixed: shares of the adaptive, think and no-think prompts among the "
                        "micro-batches, summing to 1 (default %(default)s)")
    p.add_argument("--loss-tokens", type=float, default=None, metavar="N",
                   help="divide each micro-batch's summed NLL by N tokens per item (a constant) instead of "
                        "taking the mean over its target tokens; N near the mean target length keeps the step size")


def run(args: argparse.Namespace) -> int:
    from audiothinker.config import ConfigError

    if not 0.0 <= args.think_fraction <= 1.0:
        raise ConfigError(f"--think-fraction: must be in [0, 1], got {args.think_fraction}")
    try:
        shares = check_prompt_shares(args.prompt_shares.split(","))
    except ValueError as e:
        raise ConfigError(f"--prompt-shares {args.prompt_shares!r}: {str(e).removeprefix('prompt shares: ')}") from None
    try:
        opts = SFTOptions(args.think_fraction, args.prompt, prompt_shares=shares, loss_tokens=args.loss_tokens)
    except ValueError as e:
        raise ConfigError(f"--loss-tokens: {str(e).removeprefix('loss tokens: ')}") from None
    cfg = load_config(args.config, args.overrides)
    final = sft(cfg, opts)
    print(f"final model: {final}")
    return 0
