"""The openai backend against a real `transformers serve` (tiny model wired to answer "1"), with
a fault-injecting proxy in front. Verdicts from this model: R_c = 1.0, R_t = 0.1."""

import logging

import pytest

from audiothinker.config import JudgeConfig
from audiothinker.judge import JudgeRequest, JudgeUnavailableError, Verdict, build_judge

pytestmark = pytest.mark.server

GOOD = Verdict(1.0, 0.1)
MISSING = Verdict(None, None)


def reqs(n: int) -> list[JudgeRequest]:
    return [JudgeRequest(f"Question {i}?", ("yes", "no"), f"Reasoning {i}: it is yes.", "yes") for i in range(n)]


def make_judge(url: str, model_dir, **kw):
    cfg = JudgeConfig(backend="openai", base_url=url, model=str(model_dir), max_concurrency=8,
                      timeout=kw.pop("timeout", 20.0), retry_backoff=0.01, **kw)
    return build_judge(cfg)


def test_check_reports_latency_and_a_sample_verdict(judge_server, tiny_judge_dir):
    with make_judge(judge_server.url, tiny_judge_dir) as judge:
        report = judge.check()
    assert report.verdict == GOOD and report.latency_s > 0
    assert report.logprobs is False  # transformers serve ignores `logprobs`: scored from the text
    assert judge_server.url in str(report)


def test_wrong_model_name_is_a_clear_check_error(judge_server):
    with make_judge(judge_server.url, "no-such-model") as judge:
        with pytest.raises(JudgeUnavailableError, match=judge_server.url.replace(".", r"\.")) as err:
            judge.check()
    assert "400" in str(err.value) and "no-such-model" in str(err.value)  # the server's own detail


def test_dedup_and_cache_against_the_server(fault_proxy, tiny_judge_dir):
    proxy = fault_proxy()
    batch = reqs(3) * 3  # 9 requests, 3 unique
    with make_judge(proxy.url, tiny_judge_dir) as judge:
        assert judge.judge(batch) == [GOOD] * 9
        assert proxy.count() == 6  # 3 unique x 2 components
        assert judge.judge(batch, quality=False) == [Verdict(1.0, None)] * 9
        assert proxy.count() == 6  # all from the cache
        s = judge.stats()
    assert (s["requests_sent"], s["cache_hits"], s["deduplicated"], s["errors"]) == (6, 3, 18, 0)


def test_transient_500s_are_retried_and_recover(fault_proxy, tiny_judge_dir):
    proxy = fault_proxy(fail_first=2, fail_mode="500")
    with make_judge(proxy.url, tiny_judge_dir) as judge:
        assert judge.judge(reqs(2)) == [GOOD] * 2
        s = judge.stats()
    assert proxy.count() == 12 and s["retries"] == 8 and s["errors"] == 0


@pytest.mark.parametrize("mode", ["drop", "garbage"])
def test_dropped_connections_and_garbage_are_retried(fault_proxy, tiny_judge_dir, mode):
    proxy = fault_proxy(fail_first=1, fail_mode=mode)
    with make_judge(proxy.url, tiny_judge_dir) as judge:
        assert judge.judge(reqs(2), quality=False) == [Verdict(1.0, None)] * 2
        assert judge.stats()["retries"] == 2


def test_slow_attempt_times_out_and_is_retried(fault_proxy, tiny_judge_dir):
    proxy = fault_proxy(fail_first=1, fail_mode="delay", delay_s=3.0)
    with make_judge(proxy.url, tiny_judge_dir, timeout=1.0) as judge:
        assert judge.judge(reqs(1), quality=False) == [Verdict(1.0, None)]
        s = judge.stats()
    assert s["retries"] == 1 and s["latency_count"] == 1


def test_random_faults_never_stop_scoring(fault_proxy, tiny_judge_dir):
    proxy = fault_proxy(delay=0.1, error500=0.1, drop=0.1, garbage=0.1, delay_s=0.2, seed=7)
    with make_judge(proxy.url, tiny_judge_dir, max_retries=8) as judge:
        verdicts = judge.judge(reqs(6))
        s = judge.stats()
    # p(9 faults in a row) = 0.3**9 per prompt: every score arrives
    assert verdicts == [GOOD] * 6
    assert s["requests_sent"] == proxy.count() and s["retries"] == proxy.count() - 12


def test_persistent_failure_gives_none_and_is_counted(fault_proxy, tiny_judge_dir, caplog):
    proxy = fault_proxy(error500=1.0)
    with make_judge(proxy.url, tiny_judge_dir, max_retries=2) as judge:
        with caplog.at_level(logging.WARNING):
            verdicts = judge.judge(reqs(2) + reqs(1))
        s = judge.stats()
    assert verdicts == [MISSING] * 3  # None, never 0
    assert (s["failures_consistency"], s["failures_quality"], s["errors"]) == (3, 3, 4)
    assert proxy.count() == 4 * 3  # 4 unique prompts x (1 + 2 retries)
    assert "500" in caplog.text


def test_4xx_is_not_retried(fault_proxy, tiny_judge_dir):
    proxy = fault_proxy(status=422)
    with make_judge(proxy.url, tiny_judge_dir) as judge:
        assert judge.judge(reqs(3)) == [MISSING] * 3
        s = judge.stats()
    assert proxy.count() == 6 and s["retries"] == 0 and s["errors"] == 6


def test_api_key_is_sent_but_never_logged(fault_proxy, tiny_judge_dir, monkeypatch, caplog):
    secret = "sk-test-DO-NOT-LOG-4242"
    monkeypatch.setenv("JUDGE_SERVER_TEST_KEY", secret)
    proxy = fault_proxy(status=401, echo_auth=True)  # a careless server echoing the header
    with make_judge(proxy.url, tiny_judge_dir, api_key_env="JUDGE_SERVER_TEST_KEY") as judge:
        with caplog.at_level(logging.DEBUG):
            assert judge.judge(reqs(1)) == [MISSING]
            with pytest.raises(JudgeUnavailableError) as err:
                judge.check()
        texts = [caplog.text, str(err.value), repr(judge), str(judge.stats()), judge.transport.last_error()]
    assert proxy.auth_headers == {f"Bearer {secret}"}
    assert "***" in judge.transport.last_error()
    assert all(secret not in t for t in texts)
