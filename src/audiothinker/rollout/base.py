"""The rollout interface and the transformers `generate` engine."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import torch

from audiothinker.models.base import PromptBatch


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    do_sample: bool = True
    repetition_penalty: float = 1.0  # TRL's name; 1.0 = off


@dataclass
class Rollout:
    completion_ids: torch.Tensor  # [B*G, C], right-padded with pad_token_id after the first EOS
    completion_mask: torch.Tensor  # [B*G, C], 1 up to and including the first EOS
    texts: list[str]  # decoded completions, special tokens removed
    truncated: torch.Tensor  # [B*G] bool: no EOS within max_new_tokens


class RolloutEngine(Protocol):
    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, params: SamplingParams) -> Rollout:
        ...


def pad_after_eos(ids: torch.Tensor, eos_ids: list[int], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mask everything after the first EOS; returns (ids, mask, truncated)."""
    is_eos = torch.zeros_like(ids, dtype=torch.bool)
    for e in eos_ids:
        is_eos |= ids == e
    C = ids.size(1)
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(ids[:, 0], C))  # [N]
    mask = (torch.arange(C, device=ids.device)[None, :] <= first[:, None]).long()  # [N, C]
    ids = ids.masked_fill(mask == 0, pad_id)
    return ids, mask, first >= C


def generation_kwargs(params: SamplingParams, eos_ids: list[int], pad_id: int) -> dict[str, Any]:
    """Every generation setting that changes what is sampled, set explicitly.

    transformers fills each setting left unset from the checkpoint's generation_config.json (a
    real one sets e.g. top_k 20, top_p 0.5, repetition_penalty 1.1) and then from its own defaults
    (top_k 50): so none is left unset. Greedy decoding (do_sample False) keeps the neutral
    temperature / top_p / top_k; the repetition penalty applies to both.
    """
    sample = params.do_sample
    return {
        "max_new_tokens": params.max_new_tokens, "min_new_tokens": 0, "do_sample": sample, "num_beams": 1,
        "temperature": params.temperature if sample else 1.0, "top_p": params.top_p if sample else 1.0,
        "top_k": params.top_k if sample else 0, "min_p": None, "top_h": None, "typical_p": 1.0, "epsilon_cutoff": 0.0,
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

    core = model.get_base_model() if hasattr(model, "get_base_model") else model
    saved = getattr(core, "generation_config", None)
    core.generation_config = GenerationConfig(**settings)
    try:
        yield
    finally:
        core.generation_config = saved


class HFEngine:
    """transformers `generate`: all prompts x G completions in one batched call."""

    def __init__(self, policy: Any):
        self.policy = policy
        tok = policy.tokenizer
        eos = policy.model.generation_config.eos_token_id if hasattr(policy.model, "generation_config") else None
        eos_ids = eos if isinstance(eos, list) else [eos if eos is not None else tok.eos_token_id]
        self.eos_ids = [e for e in eos_ids if e is not None]
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]

    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, params: SamplingParams) -> Rollout:
        sampling = generation_kwargs(params, self.eos_ids, self.pad_id)
        was_training = model.training
        model.eval()
        with own_generation_config(model, sampling):
            ids = self.policy.generate(model, batch, num_generations, **sampling)
        model.train(was_training)
        ids, mask, truncated = pad_after_eos(ids, self.eos_ids, self.pad_id)
        texts = self.policy.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return Rollout(ids, mask, texts, truncated)


def build_engine(name: str, policy: Any) -> RolloutEngine:
    if name == "hf":
        return HFEngine(policy)
    if name == "vllm":
        raise NotImplementedError(
            "rollout.engine=vllm is not available in this release; use rollout.engine=hf "
            "(the RolloutEngine protocol in audiothinker.rollout.base is where a vLLM engine plugs in)"
        )
    raise ValueError(f"unknown rollout engine {name!r}; valid: ['hf', 'vllm']")
