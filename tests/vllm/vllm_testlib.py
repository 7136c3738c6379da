"""Helpers shared by the vLLM tests (a module, not the conftest, so tests can import it)."""

from __future__ import annotations

from pathlib import Path


def build_real_shaped_qwen2_audio(cache: Path, seed: int = 0) -> Path:
    """`tiny:qwen2_audio`: the published layout shrunk, in the shape vLLM's CPU backend accepts
    (head size 32, a 30 s window of 128 mel bins, untied LM head)."""
    from audiothinker.models.loading import resolve_tiny

    return Path(resolve_tiny("tiny:qwen2_audio", cache, seed))


def load(path: Path, **kw):
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    return load_policy(ModelConfig(name_or_path=str(path), dtype="float32", **kw))
