"""The audio front end's first pass over new clips (`model.cache_audio_features`, cache empty): the mel
computed on the waveforms cut after their last sound (`feature_cache.windowed_mel`) vs on the whole
padded window (the extractor's own STFT, as before), and the plain extractor without the memo.

The demo's clips (0.5-2 s) in Qwen2-Audio's published 30 s window, 32 clips a batch (the cold start's
batch); each round empties the caches and times the three in a rotating order. Outputs are checked equal.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/audio_features.py [--rounds 8] [--window 30] [--threads 0]
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import torch
from rotating import arguments, print_medians, time_rotating
from transformers import WhisperFeatureExtractor

from audiothinker.models import feature_cache


def main() -> None:
    args = arguments(__doc__, rounds=8, extra=lambda ap: ap.add_argument(
        "--window", type=int, default=30, help="the extractor's chunk_length (s)"))
    rng = np.random.default_rng(0)
    plain = WhisperFeatureExtractor(feature_size=128, chunk_length=args.window)
    cached = WhisperFeatureExtractor(feature_size=128, chunk_length=args.window)
    feature_cache.cache_mel(cached)
    opts = {"sampling_rate": 16000, "return_tensors": "np", "padding": "max_length", "return_attention_mask": True}

    def clips() -> list[np.ndarray]:
        return [rng.normal(0, 0.1, int(rng.uniform(0.5, 2.0) * 16000)).astype(np.float32) for _ in range(args.batch)]

    def empty() -> None:
        feature_cache._CALL.clear()
        feature_cache._MEL.clear()

    def windowed(batch):
        empty()
        return cached(batch, **opts)

    def whole(batch):
        empty()
        before = lambda inner, fe, wav, device, end: feature_cache.whole_mel(inner, fe, wav, device)  # noqa: E731
        with mock.patch.object(feature_cache, "windowed_mel", before):  # the miss path before
            return cached(batch, **opts)

    systems = {"cached, windowed mel (ours)": windowed, "cached, whole window (before)": whole,
               "plain extractor": lambda b: plain(b, **opts)}
    windowed(clips())  # warm-up: imports, first allocations

    def check(outs: dict) -> None:
        ref = outs["plain extractor"]
        for name, out in outs.items():
            assert all(np.array_equal(out[k], ref[k]) for k in ref), f"{name}: features differ from the plain extractor"

    times = time_rotating(systems, (clips() for _ in range(args.rounds)), check)
    print(f"{args.batch} clips of 0.5-2 s in a {args.window} s window, {args.rounds} rounds, "
          f"{torch.get_num_threads()} torch threads; median s per batch (outputs equal):")
    print_medians(times, "cached, whole window (before)", "the whole window", ms=False, width=32)


if __name__ == "__main__":
    main()
