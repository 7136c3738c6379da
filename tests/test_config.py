"""Config: YAML + --set overrides, validation errors that name the key, the generated reference."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from audiothinker.config import Config, ConfigError, load_config, reference, to_dict

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny_cpu.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_defaults_follow_the_paper():
    cfg = load_config()
    assert cfg.rollout.num_generations == 8
    assert cfg.train.beta == 0.04
    assert cfg.train.learning_rate == 1e-6
    assert cfg.train.epsilon == 0.2
    assert cfg.rollout.temperature == 1.0
    assert cfg.max_steps == 1000
    assert (cfg.rollout.max_prompt_length, cfg.rollout.max_new_tokens) == (512, 256)
    assert cfg.reward.preset == "atar_cr_tr"


def test_yaml_then_overrides(tmp_path):
    path = _write(
        tmp_path,
        "max_steps: 7\ntrain:\n  learning_rate: 1\n  beta: 0.1\nrollout:\n  num_generations: 4\n",
    )
    cfg = load_config(path, ["train.beta=0.02", "rollout.temperature=0.7", "log.report_to=[jsonl]",
                             "train.epsilon_high=0.28", "output_dir=/x/y"])
    assert cfg.max_steps == 7
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)  # int -> float
    assert cfg.train.beta == 0.02  # the override wins over the file
    assert cfg.rollout.num_generations == 4  # the file wins over the default
    assert cfg.rollout.temperature == 0.7
    assert cfg.log.report_to == ["jsonl"]
    assert cfg.train.epsilon_high == 0.28
    assert cfg.output_dir == "/x/y"
    # Untouched keys keep their defaults.
    assert cfg.train.loss_type == "grpo"


def test_scientific_notation_without_a_dot(tmp_path):
    # PyYAML (YAML 1.1) reads "1e-6" as a string; the paper's lr is written exactly like that.
    cfg = load_config(_write(tmp_path, "train:\n  learning_rate: 1e-6\n"), ["train.epsilon_high=2.8E-1"])
    assert cfg.train.learning_rate == 1e-6
    assert cfg.train.epsilon_high == 0.28
    assert load_config(overrides=["train.learning_rate=5e-5"]).train.learning_rate == 5e-5
    with pytest.raises(ConfigError, match=r"train\.beta"):
        load_config(overrides=["train.beta=e-5"])
    with pytest.raises(ConfigError, match=r"model\.name_or_path"):  # only float fields convert
        load_config(overrides=["model.name_or_path=1"])


def test_optional_can_be_set_to_null():
    cfg = load_config(overrides=["train.epsilon_high=0.3", "train.epsilon_high=null", "save_total_limit=null"])
    assert cfg.train.epsilon_high is None and cfg.save_total_limit is None


def test_recipe_loads():
    cfg = load_config(RECIPE)
    assert cfg.model.name_or_path == "tiny:qwen2_audio"
    assert cfg.judge.backend == "rule"


@pytest.mark.parametrize(
    "override, key, what",
    [
        ("train.learning_rate=fast", "train.learning_rate", "number"),
        ("rollout.num_generations=2.5", "rollout.num_generations", "integer"),
        ("rollout.num_generations=true", "rollout.num_generations", "integer"),  # a bool is not an int
        ("log.progress=3", "log.progress", "true or false"),
        ("model.name_or_path=3", "model.name_or_path", "string"),
        ("log.report_to=jsonl", "log.report_to", "list"),
        ("model.lora_target_modules=[q_proj, 3]", "model.lora_target_modules[1]", "string"),
        ("train.epsilon_high=wide", "train.epsilon_high", "number"),
    ],
)
def test_type_errors_name_the_key(override, key, what):
    with pytest.raises(ConfigError) as e:
        load_config(overrides=[override])
    assert key in str(e.value) and what in str(e.value)


def test_type_error_in_yaml_names_the_key(tmp_path):
    path = _write(tmp_path, "train:\n  beta: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"train\.beta"):
        load_config(path)


@pytest.mark.parametrize(
    "override, key",
    [("train.bta=1", "train.bta"), ("nonsense=1", "nonsense"), ("rollout.engine.x=1", "rollout.engine")],
)
def test_unknown_keys_name_the_dotted_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=[override])


def test_unknown_key_in_yaml(tmp_path):
    path = _write(tmp_path, "judge:\n  backend: rule\n  modle: x\n")
    with pytest.raises(ConfigError, match=r"'judge\.modle'"):
        load_config(path)


def test_section_given_a_scalar(tmp_path):
    with pytest.raises(ConfigError, match="train"):
        load_config(_write(tmp_path, "train: 3\n"))


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.loss_type=ppo", "train.loss_type"),
        ("reward.preset=atar_tr", "reward.preset"),
        ("train.scale_rewards=global", "train.scale_rewards"),
        ("rollout.engine=sglang", "rollout.engine"),
        ("model.dtype=int8", "model.dtype"),
        ("judge.backend=gpt", "judge.backend"),
        ("eval.prompt=cot", "eval.prompt"),
        ("train.mode_advantage=token", "train.mode_advantage"),
    ],
)
def test_choices_are_validated(override, key):
    with pytest.raises(ConfigError) as e:
        load_config(overrides=[override])
    assert key in str(e.value)


@pytest.mark.parametrize(
    "override, key",
    [
        ("rollout.num_generations=1", "rollout.num_generations"),  # GRPO needs a group
        ("max_steps=0", "max_steps"),
        ("rollout.temperature=0", "rollout.temperature"),
        ("train.beta=-0.1", "train.beta"),
        ("save_steps=-1", "save_steps"),
        ("data.format=jsonl", "data.train_file"),  # a file format without a file
        ("judge.backend=openai", "judge.base_url"),
    ],
)
def test_value_checks_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(overrides=[override])


def test_bad_files_and_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="key=value"):
        load_config(overrides=["train.beta"])


def _leaves(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _leaves(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_reference_documents_every_leaf():
    rows = reference()
    keys = [k for k, _, _ in rows]
    assert keys == _leaves(Config)
    assert len(keys) == len(set(keys))
    undocumented = [k for k, _, doc in rows if not doc.strip()]
    assert undocumented == []
    # Defaults are shown as Python literals of the default config.
    ref = {k: d for k, d, _ in rows}
    assert ref["train.beta"] == "0.04"
    assert ref["rollout.num_generations"] == "8"


def test_to_dict_round_trips_through_overrides(tmp_path):
    import yaml

    cfg = load_config(overrides=["train.beta=0.5", "model.lora=true"])
    path = _write(tmp_path, yaml.safe_dump(to_dict(cfg)))
    assert load_config(path) == cfg


def test_warmup_stable_decay_needs_a_decay_ratio():
    with pytest.raises(ConfigError, match="train.lr_decay_ratio: must be > 0 with train.lr_scheduler=warmup_stable_decay"):
        load_config(overrides=["train.lr_scheduler=warmup_stable_decay"])
    assert load_config(overrides=["train.lr_scheduler=warmup_stable_decay", "train.lr_decay_ratio=0.25"]).train.lr_decay_ratio == 0.25


def test_freeze_parameters_with_lora_is_a_config_error():
    with pytest.raises(ConfigError, match="model.freeze_parameters: has no effect with model.lora=true"):
        load_config(overrides=["model.lora=true", "model.freeze_parameters=[multi_modal_projector]"])
    assert load_config(overrides=["model.freeze_parameters=[multi_modal_projector]"]).model.freeze_parameters == [
        "multi_modal_projector"]
