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

import tempfile
from pathlib import Path
from unittest import mock

import torch
from rotating import arguments, cached_policy, demo_batches, demo_model, print_medians, time_rotating

from audiothinker.data.batching import prompt_batch
from audiothinker.models import feature_cache


def main() -> None:
    args = arguments(__doc__, rounds=30)
    with tempfile.TemporaryDirectory() as tmp:
        policy = cached_policy(demo_model(Path(tmp)))
        batches = demo_batches(args.batch, args.rounds)

        def step(recs: list) -> torch.Tensor:
            return policy.prompt_embeds(policy.model, prompt_batch(policy, recs, "adaptive", None))

        def rehash(recs: list) -> torch.Tensor:
            with mock.patch.object(feature_cache, "known_digests", lambda features: None):
                return step(recs)

        def check(outs: dict) -> None:
            a, b = outs.values()
            assert torch.equal(a, b), "the embeddings differ"

        systems = {"keys from the noted digests (ours)": step, "every row hashed (before)": rehash}
        with torch.no_grad():
            for recs in batches:  # every batch once: the memos fill
                step(recs)
            times = time_rotating(systems, batches, check)
    print(f"{args.batch} prompts a batch, {args.rounds} batches seen before, {torch.get_num_threads()} torch "
          f"threads; median ms per prompt batch + embeddings (equal):")
    print_medians(times, "every row hashed (before)", "before")


if __name__ == "__main__":
    main()
