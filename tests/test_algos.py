"""GRPO math (SPEC section 5): advantages, k3 KL, clipped surrogate, loss reductions, log-probs.

Every expected value is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import math

import pytest
import torch

from audiothinker.algos import (LOSS_TYPES, choice_token_mask, decision_positions, group_advantages, k3_kl, kl_weights,
                                mode_split_advantages, policy_loss, reduce_loss, selective_log_softmax,
                                within_mode_advantages)

LN2 = math.log(2.0)


# ---- group_advantages -------------------------------------------------------------------------


def test_group_scale_by_hand():
    # G = 2, groups [3, 1] and [2, 2].
    # group 1: mean 2, centred [1, -1], unbiased std sqrt((1 + 1) / (2 - 1)) = sqrt(2) = 1.41421
    #          A = +-1 / (1.41421 + 1e-4) = +-0.70706
    # group 2: all equal -> 0
    adv = group_advantages(torch.tensor([3.0, 1.0, 2.0, 2.0]), 2, "group")
    assert adv.tolist() == pytest.approx([0.707057, -0.707057, 0.0, 0.0], abs=1e-6)


def test_group_scale_g4_by_hand():
    # [1, 0, 0, 1]: mean 0.5, centred +-0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.57735
    # A = +-0.5 / (0.57735 + 1e-4) = +-0.86588
    adv = group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 4)
    assert adv.tolist() == pytest.approx([0.865875, -0.865875, -0.865875, 0.865875], abs=1e-6)


def test_batch_scale_by_hand():
    # Same rewards [3, 1, 2, 2], centred per group: [1, -1, 0, 0].
    # Divided by the std of all four rewards: mean 2, squared deviations [1, 1, 0, 0],
    # unbiased variance 2 / 3, std 0.81650; A = +-1 / (0.816497 + 1e-4) = +-1.224595
    adv = group_advantages(torch.tensor([3.0, 1.0, 2.0, 2.0]), 2, "batch")
    assert adv.tolist() == pytest.approx([1.224595, -1.224595, 0.0, 0.0], abs=1e-6)


def test_no_scale_only_centres():
    # [3, 1] - 2 = [1, -1]; [5, 2, 2] style: [2, 2] - 2 = [0, 0]
    adv = group_advantages(torch.tensor([3.0, 1.0, 2.0, 2.0]), 2, "none")
    assert adv.tolist() == [1.0, -1.0, 0.0, 0.0]


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("value", [0.7, 0.1, 1.0 / 3.0, -1.3934693, 2.3098])
@pytest.mark.parametrize("group_size", [2, 4, 8, 16])
def test_all_equal_group_is_exactly_zero(scale, value, group_size):
    # Equal rewards carry no signal: the advantage must be exactly 0, never NaN, and not the
    # float32 rounding error of the mean divided by eps (which is ~1e-3 for G = 8).
    rewards = torch.full((2 * group_size,), value, dtype=torch.float32)
    adv = group_advantages(rewards, group_size, scale)
    assert not torch.isnan(adv).any()
    assert torch.equal(adv, torch.zeros_like(adv))


def test_all_equal_group_next_to_a_varied_one():
    rewards = torch.tensor([0.7] * 8 + [1.0, 0.0] * 4)
    adv = group_advantages(rewards, 8)
    assert torch.equal(adv[:8], torch.zeros(8))
    assert adv[8:].abs().min() > 0.9  # centred +-0.5, std sqrt(8 * 0.25 / 7) = 0.5345 -> +-0.9352


def test_group_size_one_is_zero():
    adv = group_advantages(torch.tensor([1.0, 5.0]), 1)
    assert torch.equal(adv, torch.zeros(2))


def test_advantage_bad_inputs():
    with pytest.raises(ValueError, match="group"):
        group_advantages(torch.zeros(4), 2, "global")
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(torch.zeros(4), 3)
    with pytest.raises(ValueError):
        group_advantages(torch.zeros(2, 2), 2)


# ---- mode-split advantages (train.mode_advantage: split) ---------------------------------------

# One group of four: two traces (rewards 3.0, 2.4), two direct answers (0.1, 3.3); then a group of traces only.
SPLIT_R = torch.tensor([3.0, 2.4, 0.1, 3.3, 1.0, 2.0, 1.0, 1.0])
SPLIT_THINK = torch.tensor([True, True, False, False, True, True, True, True])
# Token ids: traces open with (5, 7), direct answers with (5, 6); they first differ at position 1.
SPLIT_IDS = torch.tensor([[5, 7, 8, 1], [5, 7, 9, 2], [5, 6, 3, 0], [5, 6, 3, 3],
                          [5, 7, 1, 1], [5, 7, 1, 2], [5, 7, 1, 3], [5, 7, 2, 2]])


def test_within_mode_advantages_by_hand():
    # group 1: trace mean (3.0 + 2.4) / 2 = 2.7 -> +0.3, -0.3; direct mean (0.1 + 3.3) / 2 = 1.7 -> -1.6, +1.6
    # group 2 (one mode): mean 1.25 -> -0.25, +0.75, -0.25, -0.25, as group_advantages
    adv = within_mode_advantages(SPLIT_R, SPLIT_THINK, 4, "none")
    assert adv.tolist() == pytest.approx([0.3, -0.3, -1.6, 1.6, -0.25, 0.75, -0.25, -0.25], abs=1e-6)
    assert adv[4:].tolist() == pytest.approx(group_advantages(SPLIT_R, 4, "none")[4:].tolist(), abs=1e-6)


def test_within_mode_advantages_share_the_group_divisor():
    # "group": each group's std divides both the group and the within-mode advantages alike
    whole, within = group_advantages(SPLIT_R, 4, "group"), within_mode_advantages(SPLIT_R, SPLIT_THINK, 4, "group")
    ratio = whole[:4] / group_advantages(SPLIT_R, 4, "none")[:4]
    assert (within[:4] / within_mode_advantages(SPLIT_R, SPLIT_THINK, 4, "none")[:4]).tolist() == pytest.approx(
        ratio.tolist(), rel=1e-6)


def test_a_completion_alone_in_its_mode_gets_no_content_advantage():
    # one direct answer among three traces: nothing of its mode to compare its content with
    adv = within_mode_advantages(torch.tensor([1.0, 0.0, 1.0, 2.0]), torch.tensor([True, True, True, False]), 4, "none")
    assert adv.tolist() == pytest.approx([1 / 3, -2 / 3, 1 / 3, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="thinks"):
        within_mode_advantages(torch.zeros(4), torch.zeros(3, dtype=torch.bool), 4)


def test_decision_positions_by_hand():
    # group 1: traces and direct answers first differ at position 1; group 2 has one mode: -1
    assert decision_positions(SPLIT_IDS, SPLIT_THINK, 4).tolist() == [1, 1, 1, 1, -1, -1, -1, -1]
    # the latest first difference with any completion of the other mode: a direct answer that starts
    # (5, 7, 4) like the traces differs from them at position 2
    ids = SPLIT_IDS[:4].clone()
    ids[3] = torch.tensor([5, 7, 4, 4])
    assert decision_positions(ids, SPLIT_THINK[:4], 4).tolist() == [2, 2, 1, 2]


def test_mode_split_advantages_by_hand():
    whole = group_advantages(SPLIT_R, 4, "none")  # group 1: mean 2.2 -> [0.8, 0.2, -2.1, 1.1]
    within = within_mode_advantages(SPLIT_R, SPLIT_THINK, 4, "none")
    adv = mode_split_advantages(whole, within, decision_positions(SPLIT_IDS, SPLIT_THINK, 4), 4)
    torch.testing.assert_close(adv[:4], torch.tensor([[0.8, 0.8, 0.3, 0.3], [0.2, 0.2, -0.3, -0.3],
                                                      [-2.1, -2.1, -1.6, -1.6], [1.1, 1.1, 1.6, 1.6]]))
    # one mode: every token the group advantage, as without the split
    torch.testing.assert_close(adv[4:], whole[4:, None].expand(4, 4))
    # The decision token's gradient over the group is unchanged; after it, each mode's advantages sum to 0.
    assert adv[:2, 2:].sum().item() == pytest.approx(0.0, abs=1e-6)
    assert adv[2:4, 2:].sum().item() == pytest.approx(0.0, abs=1e-6)


def test_split_by_mode_weighs_only_the_choice_of_mode():
    from audiothinker.trainer.step import split_by_mode

    whole = group_advantages(SPLIT_R, 4, "none")
    args = (whole, SPLIT_R, SPLIT_THINK.tolist(), SPLIT_IDS, 4, "none", SPLIT_R)
    plain, weighted = split_by_mode(*args), split_by_mode(*args, decision_weight=3.0)
    # group 1 has both modes and decides at position 1: positions 0-1 tripled, the content after them unchanged
    torch.testing.assert_close(weighted[:4, :2], 3.0 * plain[:4, :2])
    torch.testing.assert_close(weighted[:4, 2:], plain[:4, 2:])
    torch.testing.assert_close(weighted[4:], plain[4:])  # group 2 has one mode: nothing to weigh


def test_policy_loss_takes_per_token_advantages():
    logp = torch.randn(2, 3).requires_grad_()
    adv = torch.tensor([[0.5, 0.5, -1.0], [2.0, 0.0, 1.0]])
    policy_loss(logp, logp.detach(), adv).per_token_loss.sum().backward()
    torch.testing.assert_close(logp.grad, -adv)


# ---- k3 KL ------------------------------------------------------------------------------------


def test_k3_by_hand():
    # logp = ln 0.5, ref = ln 0.25: delta = ref - logp = -ln 2; exp(-ln 2) + ln 2 - 1 = 0.5 + 0.69315 - 1 = 0.19315
    # logp = ln 0.25, ref = ln 0.5: delta = +ln 2;            2 - ln 2 - 1               = 0.30685
    # equal log-probs: exp(0) - 0 - 1 = 0
    logp = torch.log(torch.tensor([0.5, 0.25, 0.3]))
    ref = torch.log(torch.tensor([0.25, 0.5, 0.3]))
    kl = k3_kl(logp, ref)
    assert kl.tolist() == pytest.approx([0.5 + LN2 - 1, 2 - LN2 - 1, 0.0], abs=1e-6)
    assert kl.tolist() == pytest.approx([0.193147, 0.306853, 0.0], abs=1e-6)


def test_k3_non_negative():
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(64, 32, generator=g) * 10
    ref = -torch.rand(64, 32, generator=g) * 10
    assert (k3_kl(logp, ref) >= 0).all()


# ---- clipped surrogate ------------------------------------------------------------------------


def _ratio_inputs(ratios: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, 1] log-probs whose ratio exp(logp - old) is each of `ratios`; old = ln 0.5."""
    old = torch.full((len(ratios), 1), math.log(0.5))
    logp = old + torch.log(torch.tensor(ratios)).unsqueeze(1)
    return logp.requires_grad_(), old


