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
    consistency: list[float | None]  # R_c_eff after filling judge failures (1.0 where not used; None: no score in the group)
    think_quality: list[float | None]  # R_t after filling (0.0 where not used; None: no score in the group)
    correct: list[bool]
    think: list[bool]
    judge_failures: dict[str, int] = field(default_factory=dict)
    judge_requests: int = 0  # think completions sent to the judge this batch
    judge_answered: int = 0  # of those, the ones with at least one score back (0 with requests > 0: judge down)


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
    judge_requests = judge_answered = 0
    if (preset.consistency or preset.think_quality) and judge is not None:
        # Only think completions reach the judge; R_c matters only when the answer is correct.
        idx = [i for i in range(n) if think[i] and parsed[i].think and (preset.think_quality or correct[i])]
        reqs = [
            JudgeRequest(owners[i].question, tuple(owners[i].choices), parsed[i].think or "", parsed[i].answer or "",
                         record_facts(owners[i]))
            for i in idx
        ]
        verdicts = judge.judge(reqs, consistency=preset.consistency, quality=preset.think_quality) if reqs else []
        judge_requests = len(verdicts)
        judge_answered = sum(
            (preset.consistency and v.consistency is not None) or (preset.think_quality and v.quality is not None)
            for v in verdicts
        )
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
    # Only judge scores stand in for a missing one: a no-think completion's R_c = 1 is a rule, not a measurement.
    r_c_eff = fill_missing(
        [consistency_effective(c, ok) for c, ok in zip(r_c, correct)], group_size,
        applicable=[ok and th for ok, th in zip(correct, think)],
    )
    for g in range(0, n, group_size):  # a group left with no judge score: R_c is left out of the whole group
        if any(c is None for c in r_c_eff[g : g + group_size]):
            r_c_eff[g : g + group_size] = [None if ok else 0.0 for ok in correct[g : g + group_size]]
    if preset.think_quality:
        think_scores = fill_missing(r_t, group_size, applicable=think)
        scored_think = [s for s, th in zip(think_scores, think) if th and s is not None]
        batch_mean = global_mean(scored_think)
        any_scored = global_mean([1.0] * len(scored_think)) > 0  # over all processes
        # No-think R_t: the batch's think mean; 0 with no think completion at all (SPEC); no score
        # (None) when think completions exist but the judge scored none of them.
        no_think = batch_mean if any_scored or lam == 0 else None
        r_t_final = [no_think if not th else s for s, th in zip(think_scores, think)]
    else:
        r_t_final = [0.0] * n
    # A group with no applicable judge score (None left by fill_missing) gets the component as a
    # constant: R_c_eff's neutral 0 for all (wrong answers have 0 anyway; this group's R is R_a*1), and
    # the no-think value of R_t for all, so the component adds nothing to that group's advantages.
    c_term = [c if c is not None else 0.0 for c in r_c_eff] if preset.consistency else [0.0] * n
    r_t_term = [batch_mean if t is None else t for t in r_t_final]  # a None group: batch_mean throughout
    total = [total_reward(a, c, 0.0, t) + preset.format_weight * f for a, c, f, t in zip(r_a, c_term, r_f, r_t_term)]
    return ScoredBatch(
        total, r_a, r_f, r_c_eff if preset.consistency else [1.0] * n, r_t_final, correct, think, failures,
        judge_requests, judge_answered,
    )
