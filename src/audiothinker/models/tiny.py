"""Tiny random-init policies with a tokenizer trained on the spot: for tests, the demo and CPU development.

Nothing is downloaded. The mel window is short (2 s by default) so the audio encoder is cheap.
The tags <think> </think> <answer> </answer> are single (non-special) tokens so a tiny model can
learn the formats quickly; real checkpoints split them into several tokens, which changes nothing
downstream because all parsing works on decoded text.
"""

from __future__ import annotations

import json
from pathlib import Path

from audiothinker.prompts import INSTRUCTIONS

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
                  "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>"]
# Named tokens the Qwen2.5-Omni processor reads off its tokenizer.
OMNI_NAMED_TOKENS = {
    "audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
}
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

# Words the synthetic tasks, prompts and think traces use; the byte-level BPE covers anything else.
_CORPUS_WORDS = """
system user assistant you are a helpful audio 1 2 3 4 5 6 7 8 9 0 question answer options choose following please
is there tone high low noise only beep beeps how many one two three four five six seven eight nine ten zero
are more fewer than the of and so that is i hear first second third segment loudest quietest pitch which what
same equal count counts compare louder quieter it this clip sound music speech yes no not so then
""".split()


def _corpus() -> list[str]:
    lines = list(INSTRUCTIONS.values())
    lines += [" ".join(_CORPUS_WORDS)] * 20
    lines += [f"{w} " * 3 for w in _CORPUS_WORDS]
    lines += ["The answer is A. (B) C) D: [x, y, z]. It's 3 > 2; 10% 'q' \"r\" - + = ? !"] * 5
    return lines


def train_tokenizer(vocab_size: int = 1024, named_tokens: dict[str, str] | None = None):
    """A byte-level BPE tokenizer with the Qwen special tokens, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=named_tokens or SPECIAL_TOKENS[1:],
    )
    fast.add_tokens(TAG_TOKENS)
    return fast


CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}<|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_qwen2_audio(out_dir: str | Path, *, seed: int = 0, mel_seconds: int = 2, hidden: int = 64,
                           layers: int = 2, audio_layers: int = 2, n_mels: int = 80) -> Path:
    """Write a tiny random Qwen2-Audio (model + processor) to `out_dir`; returns the path."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    out = Path(out_dir)
    tokenizer = train_tokenizer()
    feature_extractor = WhisperFeatureExtractor(
        feature_size=n_mels, sampling_rate=16000, hop_length=160, chunk_length=mel_seconds, n_fft=400
    )
    processor = Qwen2AudioProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    frames = mel_seconds * 100  # 10 ms hop
    config = Qwen2AudioConfig(
        audio_config=dict(
            model_type="qwen2_audio_encoder", num_mel_bins=n_mels, encoder_layers=audio_layers,
            encoder_attention_heads=2, encoder_ffn_dim=hidden * 2, d_model=hidden, max_source_positions=frames // 2,
        ),
        text_config=dict(
            model_type="qwen2", vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3,
            num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
            tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        ),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "audiothinker_tiny.json").write_text(json.dumps({"family": "qwen2_audio", "seed": seed}))
    return out


def build_tiny_text(out_dir: str | Path, *, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """A tiny random text-only Qwen2 causal LM with the same tokenizer (benchmarks, judge tests)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    tokenizer = train_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "audiothinker_tiny.json").write_text(json.dumps({"family": "text", "seed": seed}))
    return out


def build_tiny_qwen2_5_omni(out_dir: str | Path, *, seed: int = 0, mel_seconds: int = 2, hidden: int = 64,
                            layers: int = 2, audio_layers: int = 2, n_mels: int = 80) -> Path:
    """Write a tiny random Qwen2.5-Omni (4 heads of 16: `hidden` must stay 64) thinker with an audio-only processor to `out_dir`."""
    import torch
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration, WhisperFeatureExtractor

    from audiothinker.models.qwen2_5_omni import AudioOnlyOmniProcessor

    out = Path(out_dir)
    tokenizer = train_tokenizer(named_tokens=OMNI_NAMED_TOKENS)
    ids = {k: tokenizer.convert_tokens_to_ids(v) for k, v in OMNI_NAMED_TOKENS.items()}
    fe = WhisperFeatureExtractor(feature_size=n_mels, sampling_rate=16000, hop_length=160, chunk_length=mel_seconds, n_fft=400)
    frames = mel_seconds * 100
    config = Qwen2_5OmniThinkerConfig(
        audio_config=dict(
            num_mel_bins=n_mels, encoder_layers=audio_layers, encoder_attention_heads=2, encoder_ffn_dim=hidden * 2,
            d_model=hidden, output_dim=hidden, max_source_positions=frames // 2, n_window=50,
        ),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=32, num_heads=2, out_hidden_size=hidden, fullatt_block_indexes=[0]),
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
            rope_scaling={"type": "default", "mrope_section": [2, 3, 3]},  # sums to head_dim / 2 = 8
        ),
        audio_token_index=ids["audio_token"], image_token_index=ids["image_token"], video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"], audio_end_token_id=ids["audio_eos_token"],
        user_token_id=tokenizer.convert_tokens_to_ids("user"), vision_start_token_id=ids["vision_bos_token"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    AudioOnlyOmniProcessor(fe, tokenizer, CHAT_TEMPLATE).save_pretrained(out)
    (out / "audiothinker_tiny.json").write_text(json.dumps({"family": "qwen2_5_omni", "seed": seed}))
    return out
