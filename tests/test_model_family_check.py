"""Issue 11, class 5: a model.family that does not match the checkpoint's config.json is an error
naming the key and both values, raised before any weights load; an unreadable model path too."""

from __future__ import annotations

import pytest

from audiothinker.config import ConfigError, ModelConfig
from audiothinker.models.loading import load_policy, resolve_tiny


@pytest.mark.parametrize("spec, wrong", [("tiny:qwen2_audio", "qwen2_5_omni"), ("tiny:qwen2_audio", "text"),
                                         ("tiny:text", "qwen2_audio")])
def test_wrong_family_is_refused_before_weights_load(spec, wrong, monkeypatch):
    import transformers

    path = resolve_tiny(spec)
    loads = []
    for cls in ("Qwen2AudioForConditionalGeneration", "AutoModelForCausalLM"):
        real = getattr(transformers, cls)
        monkeypatch.setattr(real, "from_pretrained", classmethod(lambda c, *a, **k: loads.append(c) or 1 / 0))
    expected = spec.split(":")[1]
    with pytest.raises(ConfigError, match=rf"model.family: '{wrong}' does not match the checkpoint .*family '{expected}'"):
        load_policy(ModelConfig(name_or_path=path, family=wrong))
    assert loads == []


def test_right_family_and_auto_load():
    path = resolve_tiny("tiny:text")
    assert load_policy(ModelConfig(name_or_path=path, family="text")).family == "text"


def test_a_directory_without_a_model_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=rf"model.name_or_path: cannot read the model config of {tmp_path}"):
        load_policy(ModelConfig(name_or_path=str(tmp_path)))


def test_cli_train_with_a_wrong_family_is_one_line(tmp_path, capsys):
    from audiothinker.cli import main

    rc = main(["train", "--config", "recipes/tiny_cpu.yaml", "--set", f"output_dir={tmp_path}",
               "--set", "model.family=qwen2_5_omni", "--set", "data.synthetic_size=4"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and err.startswith("error: model.family: 'qwen2_5_omni' does not match the checkpoint")


def test_a_local_path_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(ConfigError, match=rf"^model.name_or_path: {tmp_path / 'nope'} does not exist$"):
        load_policy(ModelConfig(name_or_path=str(tmp_path / "nope")))
