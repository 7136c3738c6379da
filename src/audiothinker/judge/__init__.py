"""Judges scoring a completion's reasoning: R_c (think/answer consistency) and R_t (think quality)."""

from audiothinker.judge.base import Judge, JudgeRequest, Verdict
from audiothinker.judge.rule import RuleJudge

__all__ = ["Judge", "JudgeRequest", "RuleJudge", "Verdict"]
