"""Issue 11: training through a real `transformers serve` judge that fails 30 % of requests, and one
that is down for several steps. A missing score is never a 0; a judge that stays down stops the run.

The tiny judge answers "1" to everything (R_c = 1.0, R_t = 0.1), so any completion the judge scored
carries exactly those values: a 0 in their place could only come from a failure counted as 0.
"""

from __future__ import annotations

import json

import pytest

from audiothinker.config import load_config

from test_judge_train import CannedEngine  # noqa: E402 (tests/judge is on sys.path)


def _cfg(tmp_path, proxy, tiny_judge_dir, *extra):
    return load_config("recipes/tiny_cpu.yaml", [
        f"output_dir={tmp_path / 'run'}", "save_steps=1", "log.progress=false", "log.report_to=[jsonl]",
        "data.synthetic_size=8", "rollout.max_new_tokens=48", "train.per_device_batch_size=2",
        "train.gradient_accumulation_steps=1", "reward.preset=atar_cr_tr", "judge.backend=openai",
        f"judge.base_url={proxy.url}", f"judge.model={tiny_judge_dir}", "judge.max_retries=0", "judge.timeout=20",
        "judge.cache=false", "log.num_samples=8", *extra,
    ])


def _break_after_check(monkeypatch, proxy, **faults):
    """The start-up check sees a healthy judge; every rollout after it meets `faults`."""
    import audiothinker.trainer.grpo as grpo

    build = grpo.build_judge_for

    def build_then_break(cfg, preset):
        judge = build(cfg, preset)
        proxy.faults = type(proxy.faults)(**faults)
        return judge

    monkeypatch.setattr(grpo, "build_judge_for", build_then_break)


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def canned(monkeypatch):
    import audiothinker.trainer.step as step_module

    monkeypatch.setattr(step_module, "build_engine", lambda name, policy, options=None: CannedEngine(policy))


@pytest.mark.server
def test_judge_failing_30_percent_never_scores_a_failure_as_zero(canned, fault_proxy, tiny_judge_dir, tmp_path, monkeypatch):
    import audiothinker.trainer.grpo as grpo

    proxy = fault_proxy()
    _break_after_check(monkeypatch, proxy, error500=0.3, seed=11)
    final = grpo.train(_cfg(tmp_path, proxy, tiny_judge_dir, "max_steps=3"))
    assert (final / "model.safetensors").exists()
    steps = _rows(tmp_path / "run" / "metrics.jsonl")
    assert [s["step"] for s in steps] == [1, 2, 3]
    missing = sum(s["reward/no_score_consistency"] + s["reward/no_score_think_quality"] for s in steps)
    assert missing > 0, "30 % of requests got a 500 with no retry: some scores must be missing"
    assert all(s["judge/down"] == 0 for s in steps)  # partial failures are not an outage
    samples = _rows(tmp_path / "run" / "samples.jsonl")
    think = [s for s in samples if s["think"]]
    assert think
    for s in think:  # scored or filled from the group's scores: the judge's values, never a 0 for a failure
        assert s["r_t"] is None or s["r_t"] == pytest.approx(0.1)
        if s["correct"]:
            assert s["r_c_eff"] is None or s["r_c_eff"] == 1.0


@pytest.mark.server
def test_judge_down_for_several_steps_stops_the_run_and_resume_continues(
    canned, fault_proxy, tiny_judge_dir, tmp_path, monkeypatch, capsys
):
    import audiothinker.trainer.grpo as grpo
    from audiothinker.judge.scoring import JudgeUnavailableError

    proxy = fault_proxy()
    _break_after_check(monkeypatch, proxy, status=503)
    cfg = _cfg(tmp_path, proxy, tiny_judge_dir, "max_steps=4", "judge.max_down_steps=2")
    with pytest.raises(JudgeUnavailableError, match=r"no score in 2 consecutive steps \(1-2.*--resume"):
        grpo.train(cfg)
    err = capsys.readouterr().err
    assert "warning: step 1: the judge returned no score" in err and "step 2" in err
    steps = _rows(tmp_path / "run" / "metrics.jsonl")
    assert [s["step"] for s in steps] == [1, 2]  # both down steps logged, then the stop
    assert [s["judge/down"] for s in steps] == [1.0, 1.0]
    # No R_t was obtained: no R_t metric, rather than a mean of 0.0 that would read as judged zeros.
    assert all("reward/think_quality_mean" not in s for s in steps)
    samples = _rows(tmp_path / "run" / "samples.jsonl")
    assert all(s["r_t"] is None for s in samples if s["think"])  # left out, not 0
    assert all(s["r_c_eff"] is None for s in samples if s["correct"] and s["think"])
    assert (tmp_path / "run" / "checkpoints" / "step-000002").is_dir()

    # The judge is back: --resume continues from the stop, with no duplicate metrics rows.
    monkeypatch.undo()
    import audiothinker.trainer.step as step_module

    monkeypatch.setattr(step_module, "build_engine", lambda name, policy, options=None: CannedEngine(policy))
    proxy.faults = type(proxy.faults)()
    grpo.train(cfg, resume=True)
    steps = _rows(tmp_path / "run" / "metrics.jsonl")
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert [s["judge/down"] for s in steps[2:]] == [0.0, 0.0]
