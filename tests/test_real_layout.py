"""The tiny checkpoints are laid out like the published ones, and every path a user walks works on them.

- Layout: published feature-extractor settings, special tokens after the regular vocabulary in the
  published order, tags split into several tokens, heads 32 wide, building leaves the global RNG alone.
- Prompts: `chat_messages` renders through each family's published template with one audio
  placeholder per clip (the bare `{"type": "audio"}` item renders none under Qwen2-Audio's).
- `final/` of a train run (full and LoRA, both families) reloads with plain transformers and
  generates; its weight names and config layout equal the starting checkpoint's.
- sft and eval run on the real-layout Qwen2.5-Omni thinker (train, sft and eval on Qwen2-Audio run
  in test_train_smoke / test_sft / tests/eval on the real layout).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiothinker.models import tiny
from audiothinker.models.loading import resolve_tiny
from audiothinker.prompts import chat_messages

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny_cpu.yaml"
FAMILIES = {"qwen2_audio": tiny.QWEN2_AUDIO_SPECIAL, "qwen2_5_omni": tiny.OMNI_SPECIAL}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOTHINKER_CACHE", str(root))
        yield root


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_building_leaves_the_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    tiny.build_tiny_qwen2_audio(tmp_path / "a", mel_seconds=2, seed=5)
    assert torch.equal(before, torch.get_rng_state())
    # ... and the seed still decides the weights.
    tiny.build_tiny_qwen2_audio(tmp_path / "b", mel_seconds=2, seed=6)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", FAMILIES)
def test_published_layout(cache, family):
    from transformers import AutoConfig, AutoTokenizer, WhisperFeatureExtractor

    path = Path(resolve_tiny(f"tiny:{family}"))
    fe = WhisperFeatureExtractor.from_pretrained(path)
    published = tiny.QWEN2_AUDIO_PREPROCESSOR if family == "qwen2_audio" else tiny.OMNI_PREPROCESSOR
    for key in ("feature_size", "chunk_length", "n_samples", "nb_max_frames", "hop_length", "n_fft", "sampling_rate",
                "padding_side", "padding_value", "return_attention_mask"):
        assert getattr(fe, key) == published[key], key
    assert fe.feature_size == 128 and fe.sampling_rate == 16000
    assert (fe.chunk_length, fe.nb_max_frames) == ((30, 3000) if family == "qwen2_audio" else (300, 30000))

    tok = AutoTokenizer.from_pretrained(path)
    specials = FAMILIES[family]
    ids = tok.convert_tokens_to_ids(specials)
    assert ids == list(range(ids[0], ids[0] + len(specials)))  # consecutive, in the published order
    assert all(i < ids[0] for i in tok.get_vocab().values() if i not in ids)  # after the regular vocabulary
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        assert len(tok.encode(tag, add_special_tokens=False)) > 1, tag

    cfg = AutoConfig.from_pretrained(path)
    text = cfg.text_config
    assert text.vocab_size % 128 == 0 and text.vocab_size >= len(tok)
    assert text.hidden_size // text.num_attention_heads >= 32
    audio = cfg.audio_config
    assert audio.d_model // audio.encoder_attention_heads >= 32 and audio.num_mel_bins == 128
    if family == "qwen2_5_omni":
        assert cfg.vision_config.hidden_size // cfg.vision_config.num_heads >= 32
        assert sum(text.rope_parameters["mrope_section"]) * 2 == text.hidden_size // text.num_attention_heads
        assert (path / "chat_template.jinja").read_text() == tiny.OMNI_CHAT_TEMPLATE
    else:
        gen = _json(path / "generation_config.json")
        assert (gen["top_k"], gen["top_p"], gen["repetition_penalty"]) == (20, 0.5, 1.1)


@pytest.mark.parametrize("family", FAMILIES)
def test_prompts_render_one_audio_placeholder_per_clip(cache, family):
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    policy = load_policy(ModelConfig(name_or_path=f"tiny:{family}", dtype="float32"))
    template = tiny.QWEN2_AUDIO_CHAT_TEMPLATE if family == "qwen2_audio" else tiny.OMNI_CHAT_TEMPLATE
    tok = policy.tokenizer
    msgs = chat_messages("How many beeps?", ["one", "two"], "adaptive")
    text = tok.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=True)
    assert text.count("<|audio_bos|><|AUDIO|><|audio_eos|>") == 1
    two = [{"role": "user", "content": [msgs[0]["content"][0], msgs[0]["content"][0], msgs[0]["content"][1]]}]
    assert tok.apply_chat_template(two, chat_template=template, tokenize=False).count("<|AUDIO|>") == 2
    bare = [{"role": "user", "content": [{"type": "audio"}, msgs[0]["content"][1]]}]  # the item before issue 8
    bare_count = tok.apply_chat_template(bare, chat_template=template, tokenize=False).count("<|AUDIO|>")
    assert bare_count == (0 if family == "qwen2_audio" else 1)
    # Through the adapter: one clip of 1 s -> 25 audio tokens (conv stride 2, pooling 2) in its prompt.
    batch = policy.build_prompts([msgs], [np.zeros(16000, dtype=np.float32)])
    assert int((batch.input_ids == tok.convert_tokens_to_ids("<|AUDIO|>")).sum()) == 25


def _train(out: Path, family: str, lora: bool) -> Path:
    from audiothinker.config import load_config
    from audiothinker.trainer.grpo import train

    cfg = load_config(RECIPE, [
        f"output_dir={out}", "log.progress=false", "max_steps=1", "save_steps=0", "data.synthetic_size=2",
        "rollout.max_new_tokens=4", "rollout.num_generations=2", "train.per_device_batch_size=1",
        "train.gradient_accumulation_steps=1", "log.report_to=[jsonl]", f"model.name_or_path=tiny:{family}",
        f"model.lora={str(lora).lower()}",
    ])
    return train(cfg)


def _layout(d: dict) -> dict:
    """The nesting of a config.json: sub-configs by key, `dtype` / version stamps aside."""
    return {k: _layout(v) for k, v in d.items() if isinstance(v, dict)} | {
        "__keys__": sorted(k for k in d if k not in ("dtype", "torch_dtype", "transformers_version"))
    }


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_final_is_a_normal_checkpoint(cache, tmp_path, family, lora):
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer, WhisperFeatureExtractor

    final = _train(tmp_path / "run", family, lora)
    start = Path(resolve_tiny(f"tiny:{family}"))
    keys = lambda p: set(safe_open(str(p / "model.safetensors"), "pt").keys())  # noqa: E731
    assert keys(final) == keys(start)
    assert not any(k.startswith("model.model.") or "base_model" in k or "lora_" in k for k in keys(final))
    assert _layout(_json(final / "config.json")) == _layout(_json(start / "config.json"))
    for name in ("preprocessor_config.json", "tokenizer_config.json", "tokenizer.json", "generation_config.json"):
        assert (final / name).is_file(), name
    assert (final / "tokenizer_config.json").read_text() == (start / "tokenizer_config.json").read_text()

    # Plain transformers, no audiothinker code: model + processor parts load and generate.
    cls = AutoConfig.from_pretrained(final).architectures[0]
    import transformers

    model = getattr(transformers, cls).from_pretrained(final, dtype=torch.float32).eval()
    if family == "qwen2_audio":
        from transformers import AutoProcessor

        proc = AutoProcessor.from_pretrained(final)
        msgs = chat_messages("How many beeps?", ["one", "two"], "adaptive")
        text = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        inputs = proc(text=[text], audio=[np.zeros(16000, dtype=np.float32)], sampling_rate=16000, return_tensors="pt")
    else:  # the full Qwen2.5-Omni processor needs torchvision: its audio parts, as that processor combines them
        tok, fe = AutoTokenizer.from_pretrained(final), WhisperFeatureExtractor.from_pretrained(final)
        feats = fe([np.zeros(16000, dtype=np.float32)], sampling_rate=16000, padding="max_length",
                   return_attention_mask=True, return_tensors="pt")
        text = "<|im_start|>user\n<|audio_bos|>" + "<|AUDIO|>" * 25 + "<|audio_eos|>Hi<|im_end|>\n<|im_start|>assistant\n"
        inputs = {**tok([text], return_tensors="pt"), "input_features": feats["input_features"],
                  "feature_attention_mask": feats["attention_mask"]}
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    P = inputs["input_ids"].shape[1]
    assert P < out.shape[1] <= P + 3 and torch.equal(out[:, :P], inputs["input_ids"])


def test_sft_and_eval_on_the_real_layout_omni_thinker(cache, tmp_path):
    from audiothinker.cli import main
    from audiothinker.config import load_config
    from audiothinker.data.synthetic import write_synthetic
    from audiothinker.sft import SFTOptions, sft

    data = write_synthetic(tmp_path / "data", 4, 0, split="train")
    cfg = load_config(None, [
        f"output_dir={tmp_path / 'sft'}", "max_steps=2", "model.name_or_path=tiny:qwen2_5_omni", "model.dtype=float32",
        "data.format=jsonl", f"data.train_file={data}", "train.per_device_batch_size=2",
        "train.gradient_accumulation_steps=1", "log.progress=false",
    ])
    final = sft(cfg, SFTOptions(think_fraction=0.5))
    assert (final / "model.safetensors").is_file()
    out = tmp_path / "eval"
    rc = main(["eval", "--benchmark", "jsonl", "--data", str(data), "--model", str(final), "--batch-size", "2",
               "--max-new-tokens", "4", "--out", str(out)])
    assert rc in (0, None)
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4
