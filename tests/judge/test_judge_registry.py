"""A judge backend is one decorated builder: config validation, the factory and the CLIs' choices read the registry."""

from __future__ import annotations

import pytest

from audiothinker.judge.base import _BACKENDS, JUDGE_BACKENDS, Judge, Verdict, register_backend


class ConstantJudge(Judge):
    """Every think is consistent and of quality 0.5; the Protocol's defaults give stats/check/last_error/close."""

    def judge(self, requests, consistency=True, quality=True):
        return [Verdict(1.0 if consistency else None, 0.5 if quality else None) for _ in requests]


@pytest.fixture
def dummy_backend():
    assert "rule" in JUDGE_BACKENDS  # the package's own backends are loaded first

    @register_backend("dummy_constant")
    def build(cfg):
        return ConstantJudge()

    yield "dummy_constant"
    del _BACKENDS["dummy_constant"]


def test_the_package_backends_register_themselves():
    assert {"rule", "openai", "local"} <= set(JUDGE_BACKENDS)


def test_a_registered_backend_is_accepted_everywhere(dummy_backend, capsys):
    from audiothinker.cli import build_parser, main
    from audiothinker.config import JudgeConfig, load_config
    from audiothinker.eval.cli import options
    from audiothinker.eval.run import build_eval_judge
    from audiothinker.judge import build_judge

    assert load_config(overrides=[f"judge.backend={dummy_backend}"]).judge.backend == dummy_backend
    assert main(["config", "--set", f"judge.backend={dummy_backend}"]) == 0
    assert f"backend: {dummy_backend}" in capsys.readouterr().out
    judge = build_judge(JudgeConfig(backend=dummy_backend))
    assert isinstance(judge, ConstantJudge)
    assert judge.check().verdict == Verdict(1.0, 0.5) and judge.stats() == {} and judge.last_error() is None
    args = build_parser().parse_args(["eval", "--benchmark", "jsonl", "--data", "d.jsonl", "--model", "m",
                                      "--out", "o", "--judge-backend", dummy_backend])
    assert isinstance(build_eval_judge(options(args)), ConstantJudge)
    assert build_parser().parse_args(["demo", "--judge-backend", dummy_backend]).judge_backend == dummy_backend


def test_an_unknown_backend_is_refused_by_config_factory_and_cli(capsys):
    from audiothinker.cli import build_parser
    from audiothinker.config import ConfigError, JudgeConfig, load_config
    from audiothinker.judge import build_judge

    with pytest.raises(ConfigError, match="judge.backend.*rule"):
        load_config(overrides=["judge.backend=dummy_constant"])
    with pytest.raises(ConfigError, match="judge.backend.*rule"):
        build_judge(JudgeConfig(backend="dummy_constant"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--judge-backend", "dummy_constant"])
    assert "invalid choice" in capsys.readouterr().err


def test_a_name_cannot_be_taken_twice():
    with pytest.raises(ValueError, match="already registered"):
        @register_backend("rule")
        def other(cfg):
            return ConstantJudge()
