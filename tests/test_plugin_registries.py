"""Issue 12: model families, loss types and advantage scales are registries; one decorator adds one.

Each test registers a dummy in a copy of the registry (monkeypatched, so nothing outlives it) and
shows that detection, loading, config validation and the math pick it up.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from audiothinker.config import Config, ConfigError, ModelConfig, validate
from audiothinker.models.loading import detect_family, load_policy, resolve_tiny, tiny_specs
from audiothinker.models.registry import families, family_choices, register_family
from audiothinker.models.text import TextPolicy


def _copy_tiny_text(out_dir: str | Path, *, seed: int = 0) -> Path:
    """A tiny builder for the dummy family: the tiny text model, copied (model_type qwen2)."""
    shutil.copytree(resolve_tiny("tiny:text", seed=seed), out_dir)
    return Path(out_dir)


def test_a_model_family_is_one_decorated_class(monkeypatch, tmp_path):
    monkeypatch.setattr("audiothinker.models.registry.FAMILIES", dict(families()))
    loaded: list[str] = []

    @register_family("dummy", model_types=("qwen2",), tiny={"dummy_text": _copy_tiny_text})
    class DummyPolicy(TextPolicy):
        @classmethod
        def load(cls, path, model_kwargs):
            loaded.append(path)
            return super().load(path, model_kwargs)

    assert "dummy" in family_choices() and "tiny:dummy_text" in tiny_specs()
    path = resolve_tiny("tiny:dummy_text", tmp_path)
    assert detect_family(path) == "dummy"  # config.json model_type qwen2 is now claimed
    policy = load_policy(ModelConfig(name_or_path="tiny:dummy_text", dtype="float32"), cache_dir=tmp_path)
    assert isinstance(policy, DummyPolicy) and policy.family == "dummy" and loaded == [policy.name_or_path] == [path]
    cfg = Config()
    cfg.model.family = "dummy"
    validate(cfg)  # accepted without touching config.py
    cfg.model.family = "nope"
    with pytest.raises(ConfigError, match=r"model.family: 'nope' is not one of \['auto', .*'dummy'"):
        validate(cfg)


def test_an_unclaimed_checkpoint_goes_to_the_fallback_family():
    from audiothinker.models.registry import detect_family_of

    assert detect_family_of("qwen2_audio", []) == "qwen2_audio"
    assert detect_family_of("qwen2_5_omni_thinker", []) == "qwen2_5_omni"
    assert detect_family_of("llama", ["LlamaForCausalLM"]) == "text"


@pytest.mark.parametrize("spec", ["tiny:text", "tiny:qwen2_audio_short"])
def test_adapters_set_every_policy_attribute_at_construction(spec):
    from audiothinker.models.base import Policy

    policy = load_policy(ModelConfig(name_or_path=spec, dtype="float32"))
    missing = [name for name in Policy.__annotations__ if not hasattr(policy, name)]
    assert missing == []
    assert Path(policy.name_or_path).name.startswith(f"tiny-{spec.split(':')[1]}-seed0-")
    assert (policy.audio_tower is None) == (not policy.uses_audio)


def test_a_loss_type_is_one_decorated_function(monkeypatch):
    from audiothinker.algos import losses
    from audiothinker.algos.losses import reduce_loss, register_loss_type

    monkeypatch.setattr(losses, "LOSS_TYPES", dict(losses.LOSS_TYPES))

    @register_loss_type("token_sum")
    def token_sum(per_token_loss, mask, **_):
        return (per_token_loss * mask).sum()

    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert reduce_loss(loss, mask, "token_sum").item() == 7.0  # 1 + 2 + 4
    cfg = Config()
    cfg.train.loss_type = "token_sum"
    validate(cfg)
    with pytest.raises(ValueError, match=r"unknown loss_type 'nope'; valid: \['grpo', 'dr_grpo', 'dapo', 'bnpo', 'token_sum'\]"):
        reduce_loss(loss, mask, "nope")


def test_an_advantage_scale_is_one_decorated_function(monkeypatch):
    from audiothinker.algos import advantages
    from audiothinker.algos.advantages import group_advantages, register_scale

    monkeypatch.setattr(advantages, "SCALES", dict(advantages.SCALES))

    @register_scale("max_abs")
    def max_abs(grouped, batch_rewards):
        return grouped.abs().amax(dim=1, keepdim=True)

    # groups [3, 1] and [2, 6]: centred [1, -1] and [-2, 2], divided by 3 and 6 (eps 0)
    adv = group_advantages(torch.tensor([3.0, 1.0, 2.0, 6.0]), 2, "max_abs", eps=0.0)
    assert torch.allclose(adv, torch.tensor([1 / 3, -1 / 3, -1 / 3, 1 / 3]))
    cfg = Config()
    cfg.train.scale_rewards = "max_abs"
    validate(cfg)


def test_batch_scale_reads_the_global_rewards_given():
    from audiothinker.algos import group_advantages

    # this process: groups [3, 1]; the global batch adds another process's [0, 0]: std of [3, 1, 0, 0] = sqrt(2)
    adv = group_advantages(torch.tensor([3.0, 1.0]), 2, "batch", eps=0.0, batch_rewards=torch.tensor([3.0, 1.0, 0.0, 0.0]))
    assert torch.allclose(adv, torch.tensor([1.0, -1.0]) / 2**0.5)


def test_dapo_normaliser_is_global_tokens_per_process():
    from audiothinker.algos import get_loss_type, global_token_normaliser

    assert get_loss_type("dapo").global_normaliser and not get_loss_type("grpo").global_normaliser
    assert global_token_normaliser(12.0, 2) == 6.0  # DDP averages the 2 processes' gradients
