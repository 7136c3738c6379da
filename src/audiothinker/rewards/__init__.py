"""Audio-Thinker rewards (SPEC section 3) as pure functions of strings and numbers.

    R = R_a * (1 + 0.5 * R_c_eff) + 0.5 * R_f + R_t          (paper Eq. 7)
"""

from audiothinker.rewards.core import (
    PRESETS,
    Preset,
    accuracy_reward,
    atar_reward,
    consistency_effective,
    fill_missing,
    format_reward,
    get_preset,
    think_fraction,
    think_quality_for_no_think,
    total_reward,
)

__all__ = [
    "PRESETS",
    "Preset",
    "accuracy_reward",
    "atar_reward",
    "consistency_effective",
    "fill_missing",
    "format_reward",
    "get_preset",
    "think_fraction",
    "think_quality_for_no_think",
    "total_reward",
]
