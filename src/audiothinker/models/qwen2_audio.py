"""Qwen2-Audio adapter (`Qwen2AudioForConditionalGeneration`).

Audio is encoded once per prompt and merged into its token embeddings (`prompt_embeds`); the
language model then runs each prompt once and shares its KV cache with the G completions, in
generation and in every scoring forward (models/base.py: `prompt_cache`, `completion_logprobs`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from audiothinker.models import tiny
from audiothinker.models.base import PromptBatch, completion_logprobs, prompt_cache, unwrap
from audiothinker.models.registry import register_family


@register_family(
    "qwen2_audio", model_types=("qwen2_audio",), cache_encoder=True,
    # vLLM keeps the original checkpoint layout
    vllm_weight_prefixes=(
        ("model.audio_tower.", "audio_tower."), ("model.multi_modal_projector.", "multi_modal_projector."),
        ("model.language_model.", "language_model.model."), ("lm_head.", "language_model.lm_head."),
    ),
    vllm_text_config=("text_config",),
    tiny={"qwen2_audio": tiny.build_tiny_qwen2_audio,
          "qwen2_audio_short": functools.partial(tiny.build_tiny_qwen2_audio, mel_seconds=2)},
)
class Qwen2AudioPolicy:
    uses_audio = True

    def __init__(self, model: torch.nn.Module, processor: Any, name_or_path: str = ""):
        self.model = model
        self.name_or_path = name_or_path
        self.processor = processor
        self.audio_tower = unwrap(model).model.audio_tower
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        fe = processor.feature_extractor
        self.sampling_rate = int(fe.sampling_rate)
        self.max_audio_seconds = float(fe.chunk_length)
        self.audio_token_ids = [
            i for i in self.tokenizer.convert_tokens_to_ids(["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"])
            if i is not None and i != self.tokenizer.unk_token_id
        ]

    @classmethod
    def load(cls, path: str, model_kwargs: dict[str, Any]) -> "Qwen2AudioPolicy":
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        model = Qwen2AudioForConditionalGeneration.from_pretrained(path, **model_kwargs)
        processor = AutoProcessor.from_pretrained(path, trust_remote_code=model_kwargs.get("trust_remote_code", False))
        return cls(model, processor, path)

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

        core = unwrap(model).model  # Qwen2AudioModel
        embeds = core.get_input_embeddings()(batch.input_ids)  # [B, P, H]
        feats = batch.audio["input_features"]  # [B, M, F]
        feat_mask = batch.audio["feature_attention_mask"]  # [B, F]
        tower = core.audio_tower
        feat_lens, out_lens = tower._get_feat_extract_output_lengths(feat_mask.sum(-1))
        max_len = (feats.shape[-1] - 2) // 2 + 1
        mask_2d = (torch.arange(max_len, device=feats.device)[None, :] < feat_lens[:, None]).long()  # [B, F/2]

        def attn(rows: list[int] | None = None) -> Any:  # the encoder's mask for these rows (all: None)
            m = mask_2d if rows is None else mask_2d[rows]
            return create_bidirectional_mask(
                config=tower.config, inputs_embeds=torch.zeros(len(m), max_len, 1, dtype=embeds.dtype, device=embeds.device),
                attention_mask=m,
            )

        # A cached frozen encoder (`feature_cache`) builds the mask only for the clips it has not seen.
        mask = attn if getattr(tower, "lazy_mask", False) else attn()
        audio = core.multi_modal_projector(tower(feats, attention_mask=mask).last_hidden_state)  # [B, A, H]
        valid = torch.arange(audio.shape[1], device=audio.device)[None, :] < out_lens[:, None]  # [B, A]
        placeholder = (batch.input_ids == core.config.audio_token_id).unsqueeze(-1)  # [B, P, 1]
        if int(placeholder.sum()) != int(valid.sum()):
            raise ValueError(f"{int(placeholder.sum())} audio placeholder tokens but {int(valid.sum())} audio frames")
        return embeds.masked_scatter(placeholder, audio[valid].to(embeds.dtype))

    def decoder(self, model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(language model taking inputs_embeds, LM head): the forward of Qwen2AudioForConditionalGeneration after the merge."""
        core = unwrap(model)
        return core.model.language_model, core.lm_head

    # ---- generation ---------------------------------------------------------------------------
    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, **sampling: Any) -> torch.Tensor:
        G = num_generations
        with torch.no_grad():
            embeds = self.prompt_embeds(model, batch)  # [B, P, H]
            # The prompts but their last (text) token prefilled on B rows; generate runs the last
            # token against the repeated cache and decodes the B*G rows from there.
            cache = prompt_cache(self.decoder(model)[0], embeds[:, :-1], batch.attention_mask[:, :-1], G)
            # input_ids ride along so that a repetition penalty counts the prompt's tokens too, as
            # with any text model (TRL, vLLM); the model reads the embeddings.
            out = unwrap(model).generate(
                input_ids=batch.input_ids.repeat_interleave(G, 0), inputs_embeds=embeds.repeat_interleave(G, 0),
                attention_mask=batch.attention_mask.repeat_interleave(G, 0),
                past_key_values=cache, use_cache=True, suppress_tokens=self.audio_token_ids, **sampling,
            )
        return out[:, batch.input_ids.size(1) :]  # [B*G, C]: the prompt ids come back in front

    # ---- scoring ------------------------------------------------------------------------------
    def token_logprobs(
        self, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
        completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        backbone, head = self.decoder(model)
        return completion_logprobs(
            backbone, head, self.prompt_embeds(model, batch), batch.attention_mask,
            completion_ids, completion_mask, num_generations, temperature,
        )  # [B*G, C]
