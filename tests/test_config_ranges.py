"""Issue 11, class 6: every config value range-checked at load with an error naming the key; path
mistakes found before work; every CLI error one line (`error: ...`, exit 2), traceback only with --debug."""

from __future__ import annotations

import pytest

from audiothinker.cli import main
from audiothinker.config import ConfigError, check_paths, load_config

BAD = [
    ("train.learning_rate=-1", "train.learning_rate: must be > 0"),
    ("train.learning_rate=0", "train.learning_rate: must be > 0"),
    ("train.learning_rate=.nan", "train.learning_rate: must be > 0"),
    ("rollout.top_p=0", "rollout.top_p: must be in (0, 1]"),
    ("rollout.top_p=1.5", "rollout.top_p: must be in (0, 1]"),
    ("rollout.top_k=-1", "rollout.top_k: must be >= 0"),
    ("rollout.temperature=0", "rollout.temperature: must be > 0"),
    ("rollout.num_generations=1", "rollout.num_generations: must be >= 2"),
    ("rollout.max_prompt_length=0", "rollout.max_prompt_length: must be >= 1"),
    ("rollout.vllm_gpu_memory_utilization=1.2", "rollout.vllm_gpu_memory_utilization: must be in (0, 1]"),
    ("train.epsilon=-0.1", "train.epsilon: must be in [0, 1)"),
    ("train.epsilon=1", "train.epsilon: must be in [0, 1)"),
    ("train.epsilon_high=0.1", "train.epsilon_high: 0.1 is below train.epsilon=0.2"),
    ("train.epsilon_high=-1", "train.epsilon_high: must be >= 0"),
    ("train.beta=-0.01", "train.beta: must be >= 0"),
    ("train.decision_beta=-0.01", "train.decision_beta: must be >= 0"),
    ("train.max_grad_norm=-1", "train.max_grad_norm: must be >= 0"),
    ("train.warmup_steps=-1", "train.warmup_steps: must be >= 0"),
    ("train.lr_decay_ratio=1.5", "train.lr_decay_ratio: must be in [0, 1]"),
    ("train.decision_weight=0", "train.decision_weight: must be > 0"),
    ("train.decision_weight=4", "train.decision_weight: 4.0 needs train.mode_advantage=split"),
    ("save_total_limit=0", "save_total_limit: must be >= 1"),
    ("save_steps=-1", "save_steps: must be >= 0"),
    ("stop_at_step=0", "stop_at_step: must be >= 1"),
    ("stop_at_step=2000", "stop_at_step: 2000 is beyond max_steps=1000"),
    ("max_steps=0", "max_steps: must be >= 1"),
    ("data.max_audio_seconds=0", "data.max_audio_seconds: must be > 0"),
    ("model.audio_cache_gb=0", "model.audio_cache_gb: must be > 0"),
    ("model.audio_cache_gb=.nan", "model.audio_cache_gb: must be > 0"),
    ("data.max_audio_seconds=-1", "data.max_audio_seconds: must be > 0"),
    ("data.synthetic_size=0", "data.synthetic_size: must be >= 1"),
    ("model.lora_r=0", "model.lora_r: must be >= 1"),
    ("model.lora_dropout=1", "model.lora_dropout: must be in [0, 1)"),
    ("judge.timeout=0", "judge.timeout: must be > 0"),
    ("judge.max_retries=-1", "judge.max_retries: must be >= 0"),
    ("judge.max_concurrency=0", "judge.max_concurrency: must be >= 1"),
    ("judge.max_down_steps=-1", "judge.max_down_steps: must be >= 0"),
    ("log.report_to=[jsonl, mlflow]", "log.report_to[1]: unknown tracker 'mlflow'"),
    ("log.logging_steps=0", "log.logging_steps: must be >= 1"),
    ("eval.batch_size=0", "eval.batch_size: must be >= 1"),
    ("eval.limit=0", "eval.limit: must be >= 1"),
    ("output_dir=' '", "output_dir: must not be empty"),
]


@pytest.mark.parametrize("override, message", BAD)
def test_out_of_range_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert str(e.value).startswith(message)


def test_defaults_and_recipes_pass():
    load_config(None, [])
    for recipe in ("recipes/tiny_cpu.yaml",):
        load_config(recipe, [])
    load_config(None, ["save_total_limit=null", "stop_at_step=1", "train.epsilon_high=0.28", "judge.max_down_steps=0"])
    load_config(None, ["train.beta=0", "train.decision_beta=0"])  # no KL anywhere: no reference needed


def test_decision_beta_needs_a_reference():
    with pytest.raises(ConfigError, match=r"^train.decision_beta: 0.1 needs train.beta > 0"):
        load_config(None, ["train.beta=0", "train.decision_beta=0.1"])


