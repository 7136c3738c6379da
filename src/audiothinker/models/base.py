"""The policy interface: one adapter per model family turns records into model inputs and scores tokens.

Every scoring path (generation, old/reference log-probs, loss) goes through `Policy`, so the audio
features reach every forward by construction.

The G completions of a prompt share it, so the adapters whose language model is a plain decoder
stack + LM head (text, Qwen2-Audio) run each prompt once: `prompt_cache` computes its KV cache on
the B prompt rows and repeats it G times, in generation and in every scoring pass
(`completion_logprobs`). Tokens through the decoder per scoring pass: B*(P-1) + B*G*C instead of
B*G*(P+C).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from audiothinker.algos.logprobs import selective_log_softmax


@dataclass
class PromptBatch:
    """Prompts of B records, left-padded, with their audio features."""

    input_ids: torch.Tensor  # [B, P]
    attention_mask: torch.Tensor  # [B, P]
    audio: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. input_features [B, M, F], feature_attention_mask [B, F]
    texts: list[str] = field(default_factory=list)  # rendered prompts (for logs; the vLLM engine's text prompts)
    # The raw clips the features came from (mono float32 at `sampling_rate`; None for a text-only
    # prompt): engines that run their own feature extraction (vLLM) take these, not the features.
    waveforms: list[Any] = field(default_factory=list)
    sampling_rate: int = 0

    def to(self, device: torch.device | str) -> "PromptBatch":
        return PromptBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            {k: v.to(device) for k, v in self.audio.items()},
            self.texts,
            self.waveforms,
            self.sampling_rate,
        )

    def __len__(self) -> int:
        return self.input_ids.size(0)


class Policy(Protocol):
    """What the trainer, rollout engines and evaluator need from a model family.

    Every attribute is set when the adapter is built (`load_policy`, or the family's `load`).
    """

    family: str  # the registered family name (models/registry.py), saved beside a checkpoint
    name_or_path: str  # the checkpoint loaded (rollout engines such as vLLM read its files)
    model: torch.nn.Module  # the trainable module (maybe peft-wrapped; see `unwrap`)
    processor: Any  # saved with the weights (`save_pretrained`); the tokenizer itself for the text adapter
    tokenizer: Any
    sampling_rate: int  # audio rate the processor expects
    max_audio_seconds: float  # longest clip the audio encoder accepts (inf: no audio)
    uses_audio: bool  # False: prompt_batch loads no audio (the text-only adapter)
    audio_token_ids: list[int]  # audio/vision placeholder ids: never generated, not counted as prompt text
    audio_tower: torch.nn.Module | None  # the audio encoder (frozen by model.freeze_audio_tower); None: no audio

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


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (the one place that probes for peft)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def audio_tower_of(model: torch.nn.Module) -> torch.nn.Module | None:
    """The audio encoder of a Qwen2-Audio or Omni-thinker model: `model.model.audio_tower` (transformers' layout
    since v5), else `model.audio_tower`; None where it has neither."""
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "audio_tower"):
        return inner.audio_tower
    return getattr(model, "audio_tower", None)


def is_peft(model: torch.nn.Module) -> bool:
    """Whether `model` carries peft (LoRA) adapters."""
    return hasattr(model, "peft_config")


def left_pad_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that skip left padding, as transformers' generate computes them."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.clamp(min=0)


def checkpointing(module: torch.nn.Module) -> bool:
    """Whether a layer of `module` recomputes its forward in backward (gradient checkpointing, training mode).

    transformers keeps no KV cache there (the recompute in backward would append to it a second
    time: the decoder turns use_cache off and its layers drop a cache passed in), so no prompt
    cache can be shared there and scoring runs every completion over [prompt + completion].
    """
    return any(getattr(m, "gradient_checkpointing", False) is True and m.training for m in module.modules())


def prompt_cache(backbone: torch.nn.Module, embeds: torch.Tensor, attention_mask: torch.Tensor, repeats: int):
    """KV cache of prompts computed on their B rows, then repeated for the G completions of each.

    backbone: a decoder stack taking `inputs_embeds` (e.g. Qwen2Model); embeds [B, P', H], mask [B, P'].
    Returns a cache of batch B*G (row i*G+g is prompt i). The repeat is out of place, so with
    gradients on they flow back through it into the one prompt pass. None for empty prompts and
    under gradient checkpointing in training mode, where transformers keeps no cache (see `checkpointing`).
    """
    if embeds.size(1) == 0 or checkpointing(backbone):
        return None
    cache = backbone(
        inputs_embeds=embeds, attention_mask=attention_mask, position_ids=left_pad_position_ids(attention_mask),
        use_cache=True,
    ).past_key_values
    cache.batch_repeat_interleave(repeats)  # [B*G, heads, P', d] per layer
    return cache


def full_sequence_logprobs(
    backbone: torch.nn.Module, lm_head: torch.nn.Module, prompt_embeds: torch.Tensor, prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
) -> torch.Tensor:
    """log pi(completion token | prompt, previous tokens) -> [B*G, C]: every completion run over [prompt + completion].

    The reference for `shared_prefix_logprobs`, and the path under gradient checkpointing.
    prompt_embeds [B, P, H] (audio merged in), prompt_mask [B, P] left-padded, completion_ids/mask [B*G, C].
    """
    G, P = num_generations, prompt_mask.size(1)
    comp = backbone.get_input_embeddings()(completion_ids)  # [N, C, H]
    embeds = torch.cat([prompt_embeds.repeat_interleave(G, 0), comp], dim=1)  # [N, P+C, H]
    mask = torch.cat([prompt_mask.repeat_interleave(G, 0), completion_mask], dim=1)  # [N, P+C]
    hidden = backbone(
        inputs_embeds=embeds, attention_mask=mask, position_ids=left_pad_position_ids(mask), use_cache=False
    ).last_hidden_state  # [N, P+C, H]
    logits = lm_head(hidden[:, P - 1 : -1]).float() / temperature  # [N, C, V]: the positions predicting completions
    return selective_log_softmax(logits, completion_ids)  # [N, C]


def shared_prefix_logprobs(
    backbone: torch.nn.Module, lm_head: torch.nn.Module, prompt_embeds: torch.Tensor, prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
) -> torch.Tensor:
    """Same result as `full_sequence_logprobs`, each prompt run once.

    The prompt but its last token goes through the decoder on B rows (`prompt_cache`); the last
    prompt token and the completion (but its last token, which predicts nothing scored) run on
    B*G rows against the repeated cache, so the C hidden states out are exactly the C positions
    that predict completion tokens.
    """
    G, P = num_generations, prompt_mask.size(1)
    cache = prompt_cache(backbone, prompt_embeds[:, :-1], prompt_mask[:, :-1], G)  # P-1 positions, B*G rows
    if cache is None:
        raise ValueError("no prompt cache (one-token prompts, or gradient checkpointing): use completion_logprobs")
    tail = torch.cat(
        [prompt_embeds[:, -1:].repeat_interleave(G, 0), backbone.get_input_embeddings()(completion_ids[:, :-1])], dim=1
    )  # [N, C, H]
    mask = torch.cat([prompt_mask.repeat_interleave(G, 0), completion_mask], dim=1)  # [N, P+C]
    hidden = backbone(
        inputs_embeds=tail, attention_mask=mask[:, :-1], position_ids=left_pad_position_ids(mask)[:, P - 1 : -1],
        past_key_values=cache, use_cache=True,
    ).last_hidden_state  # [N, C, H]
    logits = lm_head(hidden).float() / temperature  # [N, C, V]
    return selective_log_softmax(logits, completion_ids)  # [N, C]


def completion_logprobs(
    backbone: torch.nn.Module, lm_head: torch.nn.Module, prompt_embeds: torch.Tensor, prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
) -> torch.Tensor:
    """log pi(completion token | prompt, previous tokens) -> [B*G, C], each prompt run once where possible.

    Falls back to the full-sequence path under gradient checkpointing (see `checkpointing`) and
    for one-token prompts.
    """
    score = shared_prefix_logprobs
    if checkpointing(backbone) or prompt_mask.size(1) < 2:
        score = full_sequence_logprobs
    return score(backbone, lm_head, prompt_embeds, prompt_mask, completion_ids, completion_mask, num_generations, temperature)


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
