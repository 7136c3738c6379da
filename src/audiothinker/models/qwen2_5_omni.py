"""Qwen2.5-Omni adapter: the thinker (`Qwen2_5OmniThinkerForConditionalGeneration`) alone.

The thinker computes its mRoPE position ids from input_ids and the audio lengths. Scoring passes
encode each prompt's audio once and hand the thinker's own forward the merged embeddings with
input_ids and the feature mask (for the positions); generation passes the features repeated per
completion to `generate`.

Processor: the official Qwen2.5-Omni processor needs torchvision for its video part. When it
cannot be built, an audio-only processor made of the checkpoint's own feature extractor and
tokenizer stands in; it expands the audio placeholder exactly as the official one does.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from audiothinker.algos.logprobs import selective_log_softmax
from audiothinker.models import tiny
from audiothinker.models.base import PromptBatch, audio_tower_of, unwrap
from audiothinker.models.registry import register_family


def _audio_tokens(n_frames: np.ndarray) -> np.ndarray:
    """Audio tokens per clip for n mel frames (conv stride 2, then pooling 2), as the official processor."""
    return ((n_frames - 1) // 2 + 1 - 2) // 2 + 1


class AudioOnlyOmniProcessor:
    """The audio half of Qwen2_5OmniProcessor: chat template, mel features, placeholder expansion."""

    def __init__(self, feature_extractor: Any, tokenizer: Any, chat_template: str | None):
        self.feature_extractor, self.tokenizer = feature_extractor, tokenizer
        self.chat_template = chat_template or tokenizer.chat_template
        self.audio_token = getattr(tokenizer, "audio_token", None) or "<|AUDIO|>"

    def apply_chat_template(self, messages, add_generation_prompt=True, tokenize=False):
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.chat_template, add_generation_prompt=add_generation_prompt, tokenize=tokenize
        )

    def __call__(self, text: list[str], audio: list[np.ndarray], sampling_rate: int, **_: Any) -> dict:
        feats = self.feature_extractor(
            audio, sampling_rate=sampling_rate, padding="max_length", max_length=self.padded_samples(audio),
            truncation=True, return_attention_mask=True, return_tensors="pt",
        )
        n_tokens = _audio_tokens(feats["attention_mask"].sum(-1).numpy())
        expanded = []
        for t, n in zip(text, n_tokens):
            if t.count(self.audio_token) != 1:
                raise ValueError(f"expected one {self.audio_token} per prompt, found {t.count(self.audio_token)}")
            expanded.append(t.replace(self.audio_token, self.audio_token * int(n)))
        enc = self.tokenizer(expanded, padding=True, return_tensors="pt", add_special_tokens=False)
        return {**enc, "input_features": feats["input_features"], "feature_attention_mask": feats["attention_mask"]}

    def padded_samples(self, audio: list[np.ndarray]) -> int:
        """Samples each clip is zero-padded to before the mel transform.

        The official processor pads every clip to the whole window (300 s: 30000 frames of which the
        thinker reads only those under feature_attention_mask). Padding to the longest clip plus one
        FFT window gives the same valid frames, bit for bit (the STFT of a frame sees the same zeros
        after a clip's end; the log-mel floor is set by the clip's own maximum), at a fraction of the
        cost: ~50x less for clips of a few seconds.
        """
        fe = self.feature_extractor
        longest = max(len(a) for a in audio) + fe.n_fft
        return min(int(fe.n_samples), -(-longest // fe.hop_length) * fe.hop_length)

    def save_pretrained(self, out) -> None:
        self.feature_extractor.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        if self.chat_template:
            (__import__("pathlib").Path(out) / "chat_template.jinja").write_text(self.chat_template)


def _vllm_config(tied: bool) -> Any:
    """vLLM serves the thinker through its full-Omni classes: a full Omni config (rollout/vllm_omni.py)."""
    from audiothinker.rollout.vllm_omni import OmniConfigOverride

    return OmniConfigOverride(tied)


@register_family(
    "qwen2_5_omni", model_types=("qwen2_5_omni", "qwen2_5_omni_thinker"),
    # vLLM serves the full Omni architecture and reads the published checkpoint's names (`thinker.audio_tower.*`,
    # `thinker.visual.*`, `thinker.model.*`, `thinker.lm_head.*`). transformers >= 5.2x nests the thinker's parts
    # under `model.` (`model.language_model.*`); earlier 5.x (vLLM's pin) keeps the checkpoint's layout (last rule).
    vllm_weight_prefixes=(("model.audio_tower.", "thinker.audio_tower."), ("model.visual.", "thinker.visual."),
                          ("model.language_model.", "thinker.model."), ("", "thinker.")),
    vllm_hf_overrides=_vllm_config,
    tiny={"qwen2_5_omni": tiny.build_tiny_qwen2_5_omni,
          "qwen2_5_omni_short": functools.partial(tiny.build_tiny_qwen2_5_omni, mel_seconds=2)},
)
class OmniThinkerPolicy:
    uses_audio = True

    def __init__(self, model: torch.nn.Module, processor: Any, name_or_path: str = ""):
        self.model, self.processor, self.name_or_path = model, processor, name_or_path
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        fe = processor.feature_extractor
        self.sampling_rate = int(fe.sampling_rate)
        self.max_audio_seconds = float(fe.chunk_length)
        self.audio_tower = audio_tower_of(model)
        names = ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>"]
        ids = self.tokenizer.convert_tokens_to_ids(names)
        self.audio_token_ids = [i for i in ids if i is not None and i != self.tokenizer.unk_token_id]

    @classmethod
    def load(cls, path: str, model_kwargs: dict[str, Any]) -> "OmniThinkerPolicy":
        """The thinker's weights, with the official processor or the audio-only stand-in (module docstring)."""
        from transformers import AutoFeatureExtractor, AutoTokenizer, Qwen2_5OmniThinkerForConditionalGeneration

        trust_remote_code = model_kwargs.get("trust_remote_code", False)
        model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(path, **model_kwargs)
        processor: Any = None
        try:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (ImportError, AttributeError, ValueError, OSError, TypeError):
            pass  # torchvision missing (video processor) or an audio-only checkpoint
        if not hasattr(processor, "feature_extractor"):  # a third-party processor without its audio half
            from pathlib import Path

            tpl = Path(path) / "chat_template.jinja"
            processor = AudioOnlyOmniProcessor(
                AutoFeatureExtractor.from_pretrained(path), AutoTokenizer.from_pretrained(path),
                tpl.read_text() if tpl.exists() else None,
            )
        return cls(model, processor, path)

    def build_prompts(self, messages: list[list[dict]], audios: list[np.ndarray]) -> PromptBatch:
        texts = [self.processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]
        enc = self.processor(text=texts, audio=audios, sampling_rate=self.sampling_rate, padding=True, return_tensors="pt")
        audio = {"input_features": enc["input_features"], "feature_attention_mask": enc["feature_attention_mask"]}
        return PromptBatch(enc["input_ids"], enc["attention_mask"], audio, texts)

    @staticmethod
    def _repeat(batch: PromptBatch, n: int) -> dict[str, torch.Tensor]:
        return {k: v.repeat_interleave(n, 0) for k, v in batch.audio.items()}

    def generate(self, model: torch.nn.Module, batch: PromptBatch, num_generations: int, **sampling: Any) -> torch.Tensor:
        core = unwrap(model)
        with torch.no_grad():
            out = core.generate(
                input_ids=batch.input_ids, attention_mask=batch.attention_mask, **batch.audio,
                num_return_sequences=num_generations, suppress_tokens=self.audio_token_ids, **sampling,
            )
        return out[:, batch.input_ids.size(1) :]  # [B*G, C]

    def prompt_embeds(self, model: torch.nn.Module, batch: PromptBatch) -> torch.Tensor:
        """Prompt token embeddings with the audio features in place of the placeholders -> [B, P, H]."""
        top = unwrap(model)
        # transformers >= 5.2x moved these into `Qwen2_5OmniThinkerModel` (top.model); earlier 5.x (vLLM's pin)
        # keep them on the thinker itself, whose `.model` is the text model.
        core = top.model if hasattr(top.model, "get_placeholder_mask") else top
        embeds = top.get_input_embeddings()(batch.input_ids)  # [B, P, H]
        audio = core.get_audio_features(
            batch.audio["input_features"], batch.audio["feature_attention_mask"], return_dict=True
        ).last_hidden_state.to(embeds.dtype)  # [sum of audio tokens, H]
        _, _, audio_mask = core.get_placeholder_mask(batch.input_ids, inputs_embeds=embeds)
        return embeds.masked_scatter(audio_mask, audio)

    def token_logprobs(
        self, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
        completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        """Audio encoded once per prompt; the thinker's own forward computes its mRoPE positions from
        input_ids and the audio lengths (feature_attention_mask), the encoder itself is not rerun."""
        G = num_generations
        core = unwrap(model)
        prompt = self.prompt_embeds(model, batch).repeat_interleave(G, 0)  # [N, P, H]
        comp = core.get_input_embeddings()(completion_ids)  # [N, C, H]
        ids = torch.cat([batch.input_ids.repeat_interleave(G, 0), completion_ids], dim=1)  # [N, P+C]
        mask = torch.cat([batch.attention_mask.repeat_interleave(G, 0), completion_mask], dim=1)
        logits = model(
            input_ids=ids, inputs_embeds=torch.cat([prompt, comp], dim=1), attention_mask=mask,
            feature_attention_mask=batch.audio["feature_attention_mask"].repeat_interleave(G, 0), use_cache=False,
        ).logits  # [N, P+C, V]
        C = completion_ids.size(1)
        return selective_log_softmax(logits[:, -C - 1 : -1].float() / temperature, completion_ids)  # [N, C]

    def full_token_logprobs(
        self, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
        completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
    ) -> torch.Tensor:
        """Reference path: the audio features repeated per completion through the model's own forward."""
        ids = torch.cat([batch.input_ids.repeat_interleave(num_generations, 0), completion_ids], dim=1)  # [N, P+C]
        mask = torch.cat([batch.attention_mask.repeat_interleave(num_generations, 0), completion_mask], dim=1)
        logits = model(
            input_ids=ids, attention_mask=mask, **self._repeat(batch, num_generations), use_cache=False
        ).logits  # [N, P+C, V]
        C = completion_ids.size(1)
        return selective_log_softmax(logits[:, -C - 1 : -1].float() / temperature, completion_ids)  # [N, C]
