"""The Qwen2.5-Omni thinker adapter on a tiny random model: audio reaches the loss path, training runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiothinker.config import ModelConfig, load_config
from audiothinker.models.base import ScoringModule
from audiothinker.models.loading import load_policy
from audiothinker.prompts import chat_messages


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    from audiothinker.models.tiny import build_tiny_qwen2_5_omni

    path = build_tiny_qwen2_5_omni(tmp_path_factory.mktemp("omni") / "m")
    return load_policy(ModelConfig(name_or_path=str(path), family="qwen2_5_omni", dtype="float32"))


def _wave(kind: str) -> np.ndarray:
    t = np.arange(24000) / 16000
    if kind == "tone":
        return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return (0.3 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)


def test_omni_audio_changes_loss_path_logprobs_and_reaches_the_encoder(omni):
    msgs = [chat_messages("Is the tone high or low?", ["high", "low"], "adaptive")]
    completion = omni.tokenizer("<answer>high</answer>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    completion = completion.repeat(2, 1)  # G = 2
    mask = torch.ones_like(completion)
    scorer = ScoringModule(omni.model, omni)
    omni.model.zero_grad()
    logp = {k: scorer(omni.build_prompts(msgs, [_wave(k)]), completion, mask, 2) for k in ("tone", "noise")}
    assert logp["tone"].shape == completion.shape
    assert not torch.allclose(logp["tone"], logp["noise"])  # the audio is in the forward
    logp["tone"].sum().backward()
    grads = [p.grad for p in omni.audio_tower.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_omni_generation_suppresses_audio_tokens(omni):
    batch = omni.build_prompts([chat_messages("How many beeps?", ["two", "three"], "adaptive")], [_wave("tone")])
    torch.manual_seed(0)
    out = omni.generate(omni.model, batch, 3, max_new_tokens=12, do_sample=True, eos_token_id=omni.tokenizer.eos_token_id,
                        pad_token_id=omni.tokenizer.pad_token_id)
    assert out.shape[0] == 3
    assert not set(out.flatten().tolist()) & set(omni.audio_token_ids)


def test_omni_trains_one_step(tmp_path, monkeypatch):
    from audiothinker.trainer.grpo import train

    monkeypatch.setenv("AUDIOTHINKER_CACHE", str(tmp_path / "cache"))
    cfg = load_config("recipes/tiny_cpu.yaml", [
        f"output_dir={tmp_path / 'run'}", "max_steps=1", "save_steps=0", "log.progress=false",
        "model.name_or_path=tiny:qwen2_5_omni", "data.synthetic_size=4", "rollout.max_new_tokens=8",
        "train.per_device_batch_size=1", "train.gradient_accumulation_steps=1", "rollout.num_generations=2",
    ])
    final = train(cfg)
    assert (final / "model.safetensors").exists()
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 1


def test_omni_audio_encoded_once_matches_the_models_own_forward(omni):
    msgs = [chat_messages("Is the tone high or low?", ["high", "low"], "adaptive"),
            chat_messages("How many beeps are there in this clip?", ["two", "three", "four"], "adaptive")]
    batch = omni.build_prompts(msgs, [_wave("tone"), _wave("noise")[:16000]])  # left padding, two audio lengths
    ids = torch.randint(20, 200, (4, 6))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    with torch.no_grad():
        shared = omni.token_logprobs(omni.model, batch, ids, mask, 2)
        full = omni.full_token_logprobs(omni.model, batch, ids, mask, 2)
    assert torch.allclose(shared, full, atol=1e-5)


def test_features_padded_to_the_longest_clip_equal_the_official_300s_padding(omni):
    """The stand-in processor pads to the longest clip (+ one FFT window), not to the 300 s window:
    the valid frames are bit-identical and the thinker's log-probs are the same."""
    proc = omni.processor
    clips = [_wave("tone"), _wave("noise")[:9000], np.zeros(5000, dtype=np.float32)]
    full = proc.feature_extractor(clips, sampling_rate=16000, padding="max_length", return_attention_mask=True,
                                  return_tensors="pt")  # what Qwen2_5OmniProcessor computes
    assert full["input_features"].shape[-1] == 30000
    msgs = [chat_messages("How many beeps?", ["two", "three"], "adaptive")] * len(clips)
    batch = omni.build_prompts(msgs, clips)
    assert batch.audio["input_features"].shape[-1] < 1000
    assert torch.equal(batch.audio["feature_attention_mask"], full["attention_mask"][:, : batch.audio["input_features"].shape[-1]])
    for i, n in enumerate(full["attention_mask"].sum(-1).tolist()):
        assert torch.equal(batch.audio["input_features"][i, :, :n], full["input_features"][i, :, :n])
    completion = omni.tokenizer("<answer>two</answer>", add_special_tokens=False, return_tensors="pt")["input_ids"]
    completion = completion.repeat(len(clips), 1)
    mask = torch.ones_like(completion)
    from audiothinker.models.base import PromptBatch

    official = PromptBatch(batch.input_ids, batch.attention_mask,
                           {"input_features": full["input_features"], "feature_attention_mask": full["attention_mask"]})
    with torch.no_grad():
        ours = omni.token_logprobs(omni.model, batch, completion, mask, 1)
        ref = omni.token_logprobs(omni.model, official, completion, mask, 1)
    assert torch.allclose(ours, ref, atol=1e-5)
