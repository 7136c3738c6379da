"""The judge interface and the backend registry. A judge is text-only: it never sees the audio.

A backend is one file in this package with a builder decorated `@register_backend("name")`: a function
from `JudgeConfig` to a `Judge`. `JUDGE_BACKENDS` (read by `build_judge`, config validation and the
CLIs' choices) imports the package's modules on first use, so each registers itself; keep heavy imports
(torch, openai) inside the builder or the transport.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from audiothinker.plugins import Registry, import_submodules

if TYPE_CHECKING:
    from audiothinker.config import JudgeConfig
    from audiothinker.data.records import AudioQA


@dataclass(frozen=True)
class JudgeRequest:
    """What the judge sees of one think-mode completion (hashable: identical requests are cached)."""

    question: str
    choices: tuple[str, ...]
    think: str
    answer: str
    facts: tuple[tuple[str, str], ...] | None = field(default=None, compare=False)
    """The item's true facts as (subject, value) claims, where the data generator knows them (the synthetic
    set); only the rule judge reads them. Not part of equality: an LLM judge, which never sees them, caches
    identical texts as one request."""


@dataclass(frozen=True)
class Verdict:
    """Scores for one request; None means "no score" (the judge failed), never 0."""

    consistency: float | None  # R_c: 1.0 the think block's conclusion agrees with the answer, 0.0 not
    quality: float | None  # R_t: quality of the reasoning alone, 0.0..1.0 in steps of 0.1


@dataclass(frozen=True)
class CheckReport:
    """What `check()` found: the judge answers, how fast, and a sample verdict."""

    target: str  # URL or model path
    latency_s: float  # wall time of the sample request (both components, sent together)
    verdict: Verdict
    logprobs: bool  # the server returned token log-probs (steadier scores than sampled text)

    def __str__(self) -> str:
        return (
            f"judge OK at {self.target}: sample verdict R_c={self.verdict.consistency} "
            f"R_t={self.verdict.quality} in {self.latency_s:.2f}s "
            f"(scored from {'log-probs' if self.logprobs else 'sampled text'})"
        )


SAMPLE_REQUEST = JudgeRequest(
    question="Which instrument plays the melody?",
    choices=("piano", "violin", "flute"),
    think="The notes are struck and decay quickly, with hammer-like attacks. That is a piano.",
    answer="piano",
    facts=(("that", "a piano"),),  # the rule judge's R_t reads the trace's one claim against it
)


class Judge(Protocol):
    """Everything the trainer, eval and the demo call on a judge. Subclass it to get the defaults."""

    def judge(
        self, requests: list[JudgeRequest], consistency: bool = True, quality: bool = True
    ) -> list[Verdict]:
        """Score every request; the components not asked for come back as None."""
        ...

    def stats(self) -> dict[str, float]:
        """Cumulative counters; the trainer logs their per-step deltas (`stats_delta`)."""
        return {}

    def check(self) -> CheckReport:
        """Score a sample request; raise `JudgeUnavailableError` naming the target when the judge is unusable."""
        t0 = time.perf_counter()
        (verdict,) = self.judge([SAMPLE_REQUEST])
        return CheckReport(type(self).__name__, time.perf_counter() - t0, verdict, False)

    def check_records(self, records: Sequence[AudioQA], source: str) -> None:
        """Raise `ConfigError` naming `source` when this judge cannot score these items (the rule judge needs
        the synthetic set's fact annotations); LLM judges score anything."""

    def last_error(self) -> str | None:
        """Why the latest scores are missing (a transport's last error), for messages; None if unknown."""
        return None

    def close(self) -> None:
        """Release connections, threads, models."""


JudgeBuilder = Callable[["JudgeConfig"], Judge]
JUDGE_BACKENDS: Registry[JudgeBuilder] = Registry(
    "judge backend", plugins=functools.partial(import_submodules, "audiothinker.judge")
)
"""The registered backends by name; the package's modules are imported on first read (each registers itself)."""
_BACKENDS = JUDGE_BACKENDS


def register_backend(name: str) -> Callable[[JudgeBuilder], JudgeBuilder]:
    """Decorator: `@register_backend("openai")` over `build(cfg: JudgeConfig) -> Judge` makes `judge.backend=openai`."""

    def decorate(build: JudgeBuilder) -> JudgeBuilder:
        known = JUDGE_BACKENDS.registered(name)
        same = known is not None and (known.__module__, known.__qualname__) == (build.__module__, build.__qualname__)
        if known is not None and not same:  # the same builder again (a module reloaded) just replaces itself
            raise ValueError(f"judge backend {name!r} is already registered by {known.__module__}")
        JUDGE_BACKENDS[name] = build
        return build

    return decorate
