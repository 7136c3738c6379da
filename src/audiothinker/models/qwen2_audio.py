"""Qwen2-Audio adapter (`Qwen2AudioForConditionalGeneration`).

Audio is encoded once per prompt and its embeddings repeated for the G completions, in
generation and in every scoring forward (the encoder is the costly part of a short prompt).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from audiothinker.algos.logprobs import selective_log_softmax
from audiothinker.models.base import PromptBatch, left_pad_position_ids


def _core(model: torch.nn.Module) -> torch.nn.Module:
    """The Qwen2AudioForConditionalGeneration inside a peft wrapper (DDP/FSDP wrap `ScoringModule`, not this)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class Qwen2AudioPolicy:
    family = "qwen2_audio"

    def __init__(self, model: torch.nn.Module, processor: Any):
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        fe = processor.feature_extractor
        self.sampling_rate = int(fe.sampling_rate)
        self.max_audio_seconds = float(fe.chunk_length)
        self.audio_token_ids = [
            i for i in self.tokenizer.convert_tokens_to_ids(["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"])
            if i is not None and i != self.tokenizer.unk_token_id
        ]

    # ---- inputs -------------------------------------------------------------------------------
    def build_prompts(self, messages: list[list[dict]], audios: list[np.ndarray]) -> PromptBatch:
        texts = [self.processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]
        enc = self.processor(
            text=texts, audio=audios, sampling_rate=self.sampling_rate, padding=True, return_tensors="pt"
        )
        audio = {"input_features": enc["input_features"], "feature_attention_mask": enc["feature_attention_mask"]}
        return PromptBatch(enc["input_ids"], enc["attention_mask"], audio, texts)

    def prompt_embeds(self, model: torch.nn.Module, batch: PromptBatch) -> torch.Tensor:
        """Token embeddings of the prompts with the audio placeholders replaced by audio features -> [B, P, H]."""
        from transformers.masking_utils import create_bidirectional_mask

        core = _core(model).model  # Qwen2AudioModel
        embeds = core.get_input_embeddings()(batch.input_ids)  # [B, P, H]
        feats = batch.audio["input_features"]  # [B, M, F]
        feat_mask = batch.audio["feature_attention_mask"]  # [B, F]
        tower = core.audio_tower
        feat_lens, out_lens = tower._get_feat_extract_output_lengths(feat_mask.sum(-1))
        max_len = (feats.shape[-1] - 2) // 2 + 1
        mask_2d = (torch.arange(max_len, device=feats.device)[None, :] < feat_lens[:, None]).long()  # [B, F/2]
        attn = create_bidirectional_mask(
            config=tower.config, inputs_embeds=torch.zeros(len(feats), max_len, 1, dtype=embeds.dtype, device=embeds.device),
            attention_mask=mask_2d,
        )
        audio = core.multi_modal_projector(tower(feats, attention_mask=attn).last_hidden_state)  # [B, A, H]
        valid = torch.arange(audio.shape[1], device=audio.device)[None, :] < out_lens[:, None]  # [B, A]
        placeholder = (batch.input_ids == core.config.audio_token_id).unsqueeze(-1)  # [B, P, 1]
        if int(placeholder.sum()) != int(valid.sum()):
            raise ValueError(f"{int(placeholder.sum())} audio placeholder tokens but {int(valid.sum())} audio frames")
        return embeds.masked_scatter(placeholder, audio[valid].to(embeds.dtype))

    # ---- generation ---------------------------------------------------------------------------
    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, **sampling: Any) -> torch.Tensor:
        core = _core(model)
        with torch.no_grad():
            embeds = self.prompt_embeds(model, batch)
            out = core.generate(
                inputs_embeds=embeds, attention_mask=batch.attention_mask, num_return_sequences=num_generations,
                suppress_tokens=self.audio_token_ids, **sampling,
            )
        return out  # [B*G, C]: with inputs_embeds only, generate returns the new tokens alone

    # ---- scoring ------------------------------------------------------------------------------
    def token_logprobs(
        self, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
        completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        core = _core(model)
        prompt = self.prompt_embeds(model, batch).repeat_interleave(num_generations, 0)  # [N, P, H]
        comp = core.model.get_input_embeddings()(completion_ids)  # [N, C, H]
        embeds = torch.cat([prompt, comp], dim=1)  # [N, P+C, H]
        mask = torch.cat([batch.attention_mask.repeat_interleave(num_generations, 0), completion_mask], dim=1)
        hidden = core.model.language_model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=left_pad_position_ids(mask), use_cache=False
        ).last_hidden_state  # [N, P+C, H]
        P = batch.input_ids.size(1)
        logits = core.lm_head(hidden[:, P - 1 : -1]).float() / temperature  # [N, C, V]: only completion positions
        return selective_log_softmax(logits, completion_ids)  # [N, C]
