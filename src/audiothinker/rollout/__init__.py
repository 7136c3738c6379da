"""Rollout engines: sample G completions per prompt. HF `generate` here; a vLLM engine plugs in the same way."""

from audiothinker.rollout.base import Rollout, RolloutEngine, SamplingParams, build_engine, pad_after_eos

__all__ = ["Rollout", "RolloutEngine", "SamplingParams", "build_engine", "pad_after_eos"]
