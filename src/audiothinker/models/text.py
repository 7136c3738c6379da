"""Text-only causal LM adapter (any AutoModelForCausalLM): for benchmarks against text trainers and debugging.

The audio item of a message is dropped; the question text is all the model sees.
"""

from __future__ import annotations

from typing import Any

import torch

from audiothinker.algos.logprobs import selective_log_softmax
from audiothinker.models.base import PromptBatch, left_pad_position_ids


def _text_only(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        content = m["content"]
        if not isinstance(content, str):
            content = "".join(c.get("text", "") for c in content if c.get("type") == "text")
        out.append({"role": m["role"], "content": content})
    return out


class TextPolicy:
    family = "text"

    def __init__(self, model: torch.nn.Module, tokenizer: Any):
        self.model = model
        self.processor = tokenizer
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.sampling_rate = 16000
        self.max_audio_seconds = float("inf")

    def build_prompts(self, messages: list[list[dict]], audios: list[Any]) -> PromptBatch:
        texts = [self.tokenizer.apply_chat_template(_text_only(m), add_generation_prompt=True, tokenize=False) for m in messages]
        enc = self.tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
        return PromptBatch(enc["input_ids"], enc["attention_mask"], {}, texts)

    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, **sampling: Any) -> torch.Tensor:
        core = model.get_base_model() if hasattr(model, "get_base_model") else model
        with torch.no_grad():
            out = core.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                num_return_sequences=num_generations, **sampling,
            )
        return out[:, batch.input_ids.size(1) :]  # [B*G, C]

    def token_logprobs(
        self, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
        completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        ids = torch.cat([batch.input_ids.repeat_interleave(num_generations, 0), completion_ids], dim=1)  # [N, P+C]
        mask = torch.cat([batch.attention_mask.repeat_interleave(num_generations, 0), completion_mask], dim=1)
        C = completion_ids.size(1)
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=left_pad_position_ids(mask),
            use_cache=False, logits_to_keep=C + 1,
        ).logits[:, :-1].float() / temperature  # [N, C, V]
        return selective_log_softmax(logits, completion_ids)  # [N, C]
