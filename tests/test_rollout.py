"""Rollout helpers: masking completions after their first EOS, and the engine registry."""

from __future__ import annotations

import pytest
import torch

from audiothinker.rollout import SamplingParams, build_engine, pad_after_eos

EOS, PAD = 2, 0


def test_pad_after_eos_by_hand():
    ids = torch.tensor([
        [5, 7, 2, 9, 2],  # EOS at 2: keep 5 7 2, pad the rest (a second EOS is padding too)
        [5, 5, 5, 5, 5],  # no EOS: all kept, truncated
        [2, 3, 4, 6, 8],  # EOS first: only the EOS token counts
        [3, 4, 5, 6, 2],  # EOS as the last token: not truncated
    ])
    out, mask, truncated = pad_after_eos(ids, [EOS], PAD)
    assert out.tolist() == [[5, 7, 2, 0, 0], [5, 5, 5, 5, 5], [2, 0, 0, 0, 0], [3, 4, 5, 6, 2]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert truncated.tolist() == [False, True, False, False]
    assert mask.dtype == torch.long and truncated.dtype == torch.bool
    assert ids[0, 3] == 9  # the input is not modified in place


def test_pad_after_eos_several_eos_ids():
    # Qwen stops on <|im_end|> or <|endoftext|>: the first of either ends the completion.
    ids = torch.tensor([[4, 6, 5, 2, 7], [4, 4, 2, 6, 7], [4, 4, 4, 4, 4]])
    out, mask, truncated = pad_after_eos(ids, [2, 6], pad_id=1)
    assert out.tolist() == [[4, 6, 1, 1, 1], [4, 4, 2, 1, 1], [4, 4, 4, 4, 4]]
    assert mask.sum(1).tolist() == [2, 3, 5]
    assert truncated.tolist() == [False, False, True]


def test_pad_id_equal_to_eos_keeps_the_mask_right():
    # pad == eos (tokenizers without a pad token): the mask, not the ids, says where the completion ends.
    ids = torch.tensor([[5, 2, 2, 2]])
    out, mask, truncated = pad_after_eos(ids, [2], pad_id=2)
    assert out.tolist() == [[5, 2, 2, 2]]
    assert mask.tolist() == [[1, 1, 0, 0]]
    assert not truncated.item()


def test_build_engine_errors():
    with pytest.raises(ValueError, match="'hf', 'vllm'"):
        build_engine("sglang", policy=None)


def test_registering_an_engine_is_one_decorator(monkeypatch):
    # The registry is the single list: build_engine, config validation and the eval CLI read it.
    from audiothinker.config import Config, ConfigError, validate
    from audiothinker.eval.cli import add_parser
    from audiothinker.rollout import ENGINES, register_engine

    monkeypatch.setattr("audiothinker.rollout.base.ENGINES", dict(ENGINES))
    import audiothinker.rollout.base as base

    @register_engine("echo")
    class Echo:
        name = "echo"

        def __init__(self, policy, options):
            self.policy, self.options = policy, options

        def sync_weights(self, model):
            pass

        def generate(self, prompts, num_generations, params):
            raise NotImplementedError

        def close(self):
            pass

    assert base.ENGINES["echo"] is Echo
    engine = build_engine("echo", policy="p")
    assert isinstance(engine, Echo) and engine.policy == "p"
    cfg = Config()
    cfg.rollout.engine = "echo"
    validate(cfg)  # accepted without touching config.py
    cfg.rollout.engine = "nope"
    with pytest.raises(ConfigError, match="rollout.engine: 'nope'"):
        validate(cfg)
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    p = add_parser(sub)
    engine_arg = next(a for a in p._actions if a.dest == "engine")
    assert "echo" in engine_arg.choices


def test_sampling_params_defaults_follow_the_paper():
    p = SamplingParams()
    assert (p.temperature, p.top_p, p.top_k, p.max_new_tokens, p.do_sample) == (1.0, 1.0, 0, 256, True)


# ---- vLLM engine helpers (pure; no vllm needed) ----------------------------------------------


def test_vllm_weight_names_by_family():
    from audiothinker.rollout.vllm_engine import vllm_weight_name

    qa = "qwen2_audio"
    assert vllm_weight_name(qa, "model.audio_tower.layers.0.fc1.weight") == "audio_tower.layers.0.fc1.weight"
    assert vllm_weight_name(qa, "model.multi_modal_projector.linear.bias") == "multi_modal_projector.linear.bias"
    assert vllm_weight_name(qa, "model.language_model.layers.1.mlp.up_proj.weight") == "language_model.model.layers.1.mlp.up_proj.weight"
    assert vllm_weight_name(qa, "lm_head.weight") == "language_model.lm_head.weight"
    with pytest.raises(KeyError, match="qwen2_audio: no vLLM name for parameter 'visual.x'"):
        vllm_weight_name(qa, "visual.x")
    # vLLM serves the Omni thinker through the full Omni model, reading the published checkpoint's names,
    # whichever module layout this transformers gives the thinker (nested under `model.` from 5.2x on, or not).
    om = "qwen2_5_omni"
    for ours, published in [
        ("model.language_model.layers.0.self_attn.q_proj.weight", "thinker.model.layers.0.self_attn.q_proj.weight"),
        ("model.layers.0.self_attn.q_proj.weight", "thinker.model.layers.0.self_attn.q_proj.weight"),
        ("model.audio_tower.conv1.weight", "thinker.audio_tower.conv1.weight"),
        ("audio_tower.conv1.weight", "thinker.audio_tower.conv1.weight"),
        ("model.visual.patch_embed.proj.weight", "thinker.visual.patch_embed.proj.weight"),
        ("visual.patch_embed.proj.weight", "thinker.visual.patch_embed.proj.weight"),
        ("lm_head.weight", "thinker.lm_head.weight"),
    ]:
        assert vllm_weight_name(om, ours) == published
    assert vllm_weight_name("text", "model.norm.weight") == "model.norm.weight"


def test_placeholder_check_counts_clips():
    import numpy as np

    from audiothinker.rollout.vllm_engine import check_placeholders

    clip = np.zeros(160, dtype=np.float32)
    check_placeholders(["a <|AUDIO|> b", "text only"], [clip, None])  # consistent: no error
    with pytest.raises(ValueError, match=r"prompt 1: 0 audio placeholder\(s\) <\|AUDIO\|> but 1 clip"):
        check_placeholders(["<|AUDIO|>", "no placeholder"], [clip, clip])
    with pytest.raises(ValueError, match=r"prompt 0: 1 audio placeholder\(s\) <\|AUDIO\|> but 0 clip"):
        check_placeholders(["<|AUDIO|> with no clip attached"], [None])
    with pytest.raises(ValueError, match=r"prompt 0: 2 audio placeholder"):
        check_placeholders(["<|AUDIO|><|AUDIO|>"], [clip])


def test_pad_rows_by_hand():
    from audiothinker.rollout.vllm_engine import pad_rows

    assert pad_rows([[1, 2, 3], [4]], 0, torch.long).tolist() == [[1, 2, 3], [4, 0, 0]]
    assert pad_rows([[], []], 7, torch.long).tolist() == [[7], [7]]  # at least one column


def test_merged_weights_merge_lora_then_unmerge():
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from audiothinker.rollout.vllm_engine import merged_weights

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    base = Qwen2ForCausalLM(cfg)
    plain = {n: t.clone() for n, t in merged_weights(base)}
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj"]))
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    with torch.no_grad():
        layer.lora_B["default"].weight.fill_(0.5)
    x = torch.randn(3, 16)
    y_before = layer(x)
    delta = (layer.lora_B["default"].weight @ layer.lora_A["default"].weight) * layer.scaling["default"]  # [16, 16]
    merged = {n: t.clone() for n, t in merged_weights(model)}
    assert merged.keys() == plain.keys()  # transformers names: no base_layer., no lora_ factors
    q = "model.layers.0.self_attn.q_proj.weight"
    assert torch.allclose(merged[q], plain[q] + delta, atol=1e-6)  # W + B A * scale
    assert all(torch.equal(merged[k], plain[k]) for k in plain if k != q)
    assert not layer.merged and torch.allclose(layer(x), y_before, atol=1e-6)  # unmerged afterwards


def test_tie_override_follows_the_module():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from audiothinker.rollout.vllm_engine import tie_override

    cfg = dict(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
               num_key_value_heads=1)
    assert tie_override("text", Qwen2ForCausalLM(Qwen2Config(**cfg, tie_word_embeddings=True))) == {"tie_word_embeddings": True}
    untied = Qwen2ForCausalLM(Qwen2Config(**cfg, tie_word_embeddings=False))
    assert tie_override("qwen2_audio", untied) == {"text_config": {"tie_word_embeddings": False}}
    from audiothinker.rollout.vllm_omni import OmniConfigOverride

    assert tie_override("qwen2_5_omni", untied) == OmniConfigOverride(tied=False)


def test_omni_override_wraps_a_thinker_config_in_the_full_omni_config(tmp_path):
    """vLLM serves the thinker through the full Omni classes: a thinker saved alone gets the full config."""
    from transformers import AutoConfig

    from audiothinker.models.loading import resolve_tiny
    from audiothinker.rollout.vllm_omni import AUDIO_ONLY_ARCHITECTURE, OmniConfigOverride

    thinker = AutoConfig.from_pretrained(resolve_tiny("tiny:qwen2_5_omni_short", tmp_path, 0))
    assert thinker.model_type == "qwen2_5_omni_thinker" and not hasattr(thinker, "thinker_config")
    full = OmniConfigOverride(tied=True, architecture=AUDIO_ONLY_ARCHITECTURE)(thinker)
    assert full.model_type == "qwen2_5_omni" and full.architectures == [AUDIO_ONLY_ARCHITECTURE]
    assert not full.enable_audio_output
    text = full.thinker_config.text_config
    assert text.tie_word_embeddings is True  # the trained module's tying, whatever the file says
    assert (text.hidden_size, text.num_hidden_layers) == (thinker.text_config.hidden_size, thinker.text_config.num_hidden_layers)
    assert full.thinker_config.audio_config.num_mel_bins == thinker.audio_config.num_mel_bins
    # A full Omni config (the published layout) keeps its nesting; only the two settings change.
    again = OmniConfigOverride(tied=False, architecture="Qwen2_5OmniModel")(full)
    assert again is full and again.architectures == ["Qwen2_5OmniModel"]
    assert again.thinker_config.text_config.tie_word_embeddings is False


def test_vllm_engine_without_vllm_names_the_fix(monkeypatch):
    import builtins

    from audiothinker.rollout import EngineOptions

    real_import = builtins.__import__

    def no_vllm(name, *a, **k):
        if name == "vllm" or name.startswith("vllm."):
            raise ImportError("No module named 'vllm'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(ImportError, match="rollout engine 'vllm' needs the vllm package"):
        build_engine("vllm", policy=None, options=EngineOptions())


def test_hf_engine_sync_uses_the_given_module():
    from audiothinker.rollout import HFEngine

    class Tok:
        eos_token_id, pad_token_id = 2, 0

    class Pol:
        tokenizer = Tok()
        model = torch.nn.Linear(1, 1)

    engine = HFEngine(Pol())
    other = torch.nn.Linear(1, 1)
    engine.sync_weights(other)
    assert engine.model is other and engine.eos_ids == [2] and engine.pad_id == 0
