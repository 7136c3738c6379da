"""Audio-Thinker rewards (SPEC section 3) as pure functions of strings and numbers.

    R = R_a * (1 + 0.5 * R_c_eff) + 0.5 * R_f + R_t          (paper Eq. 7)

core.py: each term and the presets (`register_preset`); eq7.py: the whole reward of a batch as trained.
"""

from audiothinker.rewards.core import (
    PRESETS,
    Preset,
    accuracy_reward,
    atar_reward,
    consistency_effective,
    direct_break_even,
    fill_missing,
    format_reward,
    get_preset,
    register_preset,
    total_reward,
)
from audiothinker.rewards.eq7 import Eq7Rewards, eq7_rewards, think_quality_scores

__all__ = [
    "PRESETS",
    "Eq7Rewards",
    "Preset",
    "accuracy_reward",
    "atar_reward",
    "consistency_effective",
    "direct_break_even",
    "eq7_rewards",
    "fill_missing",
    "format_reward",
    "get_preset",
    "register_preset",
    "think_quality_scores",
    "total_reward",
]
