"""How much of a hard item's answer the one-pass shortcut gives: the parity of the marked (high, or loud) tones
read off how long the marked tones sound in all, with the number of tones (the clip's length tells 3 from 4).

A hard item (data/synthetic.py, `_parity`) has 3 or 4 tones, each high or low and loud or quiet at random, and
each lasts a length drawn from `TONE_SECONDS` (`_tone_wave`). A model that adds up how long the marked band sounds
needs no tone-by-tone count. This script draws items as the generator does (only the lengths and the marks; no
audio) and prints the held-out accuracy of the best rule on (summed marked length in bins of --bin s, number of
tones): the majority answer per bin, fitted on one half of the draws and scored on the other; chance is 50 %. The
same for other length ranges beside it.

    .venv/bin/python benchmarks/parity_shortcut.py [--items 1000000] [--range 0.04 0.28] [--bin 0.01]
"""

from __future__ import annotations

import argparse

import numpy as np

from audiothinker.data.synthetic import TONE_SECONDS


def draw(rng: np.random.Generator, items: int,
         lengths: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(summed length of the marked tones [items], number of tones [items], parity odd [items]) of hard items."""
    n = rng.integers(3, 5, items)
    marked = rng.random((items, 4)) < 0.5
    marked[n == 3, 3] = False
    seconds = rng.uniform(*lengths, (items, 4))
    return (marked * seconds).sum(1), n, marked.sum(1) % 2 == 1


def shortcut_accuracy(total: np.ndarray, n: np.ndarray, odd: np.ndarray, bin_s: float) -> float:
    """Held-out accuracy of the majority answer per (length bin, number of tones), fitted on the first half."""
    keys = np.round(total / bin_s).astype(np.int64) * 8 + n
    half = len(keys) // 2
    fit_keys, fit_odd = keys[:half], odd[:half]
    uniq, inv = np.unique(fit_keys, return_inverse=True)
    odd_share = np.bincount(inv, weights=fit_odd) / np.bincount(inv)
    pos = np.clip(np.searchsorted(uniq, keys[half:]), 0, len(uniq) - 1)
    seen = uniq[pos] == keys[half:]
    guess = np.where(seen, odd_share[pos] > 0.5, True)
    return float(np.mean(guess == odd[half:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000, help="hard items drawn per length range")
    ap.add_argument("--range", type=float, nargs=2, action="append", metavar=("MIN", "MAX"),
                    help="another tone-length range (s) to compare (repeatable)")
    ap.add_argument("--bin", type=float, default=0.01, help="resolution of the summed length (s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.items < 1000 or args.bin <= 0:
        ap.error(f"--items must be >= 1000 and --bin > 0 (got {args.items}, {args.bin})")
    for lo, hi in args.range or []:
        if not 0 < lo <= hi:
            ap.error(f"--range {lo} {hi}: need 0 < MIN <= MAX (seconds)")
    ranges = [tuple(TONE_SECONDS)] + [tuple(r) for r in (args.range or [(0.04, 0.28), (0.12, 0.26), (0.2, 0.2)])]
    print(f"{'tone lengths (s)':<22}{'shortcut accuracy':>18}   (chance 50.0 %; {args.items} items each)")
    for lo, hi in ranges:
        total, n, odd = draw(np.random.default_rng(args.seed), args.items, (lo, hi))
        note = "  <- the generator's TONE_SECONDS" if (lo, hi) == tuple(TONE_SECONDS) else ""
        print(f"{f'{lo:.2f}-{hi:.2f}':<22}{100 * shortcut_accuracy(total, n, odd, args.bin):>16.1f} %{note}")


if __name__ == "__main__":
    main()
