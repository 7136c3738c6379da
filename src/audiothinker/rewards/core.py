"""Reward formulas. No I/O, no config objects: numbers and strings in, floats out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from audiothinker.parsing import Parsed


def format_reward(parsed: Parsed) -> float:
    """R_f: 1.0 if the completion has one of the two valid shapes, else 0.0."""
    return 1.0 if parsed.valid else 0.0


def accuracy_reward(correct: bool) -> float:
    """Plain GRPO accuracy reward (R1-AQA): 1 if correct else 0."""
    return 1.0 if correct else 0.0


def atar_reward(think: bool, correct: bool, think_fraction: float, step: int, total_steps: int) -> float:
    """R_a, the Adaptive Think Accuracy Reward (SPEC section 3, paper Eq. 5).

    gamma_think   = exp(-lambda * (1 - step/T))
    gamma_nothink = exp(-(1 - lambda) * (1 - step/T))
    think+correct: gamma_think; think+wrong: -(1 - gamma_think);
    no-think+correct: 2 gamma_nothink; no-think+wrong: -gamma_nothink - 2 (1 - gamma_nothink).
    """
    if not 0.0 <= think_fraction <= 1.0:
        raise ValueError(f"think_fraction must be in [0, 1], got {think_fraction}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    remaining = 1.0 - min(max(step, 0), total_steps) / total_steps
    lam = think_fraction
    if think:
        gamma = math.exp(-lam * remaining)
        return gamma if correct else -(1.0 - gamma)
    gamma = math.exp(-(1.0 - lam) * remaining)
    return 2.0 * gamma if correct else -gamma - 2.0 * (1.0 - gamma)


def direct_break_even(think_accuracy: float, consistency: bool = True) -> float:
    """The direct accuracy at which ATAR pays both modes of a question the same, late in training.

    At step T both gammas are 1, so R_a is 1 / 0 for a right / wrong trace and 2 / -1 for a right / wrong
    direct answer; with `consistency` (atar_cr, atar_cr_tr) a right, consistent answer gets half again
    (R_c_eff = 1). Direct answering pays more above the returned accuracy: (1 + think_accuracy) / 3 without
    R_c, (1 + 1.5 think_accuracy) / 4 with it. R_f and R_t leave it unchanged where every completion is well
    formed and a no-think completion's R_t (the batch's mean) equals the traces'.
    """
    if not 0.0 <= think_accuracy <= 1.0:
        raise ValueError(f"think_accuracy must be in [0, 1], got {think_accuracy}")

    def reward(think: bool, correct: bool) -> float:  # Eq. 7 at step T without R_f and R_t; every trace consistent
        r_c_eff = consistency_effective(1.0, correct) if consistency else 0.0
        return total_reward(atar_reward(think, correct, 0.5, 1, 1), r_c_eff, r_f=0.0, r_t=0.0)

    think = think_accuracy * reward(True, True) + (1.0 - think_accuracy) * reward(True, False)
    return (think - reward(False, False)) / (reward(False, True) - reward(False, False))


def consistency_effective(r_c: float | None, correct: bool) -> float | None:
    """R_c_eff = R_c if the answer is correct else 0 (SPEC section 3, our reading)."""
    if not correct:
        return 0.0
    return r_c


def total_reward(r_a: float, r_c_eff: float, r_f: float, r_t: float, format_weight: float = 0.5) -> float:
    """Paper Eq. 7: R = R_a * (1 + 0.5 * R_c_eff) + 0.5 * R_f + R_t (`format_weight` 1.0 for the grpo rows)."""
    return r_a * (1.0 + 0.5 * r_c_eff) + r_t + format_weight * r_f  # R_f last: the sums training always made


def fill_missing(
    values: Sequence[float | None], group_size: int, applicable: Sequence[bool] | None = None
) -> list[float | None]:
    """Replace "no score" (None) with the mean of the scored, applicable values of the same group.

    A missing judge score thus adds nothing to its completion's advantage (the group's centred
    rewards are unchanged by it), instead of counting as a 0. `applicable` marks the entries
    whose values form that mean (for R_c: the correct completions). A group with no applicable
    score keeps its Nones: nothing in it says what the score would have been, and borrowing
    other groups' scores (or 0) would move its advantages. The caller leaves that component out
    of the group (see `rewards.eq7`, [ours 3]).
    """
    if len(values) % group_size:
        raise ValueError(f"{len(values)} values do not split into groups of {group_size}")
    ok = list(applicable) if applicable is not None else [True] * len(values)
    out: list[float | None] = []
    for start in range(0, len(values), group_size):
        group = values[start : start + group_size]
        scored = [v for v, a in zip(group, ok[start : start + group_size]) if v is not None and a]
        fill = sum(scored) / len(scored) if scored else None
        out.extend(fill if v is None else float(v) for v in group)
    return out


@dataclass(frozen=True)
class Preset:
    """One row of the paper's ablation (Table 1)."""

    name: str
    prompt: str  # "adaptive" | "think" | "no_think"
    adaptive_accuracy: bool  # ATAR (R_a) instead of plain 1/0 accuracy
    consistency: bool  # multiply by (1 + 0.5 R_c_eff)
    think_quality: bool  # add R_t
    format_weight: float  # weight of R_f


PRESETS: dict[str, Preset] = {}
"""The preset registry: `reward.preset` must name one of these (config validation reads it)."""


def register_preset(preset: Preset) -> Preset:
    """Add `preset` to `PRESETS` under its name (a second preset of the same name is an error)."""
    if preset.name in PRESETS:
        raise ValueError(f"reward preset {preset.name!r} is already registered")
    PRESETS[preset.name] = preset
    return preset


#                       name          prompt      ATAR   R_c    R_t    w_f
GRPO = register_preset(Preset("grpo", "no_think", False, False, False, 1.0))
GRPO_COT = register_preset(Preset("grpo_cot", "think", False, False, False, 1.0))
ATAR = register_preset(Preset("atar", "adaptive", True, False, False, 0.5))
ATAR_CR = register_preset(Preset("atar_cr", "adaptive", True, True, False, 0.5))
ATAR_CR_TR = register_preset(Preset("atar_cr_tr", "adaptive", True, True, True, 0.5))


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown reward preset {name!r}; valid: {sorted(PRESETS)}") from None
