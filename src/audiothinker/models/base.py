"""The policy interface: one adapter per model family turns records into model inputs and scores tokens.

Every scoring path (generation, old/reference log-probs, loss) goes through `Policy`, so the audio
features reach every forward by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


@dataclass
class PromptBatch:
    """Prompts of B records, left-padded, with their audio features."""

    input_ids: torch.Tensor  # [B, P]
    attention_mask: torch.Tensor  # [B, P]
    audio: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. input_features [B, M, F], feature_attention_mask [B, F]
    texts: list[str] = field(default_factory=list)  # rendered prompts (for logs)

    def to(self, device: torch.device | str) -> "PromptBatch":
        return PromptBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            {k: v.to(device) for k, v in self.audio.items()},
            self.texts,
        )

    def __len__(self) -> int:
        return self.input_ids.size(0)


class Policy(Protocol):
    """What the trainer, rollout engines and evaluator need from a model family."""

    model: torch.nn.Module  # the trainable module (maybe peft- or accelerate-wrapped)
    tokenizer: Any
    sampling_rate: int  # audio rate the processor expects
    max_audio_seconds: float  # longest clip the audio encoder accepts

    def build_prompts(self, messages: list[list[dict]], audios: list[Any]) -> PromptBatch:
        """Render chat messages with the processor's template and extract audio features."""
        ...

    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, **sampling: Any) -> torch.Tensor:
        """Sample `num_generations` completions per prompt -> completion ids [B*G, C] (prompt not included)."""
        ...

    def token_logprobs(
        self, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
        completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        """log pi(completion token | prompt, audio, previous tokens) -> [B*G, C]."""
        ...


def left_pad_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as transformers' generate computes them."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


class ScoringModule(torch.nn.Module):
    """Wraps a model so that token scoring is its `forward`.

    accelerate/DDP/FSDP/DeepSpeed wrap this module, so every scoring pass (old, reference,
    loss) runs through the distributed wrapper's forward and gradients sync correctly, while
    the adapter decides how audio enters the model.
    """

    def __init__(self, model: torch.nn.Module, policy: Policy):
        super().__init__()
        self.model = model
        self._policy = [policy]  # a list: keep the policy out of the module tree

    def forward(self, batch: PromptBatch, completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                num_generations: int, temperature: float = 1.0) -> torch.Tensor:
        return self._policy[0].token_logprobs(self.model, batch, completion_ids, completion_mask, num_generations, temperature)
