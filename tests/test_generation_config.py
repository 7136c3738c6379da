"""Generation does what the config says: the checkpoint's generation_config.json never changes sampling.

The published Qwen2-Audio-7B-Instruct generation_config.json sets do_sample, temperature 0.7, top_k 20,
top_p 0.5 and repetition_penalty 1.1 (the real-layout tiny model carries the same file). For each
family, the same weights are saved twice: with those settings and with none. The rollout engine,
seeded alike, must sample the very same tokens from both; a control shows that a plain
`generate` call on the same two checkpoints does differ, so the comparison can fail. Then the
engine's own `repetition_penalty` does change what is sampled.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import GenerationConfig

from audiothinker.config import ModelConfig
from audiothinker.models.loading import load_policy, resolve_tiny
from audiothinker.prompts import chat_messages
from audiothinker.rollout import HFEngine, SamplingParams
from audiothinker.rollout.hf import generation_kwargs

SR = 16000
QWEN2_AUDIO_SAMPLING = {"do_sample": True, "temperature": 0.7, "top_k": 20, "top_p": 0.5, "repetition_penalty": 1.1}


def _batch(policy):
    rng = np.random.default_rng(0)
    audios = [(0.3 * rng.standard_normal(SR)).astype(np.float32), (0.3 * rng.standard_normal(SR // 2)).astype(np.float32)]
    msgs = [chat_messages("How many beeps?", ["one", "two"], "adaptive"), chat_messages("Is it high?", ["yes", "no"], "think")]
    return policy.build_prompts(msgs, audios)


@pytest.fixture(scope="module", params=["tiny:qwen2_audio_short", "tiny:qwen2_5_omni_short"])
def pair(request, tmp_path_factory):
    """(policy whose checkpoint sets the sampling fields, policy of the same weights whose checkpoint sets none)."""
    root = tmp_path_factory.mktemp("gencfg")
    src = resolve_tiny(request.param, root / "cache")
    with_fields, without = root / "with", root / "without"
    shutil.copytree(src, with_fields)
    shutil.copytree(src, without)
    base = json.loads((with_fields / "generation_config.json").read_text())
    eos = {k: base[k] for k in ("eos_token_id", "pad_token_id") if k in base}
    (with_fields / "generation_config.json").write_text(json.dumps({**base, **QWEN2_AUDIO_SAMPLING}))
    (without / "generation_config.json").write_text(json.dumps(eos))
    load = lambda p: load_policy(ModelConfig(name_or_path=str(p), dtype="float32"))  # noqa: E731
    a, b = load(with_fields), load(without)
    assert a.model.generation_config.top_k == 20 and a.model.generation_config.repetition_penalty == 1.1
    assert b.model.generation_config.top_k is None or b.model.generation_config.top_k == 50
    return a, b


def _sample(policy, params: SamplingParams, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    G = 4 if params.do_sample else 1  # HF greedy takes one sequence per prompt
    return HFEngine(policy).generate(_batch(policy), G, params).completion_ids


def test_checkpoint_sampling_fields_are_not_applied(pair):
    a, b = pair
    params = SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=12)
    assert torch.equal(_sample(a, params), _sample(b, params))
    greedy = SamplingParams(do_sample=False, max_new_tokens=12)
    assert torch.equal(_sample(a, greedy), _sample(b, greedy))


def test_control_plain_generate_does_apply_them(pair):
    """Without the engine, transformers takes top_k / top_p / repetition_penalty from the checkpoint."""
    a, b = pair
    outs = []
    for policy in (a, b):
        eng = HFEngine(policy)
        torch.manual_seed(0)
        outs.append(policy.generate(policy.model, _batch(policy), 4, max_new_tokens=12, do_sample=True,
                                    eos_token_id=eng.eos_ids, pad_token_id=eng.pad_id))
    assert not torch.equal(outs[0], outs[1])


def test_configured_repetition_penalty_is_applied(pair):
    a, _ = pair
    plain = SamplingParams(max_new_tokens=12)
    assert not torch.equal(_sample(a, plain), _sample(a, SamplingParams(max_new_tokens=12, repetition_penalty=5.0)))
    assert torch.equal(_sample(a, plain), _sample(a, plain))  # seeded: the same settings sample the same tokens


@pytest.mark.parametrize("params", [SamplingParams(do_sample=False, max_new_tokens=12),
                                    SamplingParams(temperature=0.7, top_p=0.5, top_k=20, max_new_tokens=12)],
                         ids=["greedy", "sampling"])
def test_engine_settings_pass_transformers_strict_validation(params):
    """transformers warns ("generation flags are not valid and may be ignored") on every greedy call whose config
    sets a sampling-only flag away from its default; the engine's settings must set none."""
    GenerationConfig(**generation_kwargs(params, [1], 0)).validate(strict=True)
    with pytest.raises(ValueError, match="top_k"):  # control: a greedy config with top_k 0 is what it flags
        GenerationConfig(do_sample=False, top_k=0).validate(strict=True)
