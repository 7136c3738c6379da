"""The frozen encoder's memo on a prompt batch seen before (`model.cache_audio_features`, warm caches): keyed
from the row digests the prompt memo noted when it put the batch together (`feature_cache.known_digests`) vs
keyed by scanning and hashing every row's 30 s of features (as before; a batch the memo did not build, such as a
copy, still is).

What is timed is the part of a cold-start step the change touches: the prompt batch and its prompt embeddings
(`prompt_batch` + `prompt_embeds`: audio features through the encoder memo and the projector). The demo's model
(tiny Qwen2-Audio in the published layout, 30 s window, hidden 64, 2 layers) and its synthetic items, 32 a batch
(the cold start's batch). Every batch is seen once (the memos fill); then each round runs one batch seen before
both ways, in a rotating order, and checks the embeddings equal.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/encoder_keys.py [--rounds 30] [--batch 32] [--threads 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from audiothinker.config import ModelConfig
from audiothinker.data.batching import prompt_batch
from audiothinker.data.synthetic import generate_items
from audiothinker.models import feature_cache
from audiothinker.models.loading import load_policy
from audiothinker.models.tiny import build_tiny_qwen2_audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_qwen2_audio(Path(tmp) / "m", seed=0, hidden=64, layers=2, audio_layers=0)
        policy = load_policy(ModelConfig(name_or_path=str(path), dtype="float32", freeze_audio_tower=True,
                                         cache_audio_features=True))
        items = generate_items(args.batch * args.rounds, seed=0)
        batches = [items[i * args.batch:(i + 1) * args.batch] for i in range(args.rounds)]

        def step(recs: list) -> torch.Tensor:
            return policy.prompt_embeds(policy.model, prompt_batch(policy, recs, "adaptive", None))

        def rehash(recs: list) -> torch.Tensor:
            with mock.patch.object(feature_cache, "known_digests", lambda features: None):
                return step(recs)

        systems = {"keys from the noted digests (ours)": step, "every row hashed (before)": rehash}
        with torch.no_grad():
            for recs in batches:  # every batch once: the memos fill
                step(recs)
            times: dict[str, list[float]] = {name: [] for name in systems}
            for r, recs in enumerate(batches):
                names = list(systems)[r % 2:] + list(systems)[: r % 2]
                out = {}
                for name in names:
                    t = time.perf_counter()
                    out[name] = systems[name](recs)
                    times[name].append(time.perf_counter() - t)
                a, b = out.values()
                assert torch.equal(a, b), "the embeddings differ"
    print(f"{args.batch} prompts a batch, {args.rounds} batches seen before, {torch.get_num_threads()} torch "
          f"threads; median ms per prompt batch + embeddings (equal):")
    base = statistics.median(times["every row hashed (before)"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:36s} {1000 * med:7.1f}  ({base / med:4.2f}x before)")


if __name__ == "__main__":
    main()
