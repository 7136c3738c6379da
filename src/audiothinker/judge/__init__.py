"""Judges scoring a completion's reasoning: R_c (think/answer consistency) and R_t (think quality)."""

from audiothinker.judge.base import Judge, JudgeRequest, Verdict
from audiothinker.judge.factory import build_judge
from audiothinker.judge.rule import RuleJudge
from audiothinker.judge.scoring import CheckReport, JudgeUnavailableError, LLMJudge, ManagedJudge, stats_delta

__all__ = [
    "CheckReport",
    "Judge",
    "JudgeRequest",
    "JudgeUnavailableError",
    "LLMJudge",
    "ManagedJudge",
    "RuleJudge",
    "Verdict",
    "build_judge",
    "stats_delta",
]
