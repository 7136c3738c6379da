"""`audiothinker demo` end to end at the smallest size (no assertion on what it learns)."""

import json

import pytest

from audiothinker.demo import PLANS, targets


@pytest.mark.slow
def test_demo_smoke_writes_the_report(tmp_path, capsys):
    from audiothinker.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--plan", "smoke", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for section in ("## Results", "## Targets", "## Does thinking help", "rl_curves.png"):
        assert section in report
    for png in ("rl_curves.png", "compare_accuracy_by_difficulty.png", "compare_no_think_rate_by_difficulty.png"):
        assert (out / png).stat().st_size > 1000
    data = json.loads((out / "report.json").read_text())
    assert {"cold_start", "cold_start_no_think", "grpo", "grpo_adaptive", "atar_cr_tr"} == set(data["summaries"])
    assert len(data["targets"]) == 5
    for preset in ("grpo", "atar_cr_tr"):
        assert (out / preset / "final").is_dir() and (out / preset / "metrics.jsonl").is_file()
    assert "| target | measured | reached |" in capsys.readouterr().out

    # A second run with the same plan reuses every stage and rewrites the report.
    assert main(["demo", "--plan", "smoke", "--out", str(out)]) == 0
    assert "reusing cold start" in capsys.readouterr().out


def _summary(acc, nt):
    levels = ("easy", "medium", "hard")
    return {"accuracy": sum(acc) / 3, "no_think_rate": sum(nt) / 3, "inconsistency_rate": None,
            "by_difficulty": {d: {"accuracy": a, "no_think_rate": n} for d, a, n in zip(levels, acc, nt)}}


def test_targets_are_computed_from_the_summaries():
    cold = {**_summary([0.9, 0.6, 0.6], [0.5, 0.5, 0.45]), "inconsistency_rate": 0.2}
    grpo = _summary([0.95, 0.6, 0.6], [1.0, 1.0, 1.0])
    atar = {**_summary([0.95, 0.7, 0.7], [0.9, 0.5, 0.2]), "inconsistency_rate": 0.05}
    checks = targets({"cold_start": cold, "grpo": grpo, "atar_cr_tr": atar})
    assert [c["ok"] for c in checks] == [True, True, True, True, True]
    assert checks[0]["value"] == "+0.70" and checks[1]["value"] == "+0.05"
    flat = targets({"cold_start": cold, "grpo": grpo, "atar_cr_tr": {**atar, "inconsistency_rate": 0.3}})
    assert flat[-1]["ok"] is False


def test_plans_grow_from_smoke_to_full():
    assert PLANS["smoke"].sft_steps < PLANS["quick"].sft_steps < PLANS["full"].sft_steps
    assert PLANS["quick"].rl_steps < PLANS["full"].rl_steps


@pytest.mark.slow
def test_demo_quick_finishes_and_writes_the_report(tmp_path):
    """The issue's CI smoke test: `audiothinker demo --quick` end to end (about 2 minutes on 2 cores)."""
    from audiothinker.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    data = json.loads((out / "report.json").read_text())
    assert set(data["summaries"]) >= {"cold_start", "grpo", "atar_cr_tr"}
    assert (out / "report.md").stat().st_size > 0 and (out / "rl_curves.png").stat().st_size > 1000
