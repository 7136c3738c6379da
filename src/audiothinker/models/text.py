"""Text-only causal LM adapter (any AutoModelForCausalLM): for benchmarks against text trainers and debugging.

The audio item of a message is dropped and no audio is loaded; the question text is all the model sees.
Scoring and generation run each prompt once for its G completions (models/base.py), which assumes
the model's logits are `lm_head(decoder(...))` (true of Qwen2/Llama-style models; not of ones that
rescale or soft-cap their logits in the LM forward).
"""

from __future__ import annotations

from typing import Any

import torch

from audiothinker.models import tiny
from audiothinker.models.base import PromptBatch, completion_logprobs, prompt_cache, unwrap
from audiothinker.models.registry import register_family


def _text_only(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            content = "".join(c.get("text", "") for c in content if c.get("type") == "text")
        out.append({"role": m["role"], "content": content})
    return out


@register_family("text", fallback=True, tiny={"text": tiny.build_tiny_text}, vllm_weight_prefixes=(("", ""),))
class TextPolicy:
    uses_audio = False  # prompt_batch loads no audio for it

    def __init__(self, model: torch.nn.Module, tokenizer: Any, name_or_path: str = ""):
        self.model = model
        self.name_or_path = name_or_path
        self.processor = tokenizer
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.sampling_rate = 16000
        self.max_audio_seconds = float("inf")
        self.audio_token_ids: list[int] = []
        self.audio_tower = None

    @classmethod
    def load(cls, path: str, model_kwargs: dict[str, Any]) -> "TextPolicy":
        """Any AutoModelForCausalLM checkpoint, with its tokenizer."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, **model_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=model_kwargs.get("trust_remote_code", False))
        return cls(model, tokenizer, path)

    def build_prompts(self, messages: list[list[dict]], audios: list[Any]) -> PromptBatch:
        texts = [self.tokenizer.apply_chat_template(_text_only(m), add_generation_prompt=True, tokenize=False) for m in messages]
        enc = self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        return PromptBatch(enc["input_ids"], enc["attention_mask"], {}, texts)

    def decoder(self, model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(decoder stack taking inputs_embeds, LM head) of the model."""
        core = unwrap(model)
        return core.get_decoder(), core.get_output_embeddings()

    def prompt_embeds(self, model: torch.nn.Module, batch: PromptBatch) -> torch.Tensor:
        return self.decoder(model)[0].get_input_embeddings()(batch.input_ids)  # [B, P, H]

    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, **sampling: Any) -> torch.Tensor:
        G, P = num_generations, batch.input_ids.size(1)
        with torch.no_grad():
            # The prompts but their last token prefilled on B rows; generate runs the last token
            # against the repeated cache and decodes the B*G rows from there.
            backbone = self.decoder(model)[0]
            cache = prompt_cache(backbone, self.prompt_embeds(model, batch)[:, :-1], batch.attention_mask[:, :-1], G)
            out = unwrap(model).generate(
                input_ids=batch.input_ids.repeat_interleave(G, 0), attention_mask=batch.attention_mask.repeat_interleave(G, 0),
                past_key_values=cache, use_cache=True, **sampling,
            )
        return out[:, P:]  # [B*G, C]

    def token_logprobs(
        self, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
        completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        backbone, head = self.decoder(model)
        return completion_logprobs(
            backbone, head, self.prompt_embeds(model, batch), batch.attention_mask,
            completion_ids, completion_mask, num_generations, temperature,
        )  # [B*G, C]
