"""Paper Eq. 7 as trained: every reward component of a batch, from parsed completions, correctness,
lambda and the judge's verdicts. Pure: the judge calls and the reductions over processes happen in the
trainer (`trainer.scoring.score_batch`), which hands the results in as numbers.

    R = R_a * (1 + 0.5 * R_c_eff) + w_f * R_f + R_t       (w_f = 0.5: paper Eq. 7; the grpo rows use 1.0)

Where SPEC section 3 leaves a case open, the rule we chose is marked [ours] and numbered; each
number appears once in the code below:

  [ours 1] A think completion the judge did not see (an empty think block: nothing to judge) gets
           R_c = 0 and R_t = 0.
  [ours 2] A judge failure (a None in a verdict) is filled with the mean of the scored, applicable
           completions of its group (`fill_missing`): applicable for R_c are the correct think
           completions, for R_t the think completions. The filled score adds nothing to the advantages.
  [ours 3] A group left without any applicable score gets the component as a constant, so it adds
           nothing to that group's advantages: R_c_eff is left out (reported None, term 0 for every
           member) and R_t is the no-think value for every member.
  [ours 4] A no-think completion's R_t is the mean R_t of the global batch's think completions
           (`think_mean`, after [ours 1-2]); 0 when the batch has no think completion (SPEC); no
           score (None) when it has some but the judge scored none of them.
  [ours 5] No judge at all (`verdicts` None: a step built without one): R_c = 1 and R_t = 0 throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from audiothinker.parsing import Parsed
from audiothinker.rewards.core import (
    accuracy_reward,
    atar_reward,
    consistency_effective,
    fill_missing,
    format_reward,
    total_reward,
)

if TYPE_CHECKING:
    from audiothinker.judge.base import Verdict


@dataclass(frozen=True)
class Eq7Rewards:
    """Per-completion components (lists of length B*G, group by group)."""

    total: list[float]  # R, the reward the advantages are computed from
    accuracy: list[float]  # R_a (ATAR) or plain 1/0 accuracy
    format: list[float]  # R_f
    consistency: list[float | None]  # R_c_eff (1.0 throughout when unused; None: left out of the group [ours 3])
    think_quality: list[float | None]  # R_t (0.0 throughout when unused; None: no score [ours 3, 4])


def think_quality_scores(
    thinks: Sequence[bool], verdicts: Sequence[Verdict | None] | None, group_size: int
) -> list[float | None]:
    """R_t of each think completion after [ours 1, 2, 5]; None for no-think completions and for a group
    with no score. The scored values are what `think_mean` averages over the global batch."""
    raw = [0.0 if verdicts is None or verdicts[i] is None else verdicts[i].quality for i in range(len(thinks))]
    filled = fill_missing(raw, group_size, applicable=thinks)
    return [s if th else None for s, th in zip(filled, thinks)]


def _consistency(
    thinks: Sequence[bool], correct: Sequence[bool], verdicts: Sequence[Verdict | None] | None, group_size: int
) -> list[float | None]:
    """R_c_eff per completion: SPEC's no-think R_c = 1 and R_c_eff = R_c if correct else 0, with [ours 1-3, 5]."""
    r_c = [
        1.0 if not th or verdicts is None  # no-think: 1 (SPEC); no judge: 1 [ours 5]
        else 0.0 if verdicts[i] is None  # [ours 1]
        else verdicts[i].consistency
        for i, th in enumerate(thinks)
    ]
    # [ours 2] Only judge scores stand in for a missing one: a no-think R_c = 1 is a rule, not a measurement.
    r_c_eff = fill_missing(
        [consistency_effective(c, ok) for c, ok in zip(r_c, correct)], group_size,
        applicable=[ok and th for ok, th in zip(correct, thinks)],
    )
    for g in range(0, len(r_c_eff), group_size):  # [ours 3] wrong answers keep their 0
        if any(c is None for c in r_c_eff[g : g + group_size]):
            r_c_eff[g : g + group_size] = [None if ok else 0.0 for ok in correct[g : g + group_size]]
    return r_c_eff


def _think_quality(
    thinks: Sequence[bool], verdicts: Sequence[Verdict | None] | None, group_size: int, lam: float,
    think_mean: float | None,
) -> list[float | None]:
    """R_t per completion: the think completions' scores, the no-think value [ours 4] elsewhere."""
    no_think = think_mean if think_mean is not None else (0.0 if lam == 0 else None)  # [ours 4]
    scores = think_quality_scores(thinks, verdicts, group_size)
    return [s if th else no_think for s, th in zip(scores, thinks)]


def eq7_rewards(
    parsed: Sequence[Parsed],
    correct: Sequence[bool],
    verdicts: Sequence[Verdict | None] | None,
    group_size: int,
    lam: float,
    think_mean: float | None,
    step: int,
    total_steps: int,
    *,
    adaptive: bool = True,
    consistency: bool = True,
    think_quality: bool = True,
    format_weight: float = 0.5,
) -> Eq7Rewards:
    """Eq. 7 for B*G completions, completion i in group i // group_size.

    parsed, correct: each completion parsed once, and whether its answer is right (`parsing.is_correct`).
    verdicts: the judge's verdict per completion, None where it was not sent (`judge.requests.ask_judge`);
        inside a verdict None means "no score". None instead of a list: no judge [ours 5].
    lam: lambda of ATAR, the global batch's think fraction. think_mean: the global batch's mean of the
        scored `think_quality_scores`, None when no think completion was scored anywhere.
    step, total_steps: the ATAR schedule. The preset's weights: `adaptive` ATAR (else 1/0 accuracy),
        `consistency` multiplies by (1 + 0.5 R_c_eff), `think_quality` adds R_t, `format_weight` of R_f.
    """
    n = len(parsed)
    thinks = [p.thinks for p in parsed]
    r_f = [format_reward(p) for p in parsed]
    if adaptive:
        r_a = [atar_reward(th, ok, lam, step, total_steps) for th, ok in zip(thinks, correct)]
    else:
        r_a = [accuracy_reward(ok) for ok in correct]
    r_c = _consistency(thinks, correct, verdicts, group_size) if consistency else [1.0] * n
    r_t = _think_quality(thinks, verdicts, group_size, lam, think_mean) if think_quality else [0.0] * n
    c_term = [c if c is not None else 0.0 for c in r_c] if consistency else [0.0] * n  # [ours 3]
    t_term = [t if t is not None else (think_mean or 0.0) for t in r_t]  # [ours 3]: the no-think value
    total = [total_reward(a, c, f, t, format_weight) for a, c, f, t in zip(r_a, c_term, r_f, t_term)]
    return Eq7Rewards(total, r_a, r_f, r_c, r_t)
