"""The rollout interface: what an engine takes and returns, and the one registry engines are chosen from.

An engine is built once per process from the policy adapter (tokenizer, processor, family) and
`EngineOptions`; then, per rollout batch:

    engine.sync_weights(model)   the weights to sample with (the trainer's, after its last optimizer step)
    engine.generate(prompts, G, params) -> Rollout

`prompts` is a `PromptBatch`: the rendered chat prompts and the raw clips (waveform + rate), plus
the features the policy extracted from them. The HF engine generates from the features (they are
shared with the scorer, so they are computed once); the vLLM engine sends text + waveform and lets
vLLM's own processor extract features. Adding an engine is one new module in rollout/ with a class decorated
`@register_engine("name")` (`engine_names()` imports every module of the package).
"""

from __future__ import annotations


from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from audiothinker.models.base import Policy, PromptBatch, unwrap


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    do_sample: bool = True
    repetition_penalty: float = 1.0  # TRL's name; 1.0 = off
    min_new_tokens: int = 0  # EOS blocked before this many tokens (benchmarks: equal lengths on every engine)
    seed: int | None = None  # engines with their own sampler (vLLM) seed it per call; HF uses torch's global RNG


@dataclass
class Rollout:
    completion_ids: torch.Tensor  # [B*G, C], right-padded with pad_token_id after the first EOS
    completion_mask: torch.Tensor  # [B*G, C], 1 up to and including the first EOS
    texts: list[str]  # decoded completions, special tokens removed
    truncated: torch.Tensor  # [B*G] bool: no EOS within max_new_tokens
    logprobs: torch.Tensor | None = None  # [B*G, C] the sampler's log-prob of each sampled token (0 on padding); None: not reported


@dataclass(frozen=True)
class EngineOptions:
    """What an engine needs beyond the policy adapter (from the config, or the eval command's flags)."""

    name_or_path: str = ""  # the checkpoint the policy was loaded from (vLLM reads its config and processor)
    dtype: str = "auto"  # model.dtype
    seed: int = 0
    max_model_len: int = 4096  # prompt (audio placeholders included) + completion
    max_num_seqs: int = 64  # sequences decoded together (B*G per rollout)
    gpu_memory_utilization: float = 0.35  # colocated with training: the share vLLM takes for weights + KV cache
    enable_sleep_mode: bool = True  # CUDA only: free vLLM's memory between rollouts (TRL colocate mode)
    cpu_kv_cache_bytes: int = 512 << 20  # CPU backend: KV cache size (gpu_memory_utilization there means RAM share)


class RolloutEngine(Protocol):
    """Samples G completions per prompt from the weights last given to `sync_weights`."""

    name: str

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Use `model`'s current weights for the next `generate` (full weights: called under the ZeRO-3/FSDP gather)."""
        ...

    def generate(self, prompts: PromptBatch, num_generations: int, params: SamplingParams) -> Rollout:
        """G completions per prompt, rows [i*G : (i+1)*G] for prompt i."""
        ...

    def close(self) -> None:
        """Release the engine's memory (a no-op where it holds none of its own)."""
        ...


EngineFactory = Callable[[Policy, "EngineOptions | None"], RolloutEngine]
ENGINES: dict[str, EngineFactory] = {}


def register_engine(name: str) -> Callable[[EngineFactory], EngineFactory]:
    """Class decorator: make an engine selectable as `rollout.engine: <name>` and `eval --engine <name>`."""

    def add(factory: EngineFactory) -> EngineFactory:
        if name in ENGINES and ENGINES[name] is not factory:
            raise ValueError(f"rollout engine {name!r} is registered twice")
        ENGINES[name] = factory
        return factory

    return add


def engine_names() -> list[str]:
    from audiothinker.plugins import import_submodules

    import_submodules("audiothinker.rollout")  # every engine module registers itself (vllm is imported only when built)
    return sorted(ENGINES)


def build_engine(name: str, policy: Policy, options: EngineOptions | None = None) -> RolloutEngine:
    if name not in engine_names():
        raise ValueError(f"unknown rollout engine {name!r}; valid: {engine_names()}")
    return ENGINES[name](policy, options)  # None: the engine's defaults, read off the policy


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


def stop_ids(policy: Policy) -> tuple[list[int], int]:
    """(EOS ids, pad id) of a policy: the generation config's EOS list, else the tokenizer's."""
    tok = policy.tokenizer
    generation_config = getattr(unwrap(policy.model), "generation_config", None)  # transformers' object, maybe absent
    eos = generation_config.eos_token_id if generation_config is not None else None
    eos_ids = eos if isinstance(eos, list) else [eos if eos is not None else tok.eos_token_id]
    eos_ids = [e for e in eos_ids if e is not None]
    return eos_ids, tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
