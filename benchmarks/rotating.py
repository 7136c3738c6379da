"""What the memo benchmarks share (`prompt_memo.py`, `encoder_keys.py`, `audio_features.py`): their options, the
demo's tiny model and items, and the timing loop that runs every system on each input in an order rotating from
round to round (so that drift on a shared machine hits all alike), then prints each system's median beside the
baseline's."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch


def arguments(doc: str, rounds: int, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> Any:
    """--rounds, --batch (32: the cold start's batch), --threads (0: torch's default, else set here), and `extra`'s."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--batch", type=int, default=32)
    if extra is not None:
        extra(ap)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def demo_model(directory: Path) -> Path:
    """The demo's model (tiny Qwen2-Audio in the published layout, 30 s window, hidden 64, 2 layers), built in
    `directory`."""
    from audiothinker.models.tiny import build_tiny_qwen2_audio

    return build_tiny_qwen2_audio(directory / "m", seed=0, hidden=64, layers=2, audio_layers=0)


def cached_policy(path: Path) -> Any:
    """The model at `path` loaded with its audio memos (`model.cache_audio_features`, frozen encoder)."""
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    return load_policy(ModelConfig(name_or_path=str(path), dtype="float32", freeze_audio_tower=True,
                                   cache_audio_features=True))


def demo_batches(batch: int, rounds: int) -> list[list]:
    """`rounds` batches of `batch` synthetic items (the demo's), all different."""
    from audiothinker.data.synthetic import generate_items

    items = generate_items(batch * rounds, seed=0)
    return [items[i * batch:(i + 1) * batch] for i in range(rounds)]


def time_rotating(systems: dict[str, Callable[[Any], Any]], inputs: Iterable[Any],
                  check: Callable[[dict[str, Any]], None]) -> dict[str, list[float]]:
    """Seconds of every system on each input, the order rotating by one each round; `check(outputs by name)`
    after each round."""
    times: dict[str, list[float]] = {name: [] for name in systems}
    for r, x in enumerate(inputs):
        k = r % len(systems)
        outs = {}
        for name in list(systems)[k:] + list(systems)[:k]:
            t = time.perf_counter()
            outs[name] = systems[name](x)
            times[name].append(time.perf_counter() - t)
        check(outs)
    return times


def print_medians(times: dict[str, list[float]], baseline: str, against: str, ms: bool = True,
                  width: int = 36) -> None:
    """Each system's median (ms, or s with `ms=False`) and the baseline's median over it ("1.44x `against`")."""
    base = statistics.median(times[baseline])
    for name, ts in times.items():
        med = statistics.median(ts)
        value = f"{1000 * med:7.1f}" if ms else f"{med:6.3f}"
        print(f"  {name:{width}s} {value}  ({base / med:4.2f}x {against})")
