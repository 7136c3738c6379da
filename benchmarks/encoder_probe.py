"""Does the demo's frozen random audio encoder keep each tone's loudness and pitch? A linear probe per slot.

The demo's tiny Qwen2-Audio look-alike keeps its audio encoder (the conv front end, `DemoPlan.audio_layers` = 0) at
its random init, seeded by the demo seed. If some seeds' encoders lost the loud / quiet difference, their cold
starts could not learn to read it. This script builds the demo's model at each seed (`build_tiny_qwen2_audio`, the
demo's sizes), renders clips of four tones on the generator's slot grid (`data.synthetic`: `_random_tone`,
`render`), runs the encoder, and fits a ridge classifier per slot on the mean of the slot's first three audio
tokens (40 ms each): loud or quiet, high or low, fitted on one half of the clips and scored on the other. It prints
each seed's held-out accuracy per slot (chance 50 %).

    .venv/bin/python benchmarks/encoder_probe.py [--seeds 42 98 94] [--clips 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np

FRAMES_PER_TOKEN = 4  # the Qwen2-Audio encoder: conv stride 2, then average pooling by 2


def clips(count: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(waveforms, loud [count, 4], high [count, 4]) of four-tone clips drawn as the generator draws tones."""
    from audiothinker.data.synthetic import _random_tone, render

    rng = np.random.default_rng(seed)
    waves, loud, high = [], [], []
    for _ in range(count):
        tones = [_random_tone(rng) for _ in range(4)]
        waves.append(render(rng, tones))
        loud.append([t.level == "loud" for t in tones])
        high.append([t.pitch == "high" for t in tones])
    return waves, np.array(loud), np.array(high)


def ridge_accuracy(x: np.ndarray, y: np.ndarray, ridge: float = 1.0) -> float:
    """Held-out accuracy of a ridge classifier fitted on the first half of (x, y), scored on the second."""
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    half = len(x) // 2
    a = np.c_[x[:half], np.ones(half)]
    w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ (2.0 * y[:half] - 1.0))
    return float(((np.c_[x[half:], np.ones(len(x) - half)] @ w > 0) == y[half:]).mean())


def encoder_outputs(seed: int, waves: list[np.ndarray], seconds: float) -> tuple[np.ndarray, float]:
    """([clips, tokens, width], seconds per token): the demo model's (seed's) frozen audio encoder on each clip's
    first `seconds`."""
    import torch

    from audiothinker.config import ModelConfig
    from audiothinker.demo.plan import PLANS
    from audiothinker.models.loading import load_policy
    from audiothinker.models.tiny import build_tiny_qwen2_audio

    plan = PLANS["full"]
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_qwen2_audio(tmp, seed=seed, hidden=plan.hidden, layers=plan.layers,
                                      audio_layers=plan.audio_layers)
        policy = load_policy(ModelConfig(name_or_path=str(path)))  # the project's loader, as the demo's stages
    tower, extractor = policy.audio_tower, policy.processor.feature_extractor
    token_seconds = FRAMES_PER_TOKEN * extractor.hop_length / extractor.sampling_rate
    tokens = int(seconds / token_seconds)
    out = []
    with torch.no_grad():
        for a in range(0, len(waves), 50):
            features = extractor(waves[a:a + 50], sampling_rate=extractor.sampling_rate,
                                 return_tensors="pt")["input_features"]
            out.append(tower(features).last_hidden_state[:, :tokens].numpy())
    return np.concatenate(out), token_seconds


def main(argv: list[str] | None = None) -> int:
    from audiothinker.data.synthetic import MAX_SECONDS, SLOT_START, SLOT_STEP

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 98, 94], help="demo seeds (model inits) to probe")
    p.add_argument("--clips", type=int, default=600, help="clips per seed (half to fit, half to score)")
    p.add_argument("--clip-seed", type=int, default=7, help="seed of the clips (the same clips at every model seed)")
    args = p.parse_args(argv)
    if args.clips < 100:
        sys.exit(f"--clips {args.clips}: use at least 100 (50 to fit and 50 to score)")
    waves, loud, high = clips(args.clips, args.clip_seed)
    print(f"{args.clips} clips of 4 tones; held-out accuracy of a ridge probe per slot (chance 50 %)")
    print("seed  " + "  ".join(f"slot {k} loud / high" for k in range(4)))
    for seed in args.seeds:
        out, token_seconds = encoder_outputs(seed, waves, MAX_SECONDS)
        cells = []
        for k in range(4):
            t = int((SLOT_START + SLOT_STEP * k) / token_seconds)  # the token where slot k starts
            x = out[:, t:t + 3].mean(1)
            cells.append(f"{100 * ridge_accuracy(x, loud[:, k]):6.1f} / {100 * ridge_accuracy(x, high[:, k]):5.1f}")
        print(f"{seed:<5d} " + "  ".join(f"{c:>19s}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
