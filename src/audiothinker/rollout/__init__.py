"""Rollout engines: sample G completions per prompt. One registry (`register_engine`); `engine_names()` imports
every module of this package, so a new engine is one new file."""

from audiothinker.rollout.base import (
    ENGINES,
    EngineOptions,
    Rollout,
    RolloutEngine,
    SamplingParams,
    build_engine,
    engine_names,
    pad_after_eos,
    register_engine,
)
from audiothinker.rollout.hf import HFEngine

__all__ = [
    "ENGINES", "EngineOptions", "HFEngine", "Rollout", "RolloutEngine", "SamplingParams", "build_engine",
    "engine_names", "pad_after_eos", "register_engine",
]