def test_policy_loss_clipping_eps_02():
    # ratio 1.5, eps 0.2 -> clip(1.5) = 1.2
    #   A = +1: min(1.5, 1.2)   = 1.2  -> loss -1.2, clipped high (no gradient)
    #   A = -1: min(-1.5, -1.2) = -1.5 -> loss  1.5, not clipped (the pessimistic side keeps the gradient)
    # ratio 0.5 -> clip(0.5) = 0.8
    #   A = +1: min(0.5, 0.8)   = 0.5  -> loss -0.5, not clipped
    #   A = -1: min(-0.5, -0.8) = -0.8 -> loss  0.8, clipped low (no gradient)
    # ratio 1.1, inside [0.8, 1.2]: A = +1 -> loss -1.1
    logp, old = _ratio_inputs([1.5, 1.5, 0.5, 0.5, 1.1])
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    out = policy_loss(logp, old, adv, epsilon=0.2)
    assert out.per_token_loss.squeeze(1).tolist() == pytest.approx([-1.2, 1.5, -0.5, 0.8, -1.1], abs=1e-6)
    assert out.clipped_high.squeeze(1).tolist() == [True, False, False, False, False]
    assert out.clipped_low.squeeze(1).tolist() == [False, False, False, True, False]
    assert out.kl is None
    # d loss / d logp = -A * ratio where unclipped, 0 where clipped: [0, 1.5, -0.5, 0, -1.1]
    out.per_token_loss.sum().backward()
    assert logp.grad.squeeze(1).tolist() == pytest.approx([0.0, 1.5, -0.5, 0.0, -1.1], abs=1e-6)


