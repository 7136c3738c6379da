"""The LLM judge: prompts + one transport, with a cache, batch dedup and failure counting.

A transport turns prompts into generations (`Generation`, or None when a prompt failed for
good); it knows nothing about verdicts. `LLMJudge` asks it for every (request, component)
not already known, in one call per batch, so the transport can send them all at once.

Failure semantics: a component that could not be scored (transport error after retries, or
output that parses to no allowed answer) is None, never 0, and is counted; `judge()` never
raises for a failed request. The trainer fills Nones with `rewards.fill_missing`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from audiothinker.judge.base import SAMPLE_REQUEST, CheckReport, Judge, JudgeRequest, Verdict
from audiothinker.judge.prompts import COMPONENTS, Component, Generation, build_prompt, parse_verdict
from audiothinker.memo import Memo

if TYPE_CHECKING:
    from audiothinker.data.records import AudioQA

log = logging.getLogger(__name__)


class JudgeUnavailableError(RuntimeError):
    """The judge cannot be used at all (server unreachable, model missing); raised by `check()` only."""


class Transport(Protocol):
    """Prompts in, the judge model's own generations out (None where a prompt failed for good)."""

    def generate(self, prompts: list[str]) -> list[Generation | None]: ...

    def stats(self) -> dict[str, float]: ...

    def describe(self) -> str:
        """Where the judge runs (URL or model path), for messages; never contains a secret."""
        ...

    def last_error(self) -> str | None: ...

    def ping(self) -> list[str]:
        """The served model ids; raise if the server cannot be reached. In-process transports: nothing to ping."""
        return []

    def close(self) -> None: ...


def stats_delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """Per-step deltas of `stats()` counters (the trainer logs these)."""
    return {k: v - before.get(k, 0) for k, v in after.items()}


class LLMJudge(Judge):
    """`Judge` backed by a language model behind `transport`."""

    def __init__(self, transport: Transport, cache: bool = True, cache_size: int = 200_000):
        self.transport = transport
        self.cache_enabled = cache
        self._cache = Memo(cache_size)  # (request, component) -> score, at most cache_size of them
        self._counts = {
            "requests": 0,  # (request, component) scores asked for
            "cache_hits": 0,  # answered from an earlier batch
            "deduplicated": 0,  # answered by an identical job in the same batch
            "prompts_scored": 0,  # handed to the transport
            "unparseable": 0,  # the judge answered, but not with an allowed answer
            "failures_consistency": 0,  # R_c left None (transport failure or unparseable)
            "failures_quality": 0,  # R_t left None
        }

    def __repr__(self) -> str:
        return f"LLMJudge({self.transport.describe()}, cache={self.cache_enabled})"

    # -- the Judge protocol

    def judge(self, requests: list[JudgeRequest], consistency: bool = True, quality: bool = True) -> list[Verdict]:
        wanted = [c for c, on in zip(COMPONENTS, (consistency, quality)) if on]
        keys = [(req, comp) for req in requests for comp in wanted]  # [B * len(wanted)]
        self._counts["requests"] += len(keys)
        if self.cache_enabled:
            known: dict[tuple[JudgeRequest, Component], float | None] = {}
            jobs = []
            for key in keys:
                if key in known:
                    self._counts["deduplicated"] += 1
                elif (score := self._cache.get(key)) is not None:
                    known[key] = score
                    self._counts["cache_hits"] += 1
                else:
                    known[key] = None
                    jobs.append(key)
            for key, score in zip(jobs, self._score(jobs)):
                known[key] = score
                if score is not None:  # failures are not cached: the next batch may get an answer
                    self._cache.put(key, score)
            flat = [known[key] for key in keys]
        else:
            flat = self._score(keys)
        verdicts = []
        for i in range(len(requests)):
            got = dict(zip(wanted, flat[i * len(wanted) : (i + 1) * len(wanted)]))
            for comp, score in got.items():
                self._counts[f"failures_{comp}"] += score is None
            verdicts.append(Verdict(got.get("consistency"), got.get("quality")))
        return verdicts

    def _score(self, jobs: list[tuple[JudgeRequest, Component]]) -> list[float | None]:
        """One transport call for all jobs (so they go out together), parsed."""
        if not jobs:
            return []
        gens = self.transport.generate([build_prompt(req, comp) for req, comp in jobs])
        self._counts["prompts_scored"] += len(jobs)
        scores = [parse_verdict(gen, comp) for (_, comp), gen in zip(jobs, gens)]
        self._counts["unparseable"] += sum(g is not None and s is None for g, s in zip(gens, scores))
        missing = sum(s is None for s in scores)
        if missing:
            log.warning(
                "judge: %d of %d scores missing this batch (last transport error: %s)",
                missing, len(jobs), self.transport.last_error() or "none, unparseable output",
            )
        return scores

    # -- operations

    def stats(self) -> dict[str, float]:
        """Cumulative counters (the transport's too: requests_sent, retries, errors, latency)."""
        return {**self._counts, **self.transport.stats()}

    def check(self) -> CheckReport:
        """Score one sample request, bypassing the cache; raise `JudgeUnavailableError` naming the target if it fails."""
        try:
            self.transport.ping()
        except Exception:  # noqa: BLE001 - any failure to reach it is "unreachable"; the cause is in last_error
            raise JudgeUnavailableError(
                f"judge server at {self.transport.describe()} is unreachable "
                f"({self.transport.last_error()}); start it (docs/judge.md) or fix judge.base_url"
            ) from None
        t0 = time.perf_counter()
        gens = self.transport.generate([build_prompt(SAMPLE_REQUEST, c) for c in COMPONENTS])
        latency = time.perf_counter() - t0
        if any(g is None for g in gens):
            raise JudgeUnavailableError(
                f"judge at {self.transport.describe()} did not answer: {self.transport.last_error() or 'unknown error'}"
            )
        verdict = Verdict(parse_verdict(gens[0], "consistency"), parse_verdict(gens[1], "quality"))
        return CheckReport(self.transport.describe(), latency, verdict, all(g.top_logprobs for g in gens))

    def last_error(self) -> str | None:
        return self.transport.last_error()

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> LLMJudge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RuleJudgeAdapter(Judge):
    """Gives a judge without counters (the rule judge) request and failure counters in `stats()`."""

    def __init__(self, inner: Judge):
        self.inner = inner
        self._counts = {"requests": 0, "failures_consistency": 0, "failures_quality": 0}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.inner).__name__})"

    def judge(self, requests: list[JudgeRequest], consistency: bool = True, quality: bool = True) -> list[Verdict]:
        verdicts = self.inner.judge(requests, consistency=consistency, quality=quality)
        self._counts["requests"] += len(requests) * (int(consistency) + int(quality))
        self._counts["failures_consistency"] += sum(consistency and v.consistency is None for v in verdicts)
        self._counts["failures_quality"] += sum(quality and v.quality is None for v in verdicts)
        return verdicts

    def stats(self) -> dict[str, float]:
        return dict(self._counts)

    def check_records(self, records: Sequence[AudioQA], source: str) -> None:
        self.inner.check_records(records, source)

    def check(self) -> CheckReport:
        t0 = time.perf_counter()
        (verdict,) = self.inner.judge([SAMPLE_REQUEST])  # not counted: the counters are the run's requests
        return CheckReport(type(self.inner).__name__, time.perf_counter() - t0, verdict, False)
