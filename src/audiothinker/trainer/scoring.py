"""Score a rollout batch: parse once, ask the judge, reduce the global-batch quantities, apply Eq. 7
(`rewards.eq7`, where every rule of the reward lives)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from audiothinker.data.records import AudioQA
from audiothinker.judge.base import Judge, Verdict
from audiothinker.judge.requests import ask_judge
from audiothinker.parsing import is_correct, parse_completion
from audiothinker.rewards import Preset, eq7_rewards, think_quality_scores


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
    thinks = [p.thinks for p in parsed]
    verdicts = None  # no judge terms, or no judge: Eq. 7's [ours 5]
    if judge is not None and (preset.consistency or preset.think_quality):
        verdicts = ask_judge(judge, owners, parsed, preset.consistency, preset.think_quality, correct)
    lam = global_think_fraction(thinks)
    think_mean = None  # the no-think R_t: the think completions' mean over all processes
    if preset.think_quality:
        think_mean = _global_think_mean(think_quality_scores(thinks, verdicts, group_size), global_mean)
    r = eq7_rewards(parsed, correct, verdicts, group_size, lam, think_mean, step, total_steps,
                    adaptive=preset.adaptive_accuracy, consistency=preset.consistency,
                    think_quality=preset.think_quality, format_weight=preset.format_weight)
    return ScoredBatch(r.total, r.accuracy, r.format, r.consistency, r.think_quality, correct, thinks,
                       *_judge_counts(verdicts, correct, preset))


def _global_think_mean(scores: list[float | None], global_mean: Callable[[list[float]], float]) -> float | None:
    """Mean of the scored think R_t over all processes; None when no process has one."""
    scored = [s for s in scores if s is not None]
    mean = global_mean(scored)
    return mean if global_mean([1.0] * len(scored)) > 0 else None


def _judge_counts(
    verdicts: Sequence[Verdict | None] | None, correct: list[bool], preset: Preset
) -> tuple[dict[str, int], int, int]:
    """(scores left None per component where used, requests sent, requests with a score back)."""
    sent = [(v, ok) for v, ok in zip(verdicts or [], correct) if v is not None]
    failures = {
        "consistency": sum(preset.consistency and ok and v.consistency is None for v, ok in sent),
        "think_quality": sum(preset.think_quality and v.quality is None for v, _ in sent),
    }
    answered = sum(
        (preset.consistency and v.consistency is not None) or (preset.think_quality and v.quality is not None)
        for v, _ in sent
    )
    return failures, len(sent), answered