def test_policy_loss_clip_higher():
    # eps 0.2, eps_high 0.28: upper bound 1.28, lower bound still 0.8
    #   ratio 1.5, A = +1: min(1.5, 1.28) = 1.28 -> loss -1.28, clipped high
    #   ratio 1.25, A = +1: inside now (would be clipped at 1.2) -> loss -1.25, not clipped
    #   ratio 0.5, A = -1: min(-0.5, -0.8) = -0.8 -> loss 0.8, clipped low
    logp, old = _ratio_inputs([1.5, 1.25, 0.5])
    out = policy_loss(logp, old, torch.tensor([1.0, 1.0, -1.0]), epsilon=0.2, epsilon_high=0.28)
    assert out.per_token_loss.squeeze(1).tolist() == pytest.approx([-1.28, -1.25, 0.8], abs=1e-6)
    assert out.clipped_high.squeeze(1).tolist() == [True, False, False]
    assert out.clipped_low.squeeze(1).tolist() == [False, False, True]


def test_policy_loss_with_kl():
    # ratio 1 (logp = old = ln 0.5), A = 1 -> surrogate -1; ref = ln 0.25 -> k3 = 0.19315
    # loss = -1 + 0.04 * 0.19315 = -0.992274
    logp, old = _ratio_inputs([1.0])
    ref = torch.full((1, 1), math.log(0.25))
    out = policy_loss(logp, old, torch.tensor([1.0]), ref_logp=ref, beta=0.04)
    assert out.per_token_loss.item() == pytest.approx(-1 + 0.04 * (0.5 + LN2 - 1), abs=1e-6)
    assert out.kl.item() == pytest.approx(0.193147, abs=1e-6)
    with pytest.raises(ValueError, match="reference"):
        policy_loss(logp, old, torch.tensor([1.0]), beta=0.04)


