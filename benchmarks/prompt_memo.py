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

import tempfile
from pathlib import Path

import torch
from rotating import arguments, cached_policy, demo_batches, demo_model, print_medians, time_rotating

from audiothinker.data.batching import prompt_batch


def main() -> None:
    args = arguments(__doc__, rounds=20)
    with tempfile.TemporaryDirectory() as tmp:
        path = demo_model(Path(tmp))
        memo, before = cached_policy(path), cached_policy(path)
        before.build_prompts = type(before).build_prompts.__get__(before)  # the processor, memos under it
        kinds = ["adaptive", "think", "no_think"]
        inputs = [(recs, kinds[r % 3]) for r, recs in enumerate(demo_batches(args.batch, args.rounds))]
        systems = {name: (lambda x, policy=policy: prompt_batch(policy, *x, None))
                   for name, policy in (("prompt memo (ours)", memo), ("processor + feature memos (before)", before))}
        for x in inputs:  # every batch once: the memos fill
            for run in systems.values():
                run(x)

        def check(outs: dict) -> None:
            a, b = outs.values()
            assert a.texts == b.texts and torch.equal(a.input_ids, b.input_ids)
            assert torch.equal(a.attention_mask, b.attention_mask)
            assert all(torch.equal(a.audio[k], b.audio[k]) for k in b.audio), "the batches differ"

        times = time_rotating(systems, inputs, check)
    print(f"{args.batch} prompts a batch, {args.rounds} batches seen before, {torch.get_num_threads()} torch "
          f"threads; median ms per prompt batch (batches equal):")
    print_medians(times, "processor + feature memos (before)", "before")


if __name__ == "__main__":
    main()
