"""Judges scoring a completion's reasoning: R_c (think/answer consistency) and R_t (think quality).

A backend is one file here with a `@register_backend("name")` builder (rule.py, openai_backend.py, local.py).
"""

from audiothinker.judge.base import JUDGE_BACKENDS, CheckReport, Judge, JudgeRequest, Verdict, register_backend
from audiothinker.judge.factory import build_judge
from audiothinker.judge.rule import RuleJudge
from audiothinker.judge.scoring import JudgeUnavailableError, LLMJudge, stats_delta

__all__ = [
    "JUDGE_BACKENDS",
    "CheckReport",
    "Judge",
    "JudgeRequest",
    "JudgeUnavailableError",
    "LLMJudge",
    "RuleJudge",
    "Verdict",
    "build_judge",
    "register_backend",
    "stats_delta",
]
