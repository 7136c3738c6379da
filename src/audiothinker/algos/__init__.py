"""GRPO math: advantages, log-probs, policy loss and its reductions. Pure tensor functions."""

from audiothinker.algos.advantages import group_advantages
from audiothinker.algos.losses import LOSS_TYPES, PolicyLossOutput, k3_kl, policy_loss, reduce_loss
from audiothinker.algos.logprobs import selective_log_softmax

__all__ = [
    "LOSS_TYPES",
    "PolicyLossOutput",
    "group_advantages",
    "k3_kl",
    "policy_loss",
    "reduce_loss",
    "selective_log_softmax",
]
