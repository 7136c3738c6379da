"""Per-step metrics (JSONL + accelerate trackers), completion samples and a rich progress bar."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from audiothinker.config import Config, to_dict
from audiothinker.data.records import DIFFICULTIES
from audiothinker.trainer.tracking import JsonlWriter, mean_std


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, str, bool)):
            out[f"{prefix}{k}"] = v
    return out


class SkipLog:
    """Records left out, in `output_dir/skipped.jsonl` (one row each: step, where/id, reason, replacement)
    and named on stderr at the end. Step 0 rows are the load's; a resumed run rewrites those and
    drops the rows of steps it redoes."""

    def __init__(self, out: Path, accelerator, start: int):
        self.acc, self.path = accelerator, out / "skipped.jsonl"
        self.writer = JsonlWriter(self.path, accelerator.is_main_process)
        self.rows: list[dict[str, Any]] = []
        if accelerator.is_main_process and self.path.exists():
            self.writer.truncate_after(start)
            kept = [line for line in self.path.read_text().splitlines(keepends=True) if '"step": 0,' not in line]
            self.path.write_text("".join(kept))

    def add_load(self, skipped: list[tuple[str, str]]) -> None:
        for where, reason in skipped:
            self._write({"step": 0, "where": where, "reason": reason, "replaced_by": None})

    def add_step(self, step: int, skips: list) -> None:
        rows = [{"step": step, "where": f"record {s.record.id!r}", "id": s.record.id, "reason": s.reason,
                 "replaced_by": s.replaced_by} for s in skips]
        if self.acc.num_processes > 1:
            from accelerate.utils import gather_object

            rows = gather_object(rows)
        for row in rows:
            if self.acc.is_main_process:
                print(f"warning: step {step}: skipped {row['where']}: {row['reason']}"
                      + (f" (replaced by {row['replaced_by']!r})" if row["replaced_by"] else ""), file=sys.stderr)
            self._write(row)

    def _write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.writer.write(row)

    def report(self, max_listed: int = 10) -> str | None:
        """The skipped records of this run, for the end of the run (stderr)."""
        if not self.rows:
            return None
        load = sum(r["step"] == 0 for r in self.rows)
        listed = "\n".join(f"  step {r['step']}: {r['where']}: {r['reason']}" for r in self.rows[:max_listed])
        more = f"\n  ... {len(self.rows) - max_listed} more" if len(self.rows) > max_listed else ""
        return (f"{len(self.rows)} records skipped ({load} at load, {len(self.rows) - load} during training); "
                f"all listed in {self.path}:\n{listed}{more}")


class StepLogger:
    def __init__(self, cfg: Config, accelerator, total: int, start: int):
        self.cfg, self.acc = cfg, accelerator
        out = Path(cfg.output_dir)
        main = accelerator.is_main_process
        self.metrics = JsonlWriter(out / "metrics.jsonl", main and "jsonl" in cfg.log.report_to)
        self.samples = JsonlWriter(out / "samples.jsonl", main and cfg.log.num_samples > 0)
        # Rows past the starting step come from a run that died before its next checkpoint (a resume
        # redoes those steps) or from an earlier run in this output_dir (a fresh start): not kept twice.
        dropped = self.metrics.truncate_after(start) + self.samples.truncate_after(start)
        if dropped and main:
            print(f"{out}: dropped {dropped} metrics/sample rows logged after step {start} (redone now)")
        if any(t != "jsonl" for t in cfg.log.report_to):
            accelerator.init_trackers("audiothinker", config=_flatten(to_dict(cfg)))
        self.start_time = time.perf_counter()
        self.progress = None
        if main and cfg.log.progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]GRPO[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            )
            self.task = self.progress.add_task("train", total=total, completed=start, info="")
            self.progress.start()

    def log_step(self, step: int, records, rollout, scored, update: dict, timing: dict, judge: dict, lr: float) -> None:
        lengths = rollout.completion_mask.sum(1).float()
        acc = self.acc
        g = acc.gather_for_metrics  # metrics over the global batch

        def gmean_std(values: list[float | None]) -> tuple[float, float] | None:
            """Mean and std over the global batch; None (no judge score) is left out, and with no
            value at all there is no metric (a 0.0 would read as a judged zero)."""
            import torch

            nan = float("nan")  # None travels as NaN through the gather
            t = g(torch.tensor([nan if v is None else v for v in values], dtype=torch.float32, device=acc.device))
            kept = [v for v in t.tolist() if v == v]
            return mean_std(kept) if kept else None

        metrics: dict[str, Any] = {"step": step, "lr": lr}
        for name, values in (
            ("reward/total", scored.total), ("reward/accuracy", scored.accuracy), ("reward/format", scored.format),
            ("reward/consistency", scored.consistency), ("reward/think_quality", scored.think_quality),
        ):
            stats = gmean_std(values)
            if stats is not None:
                metrics[f"{name}_mean"], metrics[f"{name}_std"] = stats
        metrics["accuracy"] = gmean_std([float(c) for c in scored.correct])[0]  # type: ignore[index]
        metrics["think_rate"] = gmean_std([float(t) for t in scored.think])[0]  # type: ignore[index]
        metrics["lambda"] = metrics["think_rate"]
        metrics.update(self._by_difficulty(records, scored))
        all_len = g(lengths.to(acc.device)).float()
        metrics.update({
            "completions/mean_length": float(all_len.mean()), "completions/max_length": float(all_len.max()),
            "completions/min_length": float(all_len.min()),
            "completions/truncated_rate": float(g(rollout.truncated.float().to(acc.device)).mean()),
        })
        metrics.update(update)
        metrics.update({f"judge/{k}": v for k, v in judge.items()})
        metrics.update({f"reward/no_score_{k}": v for k, v in scored.judge_failures.items()})  # completions left unscored
        metrics.update(timing)
        metrics["timing/elapsed"] = time.perf_counter() - self.start_time
        if step % self.cfg.log.logging_steps == 0 or step == self.cfg.max_steps:
            self.metrics.write(metrics)
            if any(t != "jsonl" for t in self.cfg.log.report_to):
                acc.log({k: v for k, v in metrics.items() if k != "step"}, step=step)
            G = self.cfg.rollout.num_generations
            for i in range(min(self.cfg.log.num_samples, len(rollout.texts))):
                j = (i * G + i // len(records)) % len(rollout.texts)  # one completion per prompt first
                r = records[j // G]
                self.samples.write({
                    "step": step, "id": r.id, "question": r.question, "answer": r.answer, "difficulty": r.difficulty,
                    "completion": rollout.texts[j], "reward": scored.total[j], "correct": scored.correct[j],
                    "think": scored.think[j], "r_a": scored.accuracy[j], "r_f": scored.format[j],
                    "r_c_eff": scored.consistency[j], "r_t": scored.think_quality[j],
                })
        if self.progress is not None:
            info = f"reward {metrics['reward/total_mean']:.2f} acc {metrics['accuracy']:.2f} think {metrics['think_rate']:.2f}"
            self.progress.update(self.task, completed=step, info=info)
        self.last = metrics

    def _by_difficulty(self, records, scored) -> dict[str, float]:
        """think_rate/<level> and accuracy/<level> over the global batch, for each difficulty it has (what ATAR
        should separate); one gather each for the levels, the think flags and the correctness."""
        import torch

        G, g, device = self.cfg.rollout.num_generations, self.acc.gather_for_metrics, self.acc.device
        code = {level: k for k, level in enumerate(DIFFICULTIES)}
        levels = g(torch.tensor([code.get(r.difficulty, -1) for r in records for _ in range(G)], device=device))
        think = g(torch.tensor([float(t) for t in scored.think], device=device))
        correct = g(torch.tensor([float(c) for c in scored.correct], device=device))
        out = {}
        for level, k in code.items():
            sel = levels == k
            if bool(sel.any()):
                out[f"think_rate/{level}"] = float(think[sel].mean())
                out[f"accuracy/{level}"] = float(correct[sel].mean())
        return out

    def close(self, load_result: Any = None, skip_log: SkipLog | None = None) -> None:
        if self.progress is not None:
            self.progress.stop()
        from audiothinker.data.audio import AUDIO_STATS

        if self.acc.is_main_process:
            if load_result is not None:
                print(f"{load_result.path} ({load_result.format}): {len(load_result.records)} records")
            report = AUDIO_STATS.report()
            if report:
                print(report)
            skipped = skip_log.report() if skip_log is not None else None
            if skipped:
                print(skipped, file=sys.stderr)  # a warning, not a result: stderr, and the file lists them all
