"""Tiny random-init policies laid out like the published checkpoints: for tests, the demo and CPU development.

Nothing is downloaded. Each builder reproduces its family's published layout with only the sizes
shrunk: chat template (verbatim), feature-extractor settings, special-token names and their id
layout (regular BPE vocabulary first, then the special tokens in the published order, embedding
rows padded to a multiple of 128), generation_config.json fields, untied LM head. The tokenizer is
a real `Qwen2Tokenizer` (Qwen's pre-tokenizer regex, byte-level BPE) trained on the spot, so the
tags <think> </think> <answer> </answer> split into several tokens as in the real Qwen BPE.
Attention heads are 32 wide everywhere (text, audio and vision encoders): vLLM's CPU attention
refuses 16.

Sources (public copies of the model repositories; no hub access here):
- [QA-T] the Qwen/Qwen2-Audio-7B-Instruct chat template as quoted in issue 8 and in transformers
  `models/qwen2_audio/processing_qwen2_audio.py::default_chat_template` (transformers <= 4.57, whose
  comment says it mirrors the hub config; 5.x adds `content['type'] == 'audio'`).
- [QA-P] Qwen2-Audio preprocessor_config.json: search `code` corpus, find_string
  '"processor_class": "Qwen2AudioProcessor"' (three independent copies agree).
- [QA-C] Qwen2-Audio config.json: transformers `configuration_qwen2_audio.py` (audio_token_index
  151646) and the copy of Qwen/Qwen2-Audio-7B config.json in a public test file (QWEN2_AUDIO_SPARSE_CONFIG:
  vocab 156032, encoder 32 layers x 20 heads x 1280, 128 mel bins, 1500 positions, text eos 151645, bos 151643).
- [QA-G] Qwen2-Audio-7B-Instruct generation settings: zlai-llm/zlai
  `zlai/types/generate_config/completion/qwen2/qwen2.py::Qwen2Audio7BInstructGenerateConfig`
  (do_sample, top_k 20, top_p 0.5, temperature 0.7, repetition_penalty 1.1).
- [OM-T] the Qwen/Qwen2.5-Omni-7B chat template: transformers
  `tests/models/qwen2_5_omni/test_processing_qwen2_5_omni.py::prepare_processor_dict`, and the verbatim
  chat_template.jinja of AVoCaDO-Captioner/AVoCaDO (an unmodified Qwen2.5-Omni-7B fine-tune) quoted in a
  public report (search `code`: "AVoCaDO Audiovisual Video Captioner Deep Research Report").
- [OM-P] that report's preprocessor_config.json (chunk_length 300, n_samples 4800000, nb_max_frames 30000,
  dither 0.0, image settings), matched by four other public copies (find_string '"n_samples": 4800000').
- [OM-C] that report's config.json summary (thinker text 3584 x 28 layers, 28 heads / 4 KV heads,
  mrope_section [16, 24, 24], vocab 152064, audio encoder 1280 x 32 layers x 20 heads, n_window 100) and its
  added_tokens.json ids; transformers `configuration_qwen2_5_omni.py` defaults (the same ids, user_token_id 872).
- [OM-G] that report: the Qwen2.5-Omni generation_config.json carries no sampling fields.
"""

from __future__ import annotations

import json
from pathlib import Path

from audiothinker.prompts import INSTRUCTIONS

# Qwen2's pre-tokenizer (transformers models/qwen2/tokenization_qwen2.py PRETOKENIZE_REGEX).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Special tokens in id order, appended after the regular vocabulary (real: ids 151643 onwards).
# Qwen2-Audio: <|endoftext|> 151643, <|im_start|> 151644, <|im_end|> 151645, <|AUDIO|> 151646 [QA-C],
# <|audio_bos|> 151647, <|audio_eos|> 151648.
QWEN2_AUDIO_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
# Qwen2.5-Omni [OM-C]: 151643-151648 as above, 151649-151651 the Qwen2.5 box/quad tokens (not used by
# the thinker), <|vision_bos|> 151652, <|vision_eos|> 151653, <|vision_pad|> 151654, <|IMAGE|> 151655,
# <|VIDEO|> 151656.
OMNI_SPECIAL = QWEN2_AUDIO_SPECIAL + [
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_bos|>", "<|vision_eos|>", "<|vision_pad|>",
    "<|IMAGE|>", "<|VIDEO|>",
]
# Named tokens the Qwen2.5-Omni processor reads off its tokenizer (transformers processing_qwen2_5_omni.py).
OMNI_NAMED_TOKENS = {
    "audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
}
HEAD_DIM = 32  # every attention head in every tiny model (vLLM's CPU attention refuses 16)

