"""Report tables from hand-made rows (numbers worked out in comments), report files and compare_runs."""

import json
from pathlib import Path

import pytest
from PIL import Image

from audiothinker.eval.report import compare_runs, group_stats, summarize, write_report


def row(i, difficulty, task, mode, correct, format_ok=True, consistency=None):
    return {"id": f"q{i}", "difficulty": difficulty, "task": task, "think_mode": mode, "correct": correct,
            "format_ok": format_ok, "truncated": False, "consistency": consistency}


ROWS = [
    row(0, "easy", "pitch", "no_think", True),
    row(1, "easy", "pitch", "no_think", False),
    row(2, "easy", "count", "think", True, consistency=1.0),
    row(3, "hard", "count", "think", True, consistency=0.0),  # right answer, think concluded otherwise
    row(4, "hard", "count", "none", False, format_ok=False),
    row(5, "hard", "count", "think", None, consistency=None),  # not scored (e.g. AIR-Bench failure), not judged
    row(6, None, "pitch", "no_think", True),  # no difficulty label: in by_task and the total only
]


def assert_valid_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.size[0] > 100 and im.size[1] > 100


def test_summary_numbers():
    s = summarize(ROWS)
    # scored: rows 0-4 and 6 (6); correct: 0, 2, 3, 6 -> 4/6.
    assert (s["n"], s["n_scored"], s["n_correct"]) == (7, 6, 4)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["no_think_rate"] == pytest.approx(4 / 7)  # rows 0, 1, 6 and the untagged row 4: not thinking
    assert s["untagged_rate"] == pytest.approx(1 / 7)  # row 4 on its own
    assert s["think_rate"] == pytest.approx(3 / 7)  # rows 2, 3, 5
    assert s["format_rate"] == pytest.approx(6 / 7)  # all but row 4
    assert s["inconsistency_rate"] == pytest.approx(1 / 2) and s["n_judged"] == 2  # rows 2 (ok), 3 (inconsistent)
    assert list(s["by_difficulty"]) == ["easy", "hard"]  # paper order; the unlabeled row is left out
    easy, hard = s["by_difficulty"]["easy"], s["by_difficulty"]["hard"]
    assert (easy["n"], easy["accuracy"], easy["no_think_rate"]) == (3, pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert easy["inconsistency_rate"] == 0.0
    # hard: scored 3 and 4 -> 1/2; no-think only the untagged 4 -> 1/3; judged only 3 -> inconsistent 1/1.
    assert (hard["n"], hard["n_scored"], hard["accuracy"]) == (3, 2, 0.5)
    assert (hard["no_think_rate"], hard["untagged_rate"]) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert easy["untagged_rate"] == 0.0
    assert hard["inconsistency_rate"] == 1.0
    assert list(s["by_task"]) == ["count", "pitch"]
    assert s["by_task"]["pitch"]["n"] == 3 and s["by_task"]["pitch"]["accuracy"] == pytest.approx(2 / 3)


def test_empty_and_unjudged():
    s = group_stats([])
    assert s["n"] == 0 and s["accuracy"] == 0.0 and s["inconsistency_rate"] is None
    assert summarize([row(0, "easy", "t", "think", True)])["inconsistency_rate"] is None


def test_write_report_files(tmp_path):
    s = summarize(ROWS)
    official = {"total": [4, 6], "task": {"sound": [4, 6]}, "difficulty": {"easy": [2, 3]}}
    paths = write_report(tmp_path, s, ROWS, "demo run", official=official, run={"model": "m"})
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["n_correct"] == 4 and report["official"]["total"] == [4, 6] and report["rows"] == 7
    md = (tmp_path / "report.md").read_text()
    assert "# demo run" in md and "| easy | 3 | 66.67 | 66.67 | 0.00 |" in md and "| **total** | | **4** | **6** |" in md
    # hard: no-think 1/3, all of it the untagged row 4; the header lines name both rates.
    assert "| hard | 3 | 50.00 | 33.33 | 33.33 |" in md
    assert "- no-think rate: 57.14% (every completion not in think mode)" in md  # 4/7
    assert "- untagged outputs: 14.29%" in md  # 1/7
    assert report["summary"]["untagged_rate"] == pytest.approx(1 / 7)
    assert "50.00% of 2 judged" in md
    names = {"accuracy_by_task", "accuracy_by_difficulty", "no_think_rate_by_difficulty", "inconsistency_rate"}
    assert names <= set(paths) and set(report["plots"]) == {n + ".png" for n in names}
    for name in names:
        assert_valid_png(paths[name])


def test_report_without_difficulty_or_judge(tmp_path):
    rows = [row(i, None, "speech", "no_think", i % 2 == 0) for i in range(4)]  # MMAR-like: no difficulty
    paths = write_report(tmp_path, summarize(rows), rows, "mmar")
    assert set(p.name for p in tmp_path.glob("*.png")) == {"accuracy_by_task.png"}
    assert "not measured" in paths["md"].read_text()


def test_compare_runs(tmp_path):
    cold = summarize([row(0, "easy", "t", "think", False), row(1, "hard", "t", "think", True)])
    atar = summarize([row(0, "easy", "t", "no_think", True), row(1, "hard", "t", "think", True)])
    paths = compare_runs({"cold-start": cold, "atar_cr_tr": {"summary": atar}}, tmp_path)  # a report.json dict works too
    md = paths["md"].read_text()
    assert "| run | n | accuracy % | acc easy % | acc hard % | no-think % |" in md
    assert "| cold-start | 2 | 50.00 | 0.00 | 100.00 | 0.00 | 0.00 | 0.00 | 0.00 | 100.00 |" in md
    assert "| atar_cr_tr | 2 | 100.00 | 100.00 | 100.00 | 50.00 | 100.00 | 0.00 | 0.00 | 100.00 |" in md
    untagged = summarize([row(0, "easy", "t", "none", False, format_ok=False), row(1, "hard", "t", "think", True)])
    md = compare_runs({"untagged": untagged}, tmp_path / "untagged")["md"].read_text()
    # no-think: all 50, easy 100 (the untagged row), hard 0; untagged 50; format 50.
    assert "| untagged | 2 | 50.00 | 0.00 | 100.00 | 50.00 | 100.00 | 0.00 | 50.00 | 50.00 | - |" in md
    assert_valid_png(paths["accuracy"])
    assert_valid_png(paths["no_think"])
    assert set(json.loads(paths["json"].read_text())) == {"cold-start", "atar_cr_tr"}
    with pytest.raises(ValueError):
        compare_runs({}, tmp_path)


def test_training_eval_logs_no_think_and_untagged_rates(tmp_path, monkeypatch):
    """PeriodicEval (training-time eval): metrics and the rows/summary files carry both rates."""
    import types

    import audiothinker.eval.run as runner
    from audiothinker.config import load_config
    from audiothinker.eval.run import EvalResult, score_completions
    from audiothinker.trainer.evaluation import PeriodicEval, flat_metrics

    texts = ["<answer>x</answer>", "<think>t</think><answer>x</answer>", "x, untagged"]

    def canned(policy, model, records, prompt_kind, **kwargs):  # no model: three known completions
        rows = score_completions(records, texts[: len(records)])
        return EvalResult(summarize(rows), rows)

    monkeypatch.setattr(runner, "evaluate_policy", canned)
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tiny_cpu.yaml"
    cfg = load_config(recipe, [f"output_dir={tmp_path}", "eval.eval_steps=1", "eval.limit=3"])
    acc = types.SimpleNamespace(process_index=0, num_processes=1, is_main_process=True)
    metrics = PeriodicEval(cfg, acc, policy=None, judge=None).run(1, model=None)
    # Rows 0 (no-think shape) and 2 (untagged) do not think: 2/3; the untagged row alone: 1/3.
    assert metrics["eval/no_think_rate"] == pytest.approx(2 / 3)
    assert metrics["eval/untagged_rate"] == pytest.approx(1 / 3)
    assert metrics["eval/think_rate"] == pytest.approx(1 / 3)
    rows = [json.loads(line) for line in (tmp_path / "eval" / "step-000001.jsonl").read_text().splitlines()]
    assert [r["think_mode"] for r in rows] == ["no_think", "think", "none"]
    summary = json.loads((tmp_path / "eval" / "step-000001.summary.json").read_text())
    assert summary["untagged_rate"] == pytest.approx(1 / 3)
    # Per difficulty, both rates are logged too (one item per level in the synthetic test split).
    levels = {r["difficulty"] for r in rows}
    assert levels and None not in levels
    for level in levels:
        assert f"eval/{level}/no_think_rate" in metrics and f"eval/{level}/untagged_rate" in metrics
    # Every metric comes from the summary, besides the count of held-out records skipped (none here).
    assert metrics.pop("eval/skipped") == 0
    assert flat_metrics(summary) == metrics
