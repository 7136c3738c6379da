"""GRPO math: advantages, log-probs, policy loss and its reductions. Pure tensor functions."""

from audiothinker.algos.advantages import (SCALES, decision_positions, group_advantages, mode_split_advantages,
                                          register_scale, within_mode_advantages)
from audiothinker.algos.logprobs import selective_log_softmax
from audiothinker.algos.losses import (
    LOSS_TYPES,
    PolicyLossOutput,
    choice_token_mask,
    get_loss_type,
    global_token_normaliser,
    k3_kl,
    kl_weights,
    policy_loss,
    reduce_loss,
    register_loss_type,
)

__all__ = [
    "LOSS_TYPES",
    "PolicyLossOutput",
    "SCALES",
    "choice_token_mask",
    "decision_positions",
    "get_loss_type",
    "global_token_normaliser",
    "group_advantages",
    "k3_kl",
    "kl_weights",
    "mode_split_advantages",
    "policy_loss",
    "reduce_loss",
    "register_loss_type",
    "register_scale",
    "selective_log_softmax",
    "within_mode_advantages",
]