# [QA-T] verbatim.
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# [OM-T] verbatim.
OMNI_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}{% if add_audio_id %}Audio {{ audio_count.value }}: {% endif %}"
    "<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT_TEMPLATE = QWEN2_AUDIO_CHAT_TEMPLATE  # the text-only tiny model uses the Qwen2-Audio template

# [QA-P]: the Qwen2-Audio feature extractor (30 s window, 128 mel bins).
QWEN2_AUDIO_PREPROCESSOR = {
    "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 128, "hop_length": 160,
    "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
    "processor_class": "Qwen2AudioProcessor", "return_attention_mask": True, "sampling_rate": 16000,
}
# [OM-P]: the Qwen2.5-Omni feature extractor (300 s window) and image processor settings, one file.
OMNI_PREPROCESSOR = {
    "chunk_length": 300, "dither": 0.0, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 128,
    "hop_length": 160, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "Qwen2VLImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711], "max_pixels": 12845056, "merge_size": 2, "min_pixels": 3136,
    "n_fft": 400, "n_samples": 4800000, "nb_max_frames": 30000, "padding_side": "right", "padding_value": 0.0,
    "patch_size": 14, "processor_class": "Qwen2_5OmniProcessor", "return_attention_mask": True, "sampling_rate": 16000,
    "temporal_patch_size": 2,
}

# Words the synthetic tasks, prompts and think traces use; the byte-level BPE covers anything else.
_CORPUS_WORDS = """
system user assistant you are a helpful audio 1 2 3 4 5 6 7 8 9 0 question answer options choose following please
is there tone high low noise only beep beeps how many one two three four five six seven eight nine ten zero
are more fewer than the of and so that is i hear first second third segment loudest quietest pitch which what
same equal count counts compare louder quieter it this clip sound music speech yes no not so then think
""".split()


def _corpus() -> list[str]:
    lines = list(INSTRUCTIONS.values())
    lines += [" ".join(_CORPUS_WORDS)] * 20
    lines += [f"{w} " * 3 for w in _CORPUS_WORDS]
    lines += ["The answer is A. (B) C) D: [x, y, z]. It's 3 > 2; 10% 'q' \"r\" - + = ? !"] * 5
    return lines


