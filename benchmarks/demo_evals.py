"""The demo's five preset evaluations on a finished demo directory: in turn (one process) against side by
side (`--jobs` processes, CPUs / jobs torch threads each), in one run, with the summaries compared.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/demo_evals.py [--demo runs/demo] [--jobs 2]

The cold start is evaluated first, as in the demo: it prepares every held-out clip's audio features once
(cached in memory, inherited by the forked workers), so neither timed pass pays for that.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from audiothinker.data.loaders import load_records
    from audiothinker.demo.evaluate import Evaluations, build_judge, evaluate
    from audiothinker.demo.plan import PRESETS, Stages, available_cpus

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", type=Path, default=Path("runs/demo"), help="a finished `audiothinker demo --out` dir")
    ap.add_argument("--jobs", type=int, default=min(available_cpus(), len(PRESETS)), help="processes side by side")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="completion limit (recipes/demo/rl.yaml's)")
    args = ap.parse_args(argv)
    need = [args.demo / "data" / "test.jsonl", args.demo / "sft" / "final", *(args.demo / p / "final" for p in PRESETS)]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        print(f"error: {args.demo}: not a finished demo directory, missing {', '.join(missing)} "
              f"(run `audiothinker demo --out {args.demo}` first)", file=sys.stderr)
        return 2
    if args.jobs < 2:
        print(f"error: --jobs: must be >= 2 to compare with one at a time, got {args.jobs}", file=sys.stderr)
        return 2

    records = load_records(str(args.demo / "data" / "test.jsonl"), "jsonl").records
    judge = build_judge("rule", None, None)
    models = {p: (str(args.demo / p / "final"), {"preset": p}) for p in PRESETS}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        evaluate(str(args.demo / "sft" / "final"), records, "adaptive", judge, args.max_new_tokens,
                 Path(tmp) / "cold_start", progress=False)
        warm = time.perf_counter() - t0
        rows, summaries = [], {}
        for jobs in (1, args.jobs):
            ev = Evaluations(Stages(Console(file=io.StringIO())), Path(tmp) / f"jobs-{jobs}", records, judge,
                             ("rule", None, None), args.max_new_tokens, {})
            t0 = time.perf_counter()
            ev.presets(models, jobs)
            rows.append((jobs, time.perf_counter() - t0))
            summaries[jobs] = ev.summaries
    print(f"{len(records)} held-out items from {args.demo}; {available_cpus()} CPUs; cold start evaluated first "
          f"in {warm:.1f} s (audio features prepared and cached)\n")
    print("| the five preset evaluations | processes | torch threads each | wall (s) |")
    print("|---|---:|---:|---:|")
    import torch

    for jobs, seconds in rows:
        label = "in turn (baseline)" if jobs == 1 else "side by side"
        threads = torch.get_num_threads() if jobs == 1 else max(1, available_cpus() // jobs)
        print(f"| {label} | {jobs} | {threads} | {seconds:.1f} |")
    same = summaries[1] == summaries[args.jobs]
    print(f"\nside by side / in turn: {rows[1][1] / rows[0][1]:.2f}; the same summaries: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