def test_eval_steps_without_a_held_out_set(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    with pytest.raises(ConfigError, match=r"^eval.eval_steps: evaluation during training needs a held-out set"):
        load_config(None, ["data.format=jsonl", f"data.train_file={data}", "eval.eval_steps=5"])
    load_config(None, ["data.format=jsonl", f"data.train_file={data}", "eval.eval_steps=5", f"eval.file={data}"])
    load_config(None, ["eval.eval_steps=5"])  # synthetic data generates its test split


def test_path_checks(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        ([f"output_dir={a_file / 'run'}"], f"output_dir: {a_file / 'run'} cannot be created: {a_file} is a file"),
        ([f"output_dir={a_file}"], f"output_dir: {a_file} cannot be created: {a_file} is a file"),
        ([f"model.name_or_path={tmp_path / 'no_such_model'}"], "model.name_or_path: "),
        (["data.format=jsonl", f"data.train_file={tmp_path / 'nope.jsonl'}"], "data.train_file: "),
        ([f"eval.file={tmp_path}"], f"eval.file: {tmp_path} is not a file"),
        ([f"data.audio_root={a_file}"], f"data.audio_root: {a_file} is not a directory"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError) as e:
            check_paths(load_config(None, overrides))
        assert str(e.value).startswith(message), (overrides, str(e.value))
    check_paths(load_config(None, [f"output_dir={tmp_path / 'new' / 'run'}", "model.name_or_path=Qwen/Qwen2-Audio-7B-Instruct"]))


CLI_CASES = [
    (["--set", "train.learning_rate=-1"], "error: train.learning_rate: must be > 0, got -1.0"),
    (["--set", "log.report_to=[nope]"], "error: log.report_to[0]: unknown tracker 'nope'"),
    (["--set", "model.name_or_path=/no/such/model"], "error: model.name_or_path: /no/such/model does not exist"),
]


@pytest.mark.parametrize("extra, first", CLI_CASES)
def test_train_cli_errors_are_one_line_exit_2(extra, first, capsys):
    rc = main(["train", "--config", "recipes/tiny_cpu.yaml", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(first) and err.count("\n") == 1 and "Traceback" not in err


def test_output_dir_under_a_file_cli(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc = main(["train", "--config", "recipes/tiny_cpu.yaml", "--set", f"output_dir={tmp_path / 'f' / 'run'}"])
    assert rc == 2 and capsys.readouterr().err == f"error: output_dir: {tmp_path / 'f' / 'run'} cannot be created: {tmp_path / 'f'} is a file\n"


def test_json_path_under_a_file_is_one_line(tmp_path, capsys):
    """`score --json` into a path below a regular file: the OSError becomes one line naming the path."""
    preds = tmp_path / "preds.json"
    preds.write_text('[{"id": "a", "question": "q?", "choices": ["x", "y"], "answer": "x", "model_output": "x",'
                     ' "task": "sound", "difficulty": "easy"}]')
    (tmp_path / "f").write_text("x")
    rc = main(["score", "--benchmark", "mmau", str(preds), "--json", str(tmp_path / "f" / "out.json")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and str(tmp_path / "f") in err and err.count("\n") == 1


def test_debug_flag_shows_the_traceback(capsys):
    rc = main(["--debug", "train", "--config", "recipes/tiny_cpu.yaml", "--set", "train.learning_rate=-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback (most recent call last)" in err and err.rstrip().endswith("must be > 0, got -1.0")
    rc = main(["train", "--config", "recipes/tiny_cpu.yaml", "--set", "train.learning_rate=-1", "--debug"])
    assert rc == 2 and "Traceback" in capsys.readouterr().err


def test_an_unexpected_error_is_one_line_with_a_hint(monkeypatch, capsys):
    import audiothinker.trainer.grpo as grpo

    def boom(cfg, resume=False):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(grpo, "train", boom)
    rc = main(["train", "--config", "recipes/tiny_cpu.yaml", "--set", "output_dir=/tmp/at-unexpected"])
    assert rc == 2
    assert capsys.readouterr().err == "error: RuntimeError: something broke (rerun with --debug for the traceback)\n"


def test_more_config_mistakes_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"^--set train.beta=\[: not a YAML value"):
        load_config(None, ["train.beta=["])
    with pytest.raises(ConfigError, match=rf"^config file {tmp_path} is not a file"):
        load_config(tmp_path, [])
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"seed: 1 # caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{bad}: cannot read the config file"):
        load_config(bad, [])
    with pytest.raises(ConfigError, match=r"^model.lora_target_modules: empty with model.lora=true"):
        load_config(None, ["model.lora=true", "model.lora_target_modules=[]"])


def test_a_tracker_that_is_not_installed_is_named(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"^log.report_to\[1\]: tracker 'wandb' is not installed"):
        check_paths(load_config(None, ["log.report_to=[jsonl, wandb]"]))


@pytest.mark.parametrize("flag, value, message", [
    ("--temperature", "0", "must be > 0, got 0"), ("--top-p", "1.5", "must be in (0, 1], got 1.5"),
    ("--top-k", "-2", "must be >= 0, got -2"),
])
def test_eval_sampling_flags_are_range_checked(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--benchmark", "jsonl", "--data", "x.jsonl", "--model", "tiny:qwen2_audio", "--out",
              str(tmp_path), flag, value])
    assert e.value.code == 2 and message in capsys.readouterr().err
