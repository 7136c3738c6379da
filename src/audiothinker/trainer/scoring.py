"""Score a rollout batch: parse, judge, and combine the preset's reward components per completion."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from audiothinker.data.records import AudioQA
from audiothinker.judge.base import Judge, JudgeRequest
from audiothinker.judge.rule import record_facts
from audiothinker.parsing import is_correct, parse_completion
from audiothinker.rewards import (
    Preset,
    accuracy_reward,
    atar_reward,
    consistency_effective,
    fill_missing,
    format_reward,
    total_reward,
)


@dataclass
class ScoredBatch:
    """Per-completion reward components (lists of length B*G, group by group)."""

    total: list[float]
    accuracy: list[float]  # R_a (ATAR) or plain 1/0 accuracy
    format: list[float]  # R_f
    consistency: list[float]  # R_c_eff after filling judge failures (1.0 where not used)
    think_quality: list[float]  # R_t after filling (0.0 where not used)
    correct: list[bool]
    think: list[bool]
    judge_failures: dict[str, int] = field(default_factory=dict)


def score_batch(
    records: list[AudioQA],
    texts: list[str],
    group_size: int,
    preset: Preset,
    judge: Judge | None,
    step: int,
    total_steps: int,
    global_think_fraction: Callable[[list[bool]], float],
    global_mean: Callable[[list[float]], float],
) -> ScoredBatch:
    """Rewards of B*G completions for B records (completion i belongs to records[i // group_size]).

    `global_think_fraction` and `global_mean` reduce over all processes (lambda and the R_t
    fill-in for no-think completions are global-batch quantities); identity-like on one process.
    """
    owners = [records[i // group_size] for i in range(len(texts))]
    parsed = [parse_completion(t) for t in texts]
    correct = [is_correct(p, r.choices, r.answer) for p, r in zip(parsed, owners)]
    think = [p.thinks for p in parsed]
    r_f = [format_reward(t) for t in texts]
    lam = global_think_fraction(think)
    if preset.adaptive_accuracy:
        r_a = [atar_reward(th, c, lam, step, total_steps) for th, c in zip(think, correct)]
    else:
        r_a = [accuracy_reward(c) for c in correct]

    n = len(texts)
    r_c: list[float | None] = [1.0] * n
    r_t: list[float | None] = [0.0] * n
    failures = {"consistency": 0, "think_quality": 0}
    if (preset.consistency or preset.think_quality) and judge is not None:
        # Only think completions reach the judge; R_c matters only when the answer is correct.
        idx = [i for i in range(n) if think[i] and parsed[i].think and (preset.think_quality or correct[i])]
        reqs = [
            JudgeRequest(owners[i].question, tuple(owners[i].choices), parsed[i].think or "", parsed[i].answer or "",
                         record_facts(owners[i]))
            for i in idx
        ]
        verdicts = judge.judge(reqs, consistency=preset.consistency, quality=preset.think_quality) if reqs else []
        for i, v in zip(idx, verdicts):
            if preset.consistency and correct[i]:
                r_c[i] = v.consistency
                failures["consistency"] += v.consistency is None
            if preset.think_quality:
                r_t[i] = v.quality
                failures["think_quality"] += v.quality is None
        # Think completions the judge could not see (empty think block) get no consistency credit.
        judged = set(idx)
        for i in range(n):
            if think[i] and correct[i] and i not in judged:
                r_c[i] = 0.0
    r_c_eff = [consistency_effective(c, ok) for c, ok in zip(r_c, correct)]
    r_c_eff = fill_missing(r_c_eff, group_size, applicable=correct)
    if preset.think_quality:
        think_scores = fill_missing(r_t, group_size, applicable=think)
        batch_mean = global_mean([s for s, th in zip(think_scores, think) if th])
        r_t_final = [s if th else batch_mean for s, th in zip(think_scores, think)]
    else:
        r_t_final = [0.0] * n
    c_term = r_c_eff if preset.consistency else [0.0] * n
    total = [total_reward(a, c, 0.0, t) + preset.format_weight * f for a, c, f, t in zip(r_a, c_term, r_f, r_t_final)]
    return ScoredBatch(
        total, r_a, r_f, r_c_eff if preset.consistency else [1.0] * n, r_t_final, correct, think, failures
    )

