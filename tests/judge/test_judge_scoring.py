"""Cache, dedup and failure counting of LLMJudge with a fake transport; factory and CLI glue."""

import argparse
import logging

import pytest

from audiothinker.config import ConfigError, JudgeConfig
from audiothinker.judge import JudgeRequest, LLMJudge, Verdict, build_judge, stats_delta
from audiothinker.judge.cli import add_parser, run
from audiothinker.judge.prompts import Generation


class FakeTransport:
    """Answers "1" to R_c prompts and "seven" to R_t prompts; fails prompts containing "FAIL"."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def generate(self, prompts):
        self.calls.append(prompts)
        out = []
        for p in prompts:
            case = p.split("### Case", 1)[1]
            if "FAIL" in case:
                out.append(None)
            elif "GARBLED" in case:
                out.append(Generation("I am not sure"))
            else:
                out.append(Generation("1" if p.endswith("Consistent:") else " seven"))
        return out

    def stats(self):
        return {"requests_sent": sum(map(len, self.calls))}

    def describe(self):
        return "fake"

    def last_error(self):
        return "injected"

    def close(self):
        pass


def req(think: str, answer: str = "dog") -> JudgeRequest:
    return JudgeRequest("Which animal?", ("dog", "cat"), think, answer)


A, B, C = req("It barks, so dog."), req("It meows, so cat.", "cat"), req("Barking: dog.")


def test_dedup_within_batch_and_cache_across_batches():
    t = FakeTransport()
    judge = LLMJudge(t)
    batch = [A, B, A, C, A, B, C, C]  # 3 unique
    verdicts = judge.judge(batch)
    assert verdicts == [Verdict(1.0, 0.7)] * 8
    assert len(t.calls) == 1 and len(t.calls[0]) == 6  # 3 unique x 2 components, in one call
    s1 = judge.stats()
    assert (s1["requests"], s1["deduplicated"], s1["cache_hits"], s1["prompts_scored"]) == (16, 10, 0, 6)

    assert judge.judge(batch) == verdicts
    assert len(t.calls) == 1  # all answered from the cache
    d = stats_delta(judge.stats(), s1)
    assert (d["requests"], d["cache_hits"], d["deduplicated"], d["prompts_scored"]) == (16, 6, 10, 0)


def test_the_cache_keeps_the_most_recently_used_scores_up_to_its_size():
    t = FakeTransport()
    judge = LLMJudge(t, cache_size=2)
    judge.judge([A, B], quality=False)  # cached: A, B
    judge.judge([A], quality=False)  # a hit: A is now the most recently used
    judge.judge([C], quality=False)  # C in, B (least recently used) out
    assert judge.stats()["cache_hits"] == 1
    judge.judge([A, C], quality=False)
    assert judge.stats()["cache_hits"] == 3 and len(t.calls) == 2
    judge.judge([B], quality=False)  # evicted: scored again
    assert len(t.calls) == 3 and t.calls[2][0].endswith("Consistent:") and judge.stats()["prompts_scored"] == 4


def test_without_cache_every_request_is_sent():
    t = FakeTransport()
    judge = LLMJudge(t, cache=False)
    assert judge.judge([A, A, B], quality=False) == [Verdict(1.0, None)] * 3
    assert len(t.calls[0]) == 3
    judge.judge([A, A, B], quality=False)
    assert judge.stats()["prompts_scored"] == 6 and judge.stats()["cache_hits"] == 0


def test_components_asked_for_only():
    t = FakeTransport()
    judge = LLMJudge(t)
    assert judge.judge([A], consistency=False) == [Verdict(None, 0.7)]
    assert all(p.endswith("Score:") for p in t.calls[0])
    s = judge.stats()
    assert s["failures_consistency"] == 0 and s["failures_quality"] == 0
    assert judge.judge([A]) == [Verdict(1.0, 0.7)]  # R_t from the cache, R_c sent now
    assert len(t.calls[1]) == 1 and t.calls[1][0].endswith("Consistent:")
    assert judge.judge([]) == []


def test_failures_are_none_counted_and_not_cached(caplog):
    t = FakeTransport()
    judge = LLMJudge(t)
    bad, garbled = req("FAIL here"), req("GARBLED here")
    with caplog.at_level(logging.WARNING):
        verdicts = judge.judge([A, bad, bad, garbled])
    assert verdicts == [Verdict(1.0, 0.7), Verdict(None, None), Verdict(None, None), Verdict(None, None)]
    s = judge.stats()
    assert s["failures_consistency"] == 3 and s["failures_quality"] == 3
    assert s["unparseable"] == 2  # the garbled one, both components
    assert "4 of 6 scores missing" in caplog.text
    judge.judge([bad])
    assert len(t.calls[-1]) == 2  # failures were not cached: asked again


def test_rule_backend_has_the_same_surface():
    judge = build_judge(JudgeConfig(backend="rule"))
    verdicts = judge.judge([A, B], quality=False)
    assert [v.quality for v in verdicts] == [None, None] and verdicts[0].consistency == 1.0
    assert judge.stats()["requests"] == 2
    assert judge.check().verdict.consistency == 1.0
    judge.close()


def test_factory_errors_name_the_key():
    with pytest.raises(ConfigError, match="judge.base_url"):
        build_judge(JudgeConfig(backend="openai"))
    with pytest.raises(ConfigError, match="judge.backend.*local"):
        build_judge(JudgeConfig(backend="gpt"))
    with pytest.raises(ConfigError, match="judge.max_concurrency"):
        build_judge(JudgeConfig(backend="openai", base_url="http://x/v1", max_concurrency=0))


def test_api_key_stays_out_of_repr_and_stats(monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-very-secret-123")
    judge = build_judge(JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1", api_key_env="JUDGE_TEST_KEY"))
    for text in (repr(judge), repr(judge.transport), str(judge.stats()), judge.transport.describe()):
        assert "sk-very-secret-123" not in text
    assert "JUDGE_TEST_KEY" in repr(judge.transport)


def test_unreachable_server_gives_a_clear_error(capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["judge", "check", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--timeout", "3"])
    assert args.func is run
    assert run(args) == 1
    err = capsys.readouterr().err
    assert "http://127.0.0.1:9/v1" in err and "unreachable" in err
