"""The transformers `generate` engine: samples from the training model itself (no copy, no sync cost).

The adapter's `generate` encodes each prompt once and shares its KV cache with the G completions
(models/base.py: `prompt_cache`), so this engine stays as fast as before the interface change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from audiothinker.models.base import Policy, PromptBatch, unwrap
from audiothinker.rollout.base import EngineOptions, Rollout, SamplingParams, pad_after_eos, register_engine, stop_ids


def generation_kwargs(params: SamplingParams, eos_ids: list[int], pad_id: int) -> dict[str, Any]:
    """Every generation setting that changes what is sampled, set explicitly.

    transformers fills each setting left unset from the checkpoint's generation_config.json (a
    real one sets e.g. top_k 20, top_p 0.5, repetition_penalty 1.1) and then from its own defaults
    (top_k 50): so none that applies is left unset. Greedy decoding (do_sample False) keeps the neutral
    temperature / top_p and no top_k (transformers applies none of the three without sampling, and warns
    that a top_k other than its default "may be ignored"); the repetition penalty applies to both.
    """
    sample = params.do_sample
    top_k = params.top_k if sample else None
    return {
        "max_new_tokens": params.max_new_tokens, "min_new_tokens": params.min_new_tokens, "do_sample": sample,
        "num_beams": 1, "temperature": params.temperature if sample else 1.0, "top_p": params.top_p if sample else 1.0,
        "top_k": top_k, "min_p": None, "top_h": None, "typical_p": 1.0, "epsilon_cutoff": 0.0,
        "eta_cutoff": 0.0, "repetition_penalty": params.repetition_penalty, "no_repeat_ngram_size": 0,
        "bad_words_ids": None, "sequence_bias": None, "begin_suppress_tokens": None, "forced_bos_token_id": None,
        "forced_eos_token_id": None, "exponential_decay_length_penalty": None, "renormalize_logits": False,
        "eos_token_id": list(eos_ids), "pad_token_id": pad_id,
    }


@contextlib.contextmanager
def own_generation_config(model: torch.nn.Module, settings: dict[str, Any]) -> Iterator[None]:
    """Generate under a GenerationConfig made of `settings` alone: the checkpoint's generation_config
    (and any custom entry in it) is set aside for the call and put back after."""
    from transformers import GenerationConfig

    core = unwrap(model)
    saved = getattr(core, "generation_config", None)
    core.generation_config = GenerationConfig(**settings)
    try:
        yield
    finally:
        core.generation_config = saved


@register_engine("hf")
class HFEngine:
    """All prompts x G completions in one batched `generate` call on the synced model."""

    name = "hf"

    def __init__(self, policy: Policy, options: EngineOptions | None = None):
        self.policy = policy
        self.model: torch.nn.Module = policy.model
        self.eos_ids, self.pad_id = stop_ids(policy)

    def sync_weights(self, model: torch.nn.Module) -> None:
        self.model = model  # the same module: nothing to copy

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]  # drop the reference; the trainer owns the module

    def generate(self, prompts: PromptBatch, num_generations: int, params: SamplingParams) -> Rollout:
        sampling = generation_kwargs(params, self.eos_ids, self.pad_id)
        model = self.model
        was_training = model.training
        model.eval()
        with own_generation_config(model, sampling):
            ids = self.policy.generate(model, prompts, num_generations, **sampling)  # [B*G, C]
        model.train(was_training)
        ids, mask, truncated = pad_after_eos(ids, self.eos_ids, self.pad_id)
        texts = self.policy.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return Rollout(ids, mask, texts, truncated)
