"""The prompt batch of prompts seen before (`model.cache_audio_features`, warm caches): the prompt memo
(`feature_cache.cache_prompts`: chat template, tokenizing and the extractor call skipped per row) vs the
processor with the feature memos under it (as before). What it saves a whole demo is measured there
(README, demo section: the same demo with and without it).

The demo's model (tiny Qwen2-Audio in the published layout, 30 s window, hidden 64, 2 layers) and its
synthetic items, 32 a batch (the cold start's batch). Both policies load the same weights and first see
every batch once (the memos fill); then each round times `prompt_batch` on a batch seen before under
both, in a rotating order, and checks the batches equal tensor by tensor.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/prompt_memo.py [--rounds 20] [--batch 32] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from audiothinker.config import ModelConfig
from audiothinker.data.batching import prompt_batch
from audiothinker.data.synthetic import generate_items
from audiothinker.models.loading import load_policy
from audiothinker.models.tiny import build_tiny_qwen2_audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_qwen2_audio(Path(tmp) / "m", seed=0, hidden=64, layers=2, audio_layers=0)
        memo = load_policy(ModelConfig(name_or_path=str(path), dtype="float32", freeze_audio_tower=True,
                                       cache_audio_features=True))
        before = load_policy(ModelConfig(name_or_path=str(path), dtype="float32", freeze_audio_tower=True,
                                         cache_audio_features=True))
        before.build_prompts = type(before).build_prompts.__get__(before)  # the processor, memos under it
        items = generate_items(args.batch * args.rounds, seed=0)
        batches = [items[i * args.batch:(i + 1) * args.batch] for i in range(args.rounds)]
        kinds = ["adaptive", "think", "no_think"]
        systems = {"prompt memo (ours)": memo, "processor + feature memos (before)": before}
        for r, recs in enumerate(batches):  # every batch once: the memos fill
            for policy in systems.values():
                prompt_batch(policy, recs, kinds[r % 3], None)
        times: dict[str, list[float]] = {name: [] for name in systems}
        for r, recs in enumerate(batches):
            names = list(systems)[r % 2:] + list(systems)[: r % 2]
            out = {}
            for name in names:
                t = time.perf_counter()
                out[name] = prompt_batch(systems[name], recs, kinds[r % 3], None)
                times[name].append(time.perf_counter() - t)
            a, b = out.values()
            assert a.texts == b.texts and torch.equal(a.input_ids, b.input_ids)
            assert torch.equal(a.attention_mask, b.attention_mask)
            assert all(torch.equal(a.audio[k], b.audio[k]) for k in b.audio), "the batches differ"
    print(f"{args.batch} prompts a batch, {args.rounds} batches seen before, {torch.get_num_threads()} torch "
          f"threads; median ms per prompt batch (batches equal):")
    base = statistics.median(times["processor + feature memos (before)"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:36s} {1000 * med:7.1f}  ({base / med:4.2f}x before)")


if __name__ == "__main__":
    main()
