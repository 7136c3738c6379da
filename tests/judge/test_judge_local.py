"""The in-process transformers backend on the tiny judge model (wired to answer "1")."""

from audiothinker.config import JudgeConfig
from audiothinker.judge import Verdict, build_judge
from audiothinker.judge.local import LocalTransport
from audiothinker.judge.scoring import SAMPLE_REQUEST


def test_local_backend_scores_from_logprobs(tiny_judge_dir):
    judge = build_judge(JudgeConfig(backend="local", model=str(tiny_judge_dir), device="cpu", max_concurrency=2))
    report = judge.check()
    assert report.verdict == Verdict(1.0, 0.1) and report.logprobs
    assert judge.judge([SAMPLE_REQUEST] * 3) == [Verdict(1.0, 0.1)] * 3
    s = judge.stats()
    assert s["requests_sent"] == 4 and s["deduplicated"] == 4 and s["errors"] == 0


def test_local_generation_carries_top_logprobs(tiny_judge_dir):
    t = LocalTransport(str(tiny_judge_dir), device="cpu", top_logprobs=5)
    (gen,) = t.generate(["Consistent:"])
    assert gen.text == "1" and gen.tokens == ("1",)
    assert max(gen.top_logprobs[0], key=gen.top_logprobs[0].get) == "1" and len(gen.top_logprobs[0]) <= 5


def test_local_load_failure_is_none_not_a_crash(tmp_path):
    t = LocalTransport(str(tmp_path / "missing"), device="cpu")
    assert t.generate(["x", "y"]) == [None, None]
    assert "missing" in t.last_error() and t.stats()["errors"] == 2
