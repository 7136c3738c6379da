"""`audiothinker data synth`: write a synthetic set (WAV + JSONL in our schema) without running the demo.

    audiothinker data synth --out data/syn --size 300 --seed 7 [--split test] [--levels easy hard]

Writes <out>/<split>.jsonl and <out>/<split>/*.wav (`data.synthetic.write_synthetic`; the split
picks the seed offset, so a `test` split never shares clips with the `train` split of the same
seed). Every record carries its facts and a think trace; `--flawed`/`--inconsistent` set the
shares of flawed and inconsistent traces (the demo's cold start uses 0.15 each).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help="data utilities: `data synth` writes a synthetic set",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="data_command", required=True)
    s = sub.add_parser("synth", help="write a synthetic tone set (WAV + JSONL)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--size", type=int, required=True, help="number of items")
    s.add_argument("--seed", type=int, default=0, help="seed (the split adds its own offset)")
    s.add_argument("--split", default="train", choices=["train", "test", "val"], help="split name and seed offset")
    s.add_argument("--levels", nargs="+", default=None, metavar="LEVEL",
                   help="difficulties to include (easy medium hard; default all)")
    s.add_argument("--flawed", type=float, default=0.0, help="share of traces with one false claim")
    s.add_argument("--inconsistent", type=float, default=0.0, help="share of traces concluding another option")


def run(args: argparse.Namespace) -> int:
    from audiothinker.config import ConfigError
    from audiothinker.data.records import DIFFICULTIES
    from audiothinker.data.synthetic import TASKS, write_synthetic

    if args.size < 1:
        raise ConfigError(f"--size: must be >= 1, got {args.size}")
    levels = args.levels or list(DIFFICULTIES)
    bad = [lv for lv in levels if lv not in TASKS]
    if bad:
        raise ConfigError(f"--levels: unknown {bad}; valid: {list(TASKS)}")
    shares = (args.flawed, args.inconsistent)
    if min(shares) < 0 or sum(shares) > 1:
        raise ConfigError(f"--flawed/--inconsistent: shares must be >= 0 and sum to <= 1, got {shares}")
    path = write_synthetic(args.out, args.size, args.seed, split=args.split, difficulties=levels, trace_shares=shares)
    print(f"wrote {args.size} items: {path}")
    return 0
