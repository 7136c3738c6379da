"""Rollout engines: sample G completions per prompt. One registry (`register_engine`); each engine module is imported here."""

from audiothinker.rollout import hf, vllm_engine  # noqa: F401  (registration; vllm itself is imported only when built)
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
