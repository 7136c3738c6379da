"""`audiothinker eval`: the command line over `eval.run.evaluate` (flags -> EvalOptions -> evaluate -> print).

    audiothinker eval --benchmark mmau --data mmau-test-mini.json --audio-root DIR \
        --model runs/x/final --prompt adaptive --out runs/eval/x [--limit N] [--batch-size 8]

Writes <out>/predictions.json(l) in the benchmark's format, report.json, report.md and PNGs;
prints the official table (if any) and ours. Re-running with the same --out resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audiothinker.eval.benchmarks.base import BENCHMARKS
from audiothinker.eval.run import SKIPPED, EvalOptions, MissingAudioError, OtherRunError, evaluate
from audiothinker.judge.base import JUDGE_BACKENDS


def options(args: argparse.Namespace) -> EvalOptions:
    """The parsed flags as `evaluate`'s options (one field per flag, same names)."""
    return EvalOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(EvalOptions)})


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0, or 1 when audio is missing or --out holds another run's predictions."""
    from rich.console import Console

    console = Console(stderr=True)
    try:
        done = evaluate(options(args), log=lambda line: console.print(line, markup=False))
    except (MissingAudioError, OtherRunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    _print_summary(Console(), done.result.summary, done.official, done.title)
    print(f"predictions: {done.predictions}\nreport: {done.report['md']}")
    skipped = done.skipped
    if skipped:
        listed = "; ".join(f"{row['id']!r}: {row['reason']}" for row in skipped[:5])
        print(f"warning: {len({row['id'] for row in skipped})} records skipped, not in the predictions ({listed}"
              f"{'; ...' if len(skipped) > 5 else ''}); all listed in {Path(args.out) / SKIPPED}", file=sys.stderr)
    return 0


def _print_summary(console: Any, summary: dict[str, Any], official: dict[str, Any] | None, title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    if official is not None:
        from audiothinker.eval.score import result_table

        console.print(result_table(official, title=f"{title}: official scoring"))
    table = Table(title=title)
    for col in ("group", "name", "n", "accuracy %", "no-think %", "untagged %", "format %", "inconsistency %"):
        table.add_column(col, justify="left" if col in ("group", "name") else "right")

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.2f}"

    for group in ("by_difficulty", "by_task"):
        for name, g in summary[group].items():
            table.add_row(group[3:], Text(name), str(g["n"]), pct(g["accuracy"]), pct(g["no_think_rate"]),
                          pct(g["untagged_rate"]), pct(g["format_rate"]), pct(g["inconsistency_rate"]))
        table.add_section()
    s = summary
    table.add_row("all", "", str(s["n"]), pct(s["accuracy"]), pct(s["no_think_rate"]), pct(s["untagged_rate"]),
                  pct(s["format_rate"]), pct(s["inconsistency_rate"]))
    console.print(table)


def _ranged(cast: Callable[[str], Any], ok: Callable[[Any], bool], meaning: str) -> Callable[[str], Any]:
    """An argparse type: `cast` the text, then reject values outside `ok` with "must be <meaning>"."""
    def parse(text: str) -> Any:
        value = cast(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {text}")
        return value
    return parse


_positive_number = _ranged(float, lambda v: v > 0, "> 0")
_unit_interval = _ranged(float, lambda v: 0 < v <= 1, "in (0, 1]")
_non_negative = _ranged(int, lambda v: v >= 0, ">= 0")
_positive_float = _ranged(float, lambda v: 0 < v < float("inf"), "a positive number of seconds")
_positive = _ranged(int, lambda v: v >= 1, "a positive integer")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `eval` on the main CLI's subparsers."""
    p = subparsers.add_parser(
        "eval", help="evaluate a policy on a benchmark: predictions, official score, report",
        description="Generate answers with a policy, write the benchmark's official prediction file, "
        "score it and write report.json/report.md/PNGs. Re-running with the same --out resumes.",
    )
    p.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS),
                   help="data and prediction format; mmau/mmar/airbench are scored by the official rules, "
                   "jsonl (our schema, e.g. the synthetic set) by our matcher")
    p.add_argument("--data", required=True, help="metadata file (JSON list or JSONL)")
    p.add_argument("--audio-root", default=None, help="directory relative audio paths resolve against (default: the data file's)")
    p.add_argument("--model", required=True, help="checkpoint path, hub id, or tiny:qwen2_audio")
    p.add_argument("--prompt", default="adaptive", choices=("adaptive", "think", "no_think"), help="prompt kind (SPEC section 2)")
    p.add_argument("--out", required=True, help="output directory (predictions, report; resumed when re-run)")
    p.add_argument("--limit", type=_positive, default=None, help="evaluate only the first N records")
    p.add_argument("--batch-size", type=_positive, default=8, help="prompts per generate call")
    p.add_argument("--max-new-tokens", type=_positive, default=256, help="completion limit (paper: 256)")
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=_positive_number, default=1.0, help="sampling temperature (with --do-sample)")
    p.add_argument("--top-p", type=_unit_interval, default=1.0, help="nucleus sampling (with --do-sample)")
    p.add_argument("--top-k", type=_non_negative, default=0, help="top-k sampling, 0 = off (with --do-sample)")
    p.add_argument("--repetition-penalty", type=_positive_number, default=1.0, help="repetition penalty, 1.0 = off (TRL's name)")
    p.add_argument("--seed", type=int, default=42, help="torch seed (matters only with --do-sample)")
    p.add_argument("--max-audio-seconds", type=_positive_float, default=None, help="cut clips longer than this (default: the model's window)")
    p.add_argument("--skip-missing", action="store_true", help="evaluate the items whose audio exists; count the others")
    p.add_argument("--on-error", default="raise", choices=("raise", "skip"),
                   help="bad records (metadata, unusable clips, over-long prompts): stop, or skip and list them (skipped.jsonl)")
    p.add_argument("--restart", action="store_true", help="discard predictions already in --out instead of resuming")
    p.add_argument("--judge-backend", default=None, choices=("none", *sorted(JUDGE_BACKENDS)),
                   help="judge for the think/answer inconsistency rate (default: rule for jsonl, none for benchmarks)")
    p.add_argument("--judge-base-url", default=None, help="openai judge: server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", default=None, help="judge model name (openai) or path (local); default Qwen/Qwen3-8B-Base")
    p.add_argument("--judge-api-key-env", default="AUDIOTHINKER_JUDGE_API_KEY", help="env var holding the judge API key")
    from audiothinker.rollout import engine_names

    p.add_argument("--engine", default="hf", choices=engine_names(), help="rollout engine: hf (transformers generate) | vllm")
    p.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.9, help="vllm engine: share of GPU memory")
    p.add_argument("--vllm-max-model-length", type=_positive, default=None,
                   help="vllm engine: prompt + completion tokens (default: 1024 + 25 audio tokens/s + --max-new-tokens)")
    p.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda | cuda:N")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"), help="parameter dtype")
    p.add_argument("--models-cache", default="runs/.models", help="where tiny:* models are built")
    p.set_defaults(func=run)
    return p