# Qwen's vocabulary: `<think>` = `<` `think` `>`, `<answer>` = `<` `answer` `>` (the tiny model's tokenizer too)
THINK_IDS, ANSWER_IDS = [27, 482, 29], [27, 460, 29]


def test_choice_token_mask_marks_the_token_after_the_shared_prefix():
    ids = torch.tensor([
        [27, 482, 29, 51, 303],  # <think> Tone ...: the choice is `think`, position 1
        [27, 460, 29, 9, 0],  # <answer> odd: `answer`, position 1
        [51, 27, 482, 29, 0],  # opens with neither tag: no choice token
        [27, 99, 29, 0, 0],  # `<` then something else: none
        [27, 482, 0, 0, 0],  # cut after `think` (mask below): still chose
        [27, 0, 0, 0, 0],  # ended after `<`: position 1 is padding, none
    ])
    mask = torch.tensor([[1] * 5, [1] * 4 + [0], [1] * 4 + [0], [1] * 3 + [0] * 2, [1] * 2 + [0] * 3, [1] + [0] * 4])
    choice = choice_token_mask(ids, mask, THINK_IDS, ANSWER_IDS)
    assert choice.nonzero().tolist() == [[0, 1], [1, 1], [4, 1]]


def test_choice_token_mask_with_a_one_token_tag_and_tags_that_cannot_be_told_apart():
    # Qwen3's vocabulary has `<think>` as one token: the choice is the first token
    ids = torch.tensor([[151667, 5, 6], [27, 9217, 29], [5, 6, 7]])
    choice = choice_token_mask(ids, torch.ones_like(ids), [151667], [27, 9217, 29])
    assert choice.nonzero().tolist() == [[0, 0], [1, 0]]
    with pytest.raises(ValueError, match="tokenize alike"):
        choice_token_mask(ids, torch.ones_like(ids), [27, 9217], [27, 9217, 29])