def train_tokenizer(specials: list[str] | None = None, named_tokens: dict[str, str] | None = None, vocab_size: int = 1024):
    """A `Qwen2Tokenizer` (Qwen pre-tokenizer, byte-level BPE of `vocab_size` regular tokens) trained on the
    spot, with `specials` appended after the regular vocabulary in order, as in the published tokenizers."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import AddedToken, Qwen2Tokenizer

    specials = specials or QWEN2_AUDIO_SPECIAL
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = dict(model["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    n = len(vocab)
    vocab.update({s: n + i for i, s in enumerate(specials)})  # ids fixed before the tokenizer registers any
    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        errors="replace", model_max_length=32768, split_special_tokens=False,
        extra_special_tokens=named_tokens or {},
    )
    tok.add_tokens([AddedToken(s, special=True, normalized=False) for s in specials], special_tokens=True)
    got = tok.convert_tokens_to_ids(specials)
    if got != list(range(n, n + len(specials))):  # the layout the builders promise
        raise RuntimeError(f"special token ids {got} are not {n}..{n + len(specials) - 1}")
    return tok


def _padded_vocab(n_tokens: int) -> int:
    """Embedding rows: the tokenizer length rounded up to a multiple of 128 (real: 151649 -> 156032 for
    Qwen2-Audio [QA-C], 151665 -> 152064 for Qwen2.5-Omni [OM-C])."""
    return -(-n_tokens // 128) * 128


def _heads(width: int) -> int:
    if width % HEAD_DIM:
        raise ValueError(f"width {width} is not a multiple of the head size {HEAD_DIM}")
    return width // HEAD_DIM


def _init_model(cls, config, seed: int):
    """Random init under a local seed: the caller's global RNG state is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(config)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def build_tiny_qwen2_audio(out_dir: str | Path, *, seed: int = 0, mel_seconds: int = 30, hidden: int = 64,
                           layers: int = 2, audio_layers: int = 2, n_mels: int = 128) -> Path:
    """Write a tiny random Qwen2-Audio-7B-Instruct look-alike (model + processor) to `out_dir`; returns the path.

    Defaults are the published layout ([QA-P]: 30 s window, 128 mel bins, 3000 frames); a short
    `mel_seconds` gives a cheaper encoder for unit tests (`tiny:qwen2_audio_short`).
    """
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    out = Path(out_dir)
    tokenizer = train_tokenizer(QWEN2_AUDIO_SPECIAL)
    ids = dict(zip(QWEN2_AUDIO_SPECIAL, tokenizer.convert_tokens_to_ids(QWEN2_AUDIO_SPECIAL)))
    fe_cfg = _window(QWEN2_AUDIO_PREPROCESSOR, mel_seconds, n_mels)
    feature_extractor = WhisperFeatureExtractor(**{k: v for k, v in fe_cfg.items() if k != "processor_class"})
    processor = Qwen2AudioProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer,
                                    chat_template=QWEN2_AUDIO_CHAT_TEMPLATE)
    config = Qwen2AudioConfig(
        audio_config=dict(  # [QA-C]: Whisper-style encoder; 1500 positions = 3000 frames / conv stride 2
            model_type="qwen2_audio_encoder", num_mel_bins=n_mels, encoder_layers=audio_layers,
            encoder_attention_heads=_heads(hidden), encoder_ffn_dim=hidden * 4, d_model=hidden,
            max_source_positions=fe_cfg["nb_max_frames"] // 2, activation_function="gelu", scale_embedding=False,
        ),
        text_config=dict(  # [QA-C]: Qwen2 decoder, full multi-head attention (as many KV heads as heads)
            model_type="qwen2", vocab_size=_padded_vocab(len(tokenizer)), hidden_size=hidden,
            intermediate_size=hidden * 3, num_hidden_layers=layers, num_attention_heads=_heads(hidden),
            num_key_value_heads=_heads(hidden), max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=10000.0,
            tie_word_embeddings=False, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        ),
        audio_token_index=ids["<|AUDIO|>"], tie_word_embeddings=False,
    )
    model = _init_model(Qwen2AudioForConditionalGeneration, config, seed)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    _write_json(out / "preprocessor_config.json", fe_cfg)
    _write_json(out / "generation_config.json", {  # [QA-G]; eos/pad ids in the published id layout
        "chat_format": "chatml", "do_sample": True, "eos_token_id": [ids["<|endoftext|>"], ids["<|im_end|>"]],
        "pad_token_id": ids["<|endoftext|>"], "repetition_penalty": 1.1, "temperature": 0.7, "top_k": 20, "top_p": 0.5,
    })
    _write_json(out / "audiothinker_tiny.json", {"family": "qwen2_audio", "seed": seed, "mel_seconds": mel_seconds})
    return out


