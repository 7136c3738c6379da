"""Helpers shared by the vLLM tests (a module, not the conftest, so tests can import it)."""

from __future__ import annotations

from pathlib import Path


def build_real_shaped_qwen2_audio(out: Path, seed: int = 0) -> Path:
    """A tiny Qwen2-Audio in the shape vLLM's CPU backend accepts: head size 32, a 30 s window of 128 mels."""
    from audiothinker.models.tiny import build_tiny_qwen2_audio

    if not (out / "config.json").exists():
        build_tiny_qwen2_audio(out, seed=seed, mel_seconds=30, hidden=128, n_mels=128)
    return out


def load(path: Path, **kw):
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    return load_policy(ModelConfig(name_or_path=str(path), dtype="float32", **kw))
