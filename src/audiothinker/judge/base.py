"""The judge interface. A judge is text-only: it never sees the audio."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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


class Judge(Protocol):
    def judge(
        self, requests: list[JudgeRequest], consistency: bool = True, quality: bool = True
    ) -> list[Verdict]:
        """Score every request; the components not asked for come back as None."""
        ...