def _window(preprocessor: dict, seconds: int, n_mels: int) -> dict:
    """The published feature-extractor settings with the window set to `seconds` and `n_mels` bins."""
    rate, hop = preprocessor["sampling_rate"], preprocessor["hop_length"]
    return {**preprocessor, "chunk_length": seconds, "n_samples": seconds * rate,
            "nb_max_frames": seconds * rate // hop, "feature_size": n_mels}


def build_tiny_text(out_dir: str | Path, *, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """A tiny random text-only Qwen2 causal LM with the same tokenizer (benchmarks, judge tests)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    tokenizer = train_tokenizer(QWEN2_AUDIO_SPECIAL[:3])
    tokenizer.chat_template = CHAT_TEMPLATE
    eos, pad = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen2Config(
        vocab_size=_padded_vocab(len(tokenizer)), hidden_size=hidden, intermediate_size=hidden * 3,
        num_hidden_layers=layers, num_attention_heads=_heads(hidden), num_key_value_heads=_heads(hidden),
        max_position_embeddings=8192, tie_word_embeddings=False, bos_token_id=pad, eos_token_id=eos, pad_token_id=pad,
    )
    model = _init_model(Qwen2ForCausalLM, config, seed)
    model.generation_config.eos_token_id = [pad, eos]
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _write_json(out / "audiothinker_tiny.json", {"family": "text", "seed": seed})
    return out


def build_tiny_qwen2_5_omni(out_dir: str | Path, *, seed: int = 0, mel_seconds: int = 300, hidden: int = 64,
                            layers: int = 2, audio_layers: int = 2, n_mels: int = 128) -> Path:
    """Write a tiny random Qwen2.5-Omni-7B thinker look-alike (weights + tokenizer + processor files) to `out_dir`.

    Defaults are the published layout ([OM-P]: 300 s window, 128 mel bins); the processor files are
    those of the full model (one preprocessor_config.json for audio and images, chat_template.jinja).
    """
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    out = Path(out_dir)
    tokenizer = train_tokenizer(OMNI_SPECIAL, named_tokens=OMNI_NAMED_TOKENS)
    ids = dict(zip(OMNI_SPECIAL, tokenizer.convert_tokens_to_ids(OMNI_SPECIAL)))
    fe_cfg = _window(OMNI_PREPROCESSOR, mel_seconds, n_mels)
    heads = _heads(hidden)
    config = Qwen2_5OmniThinkerConfig(
        audio_config=dict(  # [OM-C]: 1500 positions, attention windows of n_window * 2 frames
            num_mel_bins=n_mels, encoder_layers=audio_layers, encoder_attention_heads=heads, encoder_ffn_dim=hidden * 4,
            d_model=hidden, output_dim=hidden, max_source_positions=1500, n_window=100,
        ),
        vision_config=dict(  # present in the thinker, unused on audio; one 32-wide head
            depth=1, hidden_size=HEAD_DIM, intermediate_size=2 * HEAD_DIM, num_heads=1, out_hidden_size=hidden,
            fullatt_block_indexes=[0], patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
        ),
        text_config=dict(  # [OM-C]: grouped-query attention; mrope_section [16, 24, 24] scaled to head size 32
            vocab_size=_padded_vocab(len(tokenizer)), hidden_size=hidden, intermediate_size=hidden * 3,
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
            max_position_embeddings=32768, tie_word_embeddings=False, rms_norm_eps=1e-6,
            rope_scaling={"type": "default", "mrope_section": [4, 6, 6], "rope_theta": 1000000.0},
        ),
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"], video_token_index=ids["<|VIDEO|>"],
        audio_start_token_id=ids["<|audio_bos|>"], audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"], vision_end_token_id=ids["<|vision_eos|>"],
        user_token_id=tokenizer.convert_tokens_to_ids("user"), position_id_per_seconds=25, seconds_per_chunk=2,
        pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<|im_end|>"],
        tie_word_embeddings=False,
    )
    model = _init_model(Qwen2_5OmniThinkerForConditionalGeneration, config, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _write_json(out / "preprocessor_config.json", fe_cfg)
    (out / "chat_template.jinja").write_text(OMNI_CHAT_TEMPLATE)
    _write_json(out / "generation_config.json", {"_from_model_config": True})  # [OM-G]: no sampling fields
    _write_json(out / "audiothinker_tiny.json", {"family": "qwen2_5_omni", "seed": seed, "mel_seconds": mel_seconds})
    return out