def test_policy_loss_with_per_token_kl_weights():
    # two tokens, ratio 1, A = 1, ref = ln 0.25 at both: the choice token (position 0) without KL, the other with 0.1
    logp, old = _ratio_inputs([1.0, 1.0])
    logp, old = logp.view(1, 2), old.view(1, 2)
    ref = torch.full((1, 2), math.log(0.25))
    betas = kl_weights(torch.tensor([[True, False]]), beta=0.1, decision_beta=0.0)
    assert betas.tolist() == [[0.0, pytest.approx(0.1)]]
    out = policy_loss(logp, old, torch.tensor([1.0]), ref_logp=ref, beta=betas)
    k3 = 0.5 + LN2 - 1
    assert out.per_token_loss.tolist() == [[pytest.approx(-1.0, abs=1e-6), pytest.approx(-1 + 0.1 * k3, abs=1e-6)]]
    assert out.kl.tolist() == [[pytest.approx(k3, abs=1e-6)] * 2]  # the KL itself is still measured at every token
    with pytest.raises(ValueError, match="reference"):
        policy_loss(logp, old, torch.tensor([1.0]), beta=torch.zeros(1, 2))


def test_policy_loss_on_policy_gradient_is_minus_advantage():
    # First iteration (old = logp.detach()): ratio 1, d(-r A)/d logp = -A for every token.
    logp = torch.randn(2, 3).requires_grad_()
    out = policy_loss(logp, logp.detach(), torch.tensor([0.5, -2.0]))
    out.per_token_loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.5] * 3, [2.0] * 3]))


# ---- loss reductions --------------------------------------------------------------------------

LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])


@pytest.mark.parametrize(
    "loss_type, kwargs, expected",
    [
        # per-sequence means (1 + 2) / 2 = 1.5 and 4 / 1 = 4, averaged: (1.5 + 4) / 2 = 2.75
        ("grpo", {}, 2.75),
        # token mean over the batch: (1 + 2 + 4) / 3 = 2.3333
        ("bnpo", {}, 7.0 / 3.0),
        # token sum / (N * max_completion_length) = 7 / (2 * 4) = 0.875
        ("dr_grpo", {"max_completion_length": 4}, 0.875),
        # token sum / num_items (global active tokens / processes) = 7 / 5 = 1.4
        ("dapo", {"num_items": 5}, 1.4),
    ],
)
def test_reduce_loss_by_hand(loss_type, kwargs, expected):
    assert reduce_loss(LOSS, MASK, loss_type, **kwargs).item() == pytest.approx(expected, abs=1e-6)


def test_reduce_loss_covers_every_loss_type_and_rejects_others():
    assert set(LOSS_TYPES) == {"grpo", "bnpo", "dr_grpo", "dapo"}
    with pytest.raises(ValueError, match="dr_grpo"):
        reduce_loss(LOSS, MASK, "sequence")
    with pytest.raises(ValueError, match="max_completion_length"):
        reduce_loss(LOSS, MASK, "dr_grpo")
    with pytest.raises(ValueError, match="num_items"):
        reduce_loss(LOSS, MASK, "dapo")


def test_reduce_loss_empty_sequence_does_not_divide_by_zero():
    # Row 2 fully masked: grpo counts it as a 0 mean -> (1.5 + 0) / 2 = 0.75
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    assert reduce_loss(LOSS, mask, "grpo").item() == pytest.approx(0.75)
    assert reduce_loss(LOSS, torch.zeros(2, 3), "bnpo").item() == 0.0


# ---- selective_log_softmax --------------------------------------------------------------------


def _reference(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), -1).gather(-1, index.unsqueeze(-1)).squeeze(-1)


