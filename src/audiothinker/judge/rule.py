"""A rule-based judge for the synthetic set: deterministic, offline, instant.

Consistency: the last option named in the think text (by its words) is the answer's option.
Quality: rewards reasoning that states intermediate facts (numbers, comparisons) and
reaches a conclusion, within a sane length. It stands in for the LLM judge in tests and
the demo; it knows nothing about the audio either.
"""

from __future__ import annotations

import re

from audiothinker.judge.base import JudgeRequest, Verdict
from audiothinker.parsing import match_option, normalize

_STEP = re.compile(r"[.;\n]")
_NUMBER = re.compile(r"\b(\d+|zero|one|two|three|four|five|six|seven|eight|nine|ten)\b")
_COMPARE = re.compile(r"\b(more|fewer|less|greater|louder|quieter|higher|lower|than|equal|same|so)\b")


def last_option_named(text: str, choices: tuple[str, ...]) -> int | None:
    """Index of the option whose text occurs last in `text` (whole words, normalized)."""
    norm = f" {normalize(text)} "
    best, best_pos = None, -1
    for i, choice in enumerate(choices):
        c = normalize(choice)
        if not c:
            continue
        pos = norm.rfind(f" {c} ")
        if pos > best_pos or (pos == best_pos and pos >= 0 and best is not None and len(c) > len(normalize(choices[best]))):
            best, best_pos = i, pos
    return best if best_pos >= 0 else None


def rule_consistency(req: JudgeRequest) -> float:
    named = last_option_named(req.think, req.choices)
    answered = match_option(req.answer, list(req.choices))
    return 1.0 if named is not None and named == answered else 0.0


def rule_quality(req: JudgeRequest) -> float:
    """0.0..1.0 in steps of 0.1 from simple signs of stepwise reasoning."""
    steps = [s for s in _STEP.split(req.think) if len(s.split()) >= 2]
    words = len(req.think.split())
    score = 0.0
    score += 0.3 * min(len(steps), 3) / 3
    score += 0.3 if _NUMBER.search(req.think.lower()) else 0.0
    score += 0.2 if _COMPARE.search(req.think.lower()) else 0.0
    score += 0.2 if last_option_named(req.think, req.choices) is not None else 0.0
    if words > 120 or words < 3:
        score *= 0.5
    return round(min(score, 1.0) * 10) / 10


class RuleJudge:
    """Judge protocol implementation with the rules above."""

    def judge(self, requests: list[JudgeRequest], consistency: bool = True, quality: bool = True) -> list[Verdict]:
        return [
            Verdict(rule_consistency(r) if consistency else None, rule_quality(r) if quality else None)
            for r in requests
        ]
