"""The transformers `generate` engine: samples from the training model itself (no copy, no sync cost).

The adapter's `generate` encodes each prompt once and shares its KV cache with the G completions
(models/base.py: `prompt_cache`), so this engine stays as fast as before the interface change.
"""

from __future__ import annotations

from typing import Any

import torch

from audiothinker.models.base import PromptBatch
from audiothinker.rollout.base import EngineOptions, Rollout, SamplingParams, pad_after_eos, register_engine, stop_ids


@register_engine("hf")
class HFEngine:
    """All prompts x G completions in one batched `generate` call on the synced model."""

    name = "hf"

    def __init__(self, policy: Any, options: EngineOptions | None = None):
        self.policy = policy
        self.model: torch.nn.Module = policy.model
        self.eos_ids, self.pad_id = stop_ids(policy)

    def sync_weights(self, model: torch.nn.Module) -> None:
        self.model = model  # the same module: nothing to copy

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]  # drop the reference; the trainer owns the module

    def generate(self, prompts: PromptBatch, num_generations: int, params: SamplingParams) -> Rollout:
        sampling: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "do_sample": params.do_sample,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
        }
        if params.min_new_tokens:
            sampling["min_new_tokens"] = params.min_new_tokens
        if params.repetition_penalty != 1.0:
            sampling["repetition_penalty"] = params.repetition_penalty
        if params.do_sample:
            sampling.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        model = self.model
        was_training = model.training
        model.eval()
        ids = self.policy.generate(model, prompts, num_generations, **sampling)  # [B*G, C]
        model.train(was_training)
        ids, mask, truncated = pad_after_eos(ids, self.eos_ids, self.pad_id)
        texts = self.policy.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return Rollout(ids, mask, texts, truncated)