@pytest.mark.parametrize("chunk", [1, 2, 4, 16])
def test_selective_log_softmax_float32(chunk):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 7, 11, generator=g) * 5  # 5 rows: uneven chunks for chunk 2 and 4
    index = torch.randint(0, 11, (5, 7), generator=g)
    out = selective_log_softmax(logits, index, chunk=chunk)
    assert out.shape == (5, 7) and out.dtype == torch.float32
    torch.testing.assert_close(out, _reference(logits, index), atol=1e-5, rtol=0)


@pytest.mark.parametrize("chunk", [1, 3])
def test_selective_log_softmax_bfloat16(chunk):
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(4, 6, 50, generator=g) * 5).bfloat16()
    index = torch.randint(0, 50, (4, 6), generator=g)
    out = selective_log_softmax(logits, index, chunk=chunk)
    # bf16 is computed in float32: the result equals float32 log_softmax of the same bf16 values.
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, _reference(logits, index), atol=1e-6, rtol=0)


def test_selective_log_softmax_float64():
    logits = torch.randn(3, 4, 9, dtype=torch.float64)
    index = torch.randint(0, 9, (3, 4))
    out = selective_log_softmax(logits, index)
    expected = torch.log_softmax(logits, -1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


# ---- sampler/learner mismatch (algos/importance.py) -------------------------------------------


def test_logprob_gap_by_hand():
    from audiothinker.algos.importance import logprob_gap

    learner = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -9.0]])
    sampler = torch.tensor([[-1.1, -2.0, -2.0], [-0.25, -0.5, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])  # the third column is padding: its gap of 1 and 9 is ignored
    mean, worst = logprob_gap(learner, sampler, mask)
    assert mean == pytest.approx((0.1 + 0.0 + 0.25 + 0.0) / 4) and worst == pytest.approx(0.25)
    assert logprob_gap(learner, sampler, torch.zeros_like(mask)) == (0.0, 0.0)


def test_tis_weights_truncate_at_the_cap_without_gradient():
    import math

    from audiothinker.algos.importance import tis_weights

    old = torch.tensor([[-1.0, -1.0, -3.0]], requires_grad=True)
    sampler = torch.tensor([[-1.0, -2.0, -1.0]])
    w = tis_weights(old, sampler, cap=2.0)
    assert w.tolist()[0] == pytest.approx([1.0, 2.0, math.exp(-2.0)])  # e^1 = 2.72 capped at 2
    assert not w.requires_grad


# ---- learning-rate schedule -------------------------------------------------------------------


def _lrs(steps: int, **train) -> list[float]:
    from audiothinker.algos.optim import build_optimizer
    from audiothinker.config import TrainConfig

    opt, sched = build_optimizer(torch.nn.Linear(2, 2), TrainConfig(learning_rate=2e-4, **train), steps)
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_warmup_stable_decay_is_constant_then_linear_to_zero():
    # 8 steps, ratio 0.5: decay over the last 4: 2e-4 for steps 0-3, then 2e-4 x (4 - k) / 4 for k = 0..3
    assert _lrs(8, lr_scheduler="warmup_stable_decay", lr_decay_ratio=0.5) == pytest.approx(
        [2e-4] * 4 + [2e-4, 1.5e-4, 1e-4, 0.5e-4])
    assert _lrs(4) == pytest.approx([2e-4] * 4)  # constant


@pytest.mark.parametrize("ratio, total, warmup, expected", [
    (0.25, 160, 0, 40),  # the demo: the last 20 of 80 GRPO steps x 2 passes
    (0.25, 6, 0, 2),  # demo --quick: 3 steps x 2 passes; round(1.5) = 2
    (0.25, 2, 0, 1),  # at least one step
    (1.0, 8, 3, 5),  # at most the steps after warm-up
])
def test_decay_steps(ratio, total, warmup, expected):
    from audiothinker.algos.optim import decay_steps

    assert decay_steps(ratio, total, warmup) == expected


def test_decay_needs_a_step_after_warmup():
    with pytest.raises(ValueError, match="train.warmup_steps: 8 leaves no step"):
        _lrs(8, lr_scheduler="warmup_stable_decay", lr_decay_ratio=0.5, warmup_steps=8)
