"""Evaluation every `eval.eval_steps` steps on a held-out set: accuracy and think rate by difficulty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audiothinker.config import Config
from audiothinker.data.records import AudioQA


def eval_records(cfg: Config) -> list[AudioQA]:
    """The held-out set: `eval.file`, or the synthetic test split (a different seed) for synthetic data."""
    from audiothinker.data.loaders import load_records

    if cfg.eval.file:
        fmt = cfg.eval.format or (cfg.data.format if cfg.data.format != "synthetic" else "jsonl")
        records = load_records(cfg.eval.file, fmt, audio_root=cfg.data.audio_root, on_error=cfg.data.on_error).records
    elif cfg.data.format == "synthetic":
        from audiothinker.data.synthetic import write_synthetic

        n = cfg.eval.limit or 96
        path = write_synthetic(Path(cfg.output_dir) / "data", n, cfg.data.synthetic_seed, split="test")
        records = load_records(path, "jsonl").records
    else:
        raise ValueError("eval.eval_steps > 0 needs eval.file (or synthetic training data)")
    if not records:
        from audiothinker.data.records import DataError

        raise DataError(f"eval.file: {cfg.eval.file}: no usable records in the held-out set")
    return records[: cfg.eval.limit] if cfg.eval.limit else records


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """eval/accuracy, eval/no_think_rate, eval/untagged_rate, ... and per-difficulty eval/<level>/<rate>.

    no_think_rate counts every completion not in think mode, untagged ones included;
    untagged_rate is the untagged share on its own (`eval.report.group_stats`).
    """
    out = {f"eval/{k}": v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for level, stats in summary.get("by_difficulty", {}).items():
        for k in ("accuracy", "no_think_rate", "untagged_rate", "n"):
            if k in stats:
                out[f"eval/{level}/{k}"] = stats[k]
    return out


class PeriodicEval:
    """Each process evaluates its share of the held-out set; the main process logs the merged summary."""

    def __init__(self, cfg: Config, accelerator: Any, policy: Any, judge: Any):
        self.cfg, self.acc, self.policy, self.judge = cfg, accelerator, policy, judge
        self.prompt_kind = cfg.eval.prompt
        records = eval_records(cfg)
        self.records = records[accelerator.process_index :: accelerator.num_processes]
        self.out = Path(cfg.output_dir) / "eval"

    def due(self, step: int) -> bool:
        return self.cfg.eval.eval_steps > 0 and (step % self.cfg.eval.eval_steps == 0 or step == self.cfg.max_steps)

    def run(self, step: int, model: Any) -> dict[str, float]:
        from accelerate.utils import gather_object

        from audiothinker.eval.report import summarize
        from audiothinker.eval.run import evaluate_policy

        skipped: list = []
        result = evaluate_policy(
            self.policy, model, self.records, self.prompt_kind, batch_size=self.cfg.eval.batch_size,
            max_new_tokens=self.cfg.eval.max_new_tokens or self.cfg.rollout.max_new_tokens, judge=self.judge,
            max_audio_seconds=self.cfg.data.max_audio_seconds, on_error=self.cfg.data.on_error,
            on_skip=skipped.extend,  # data.on_error=skip: a bad held-out clip is dropped and counted, not fatal
        )
        rows = gather_object(result.rows) if self.acc.num_processes > 1 else result.rows
        summary = summarize(rows)
        if self.acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            with (self.out / f"step-{step:06d}.jsonl").open("w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
            (self.out / f"step-{step:06d}.summary.json").write_text(json.dumps(summary, indent=2))
        n_skipped = sum(gather_object([len(skipped)])) if self.acc.num_processes > 1 else len(skipped)
        return {**flat_metrics(summary), "eval/skipped": n_skipped}
