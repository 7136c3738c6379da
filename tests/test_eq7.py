"""`rewards.eq7_rewards`, Eq. 7 as trained, on hand-worked batches: one test per [ours] rule."""

from __future__ import annotations

import math

import pytest

from audiothinker.judge.base import Verdict
from audiothinker.parsing import parse_completion
from audiothinker.rewards import eq7_rewards, get_preset, think_quality_scores

G = math.exp(-0.5)  # lambda 0.5 at step 0: gamma_think = gamma_nothink = exp(-0.5) = 0.60653
THINK_OK = "<think>so x</think><answer>x</answer>"
NO_THINK_OK = "<answer>x</answer>"
NO_THINK_WRONG = "<answer>y</answer>"


def _eq7(texts, correct, verdicts, group_size, lam, think_mean, preset="atar_cr_tr", step=0, total_steps=10):
    p = get_preset(preset)
    return eq7_rewards([parse_completion(t) for t in texts], correct, verdicts, group_size, lam, think_mean, step,
                       total_steps, adaptive=p.adaptive_accuracy, consistency=p.consistency,
                       think_quality=p.think_quality, format_weight=p.format_weight)


def test_empty_think_block_gets_no_consistency_and_no_quality():
    # [ours 1] c0 thinks with an empty block (never sent: verdict None); c1 is a correct no-think.
    # R_a: g, 2g. R_c_eff: 0 (not seen), 1 (no-think). R_t: 0, and the no-think value think_mean 0.6.
    #   c0 g * (1 + 0) + 0 + 0.5 = 1.10653      c1 2g * 1.5 + 0.6 + 0.5 = 2.91959
    r = _eq7(["<think></think><answer>x</answer>", NO_THINK_OK], [True, True], [None, None], 2, 0.5, 0.6)
    assert r.accuracy == pytest.approx([G, 2 * G])
    assert r.consistency == [0.0, 1.0] and r.think_quality == [0.0, 0.6] and r.format == [1.0, 1.0]
    assert r.total == pytest.approx([1.10653, 2.91959], abs=1e-5)


def test_a_judge_failure_is_filled_with_its_group_mean():
    # [ours 2] three correct think completions, the middle one unscored on both questions.
    # R_c_eff: (1 + 0) / 2 = 0.5 for it; R_t: (0.8 + 0.5) / 2 = 0.65. lambda 1: gamma_think = exp(-1) = 0.36788
    #   c0 0.36788 * 1.5 + 0.8 + 0.5 = 1.85182   c1 0.36788 * 1.25 + 0.65 + 0.5 = 1.60985   c2 0.36788 + 0.5 + 0.5 = 1.36788
    verdicts = [Verdict(1.0, 0.8), Verdict(None, None), Verdict(0.0, 0.5)]
    r = _eq7([THINK_OK] * 3, [True] * 3, verdicts, 3, 1.0, 0.65)
    assert r.consistency == pytest.approx([1.0, 0.5, 0.0]) and r.think_quality == pytest.approx([0.8, 0.65, 0.5])
    assert r.total == pytest.approx([1.85182, 1.60985, 1.36788], abs=1e-5)
    assert think_quality_scores([True] * 3, verdicts, 3) == pytest.approx([0.8, 0.65, 0.5])


def test_a_group_without_any_score_gets_the_components_as_constants():
    # [ours 3] group 1: a correct think without any score, a correct no-think; group 2 scored normally
    # (think correct R_c 1, R_t 0.4; a wrong no-think). think_mean = 0.4 (the one scored think R_t).
    # Group 1: R_c_eff left out (None, term 0 for both); R_t the no-think value 0.4 for both.
    #   c0 g + 0.4 + 0.5 = 1.50653   c1 2g + 0.4 + 0.5 = 2.11306
    #   c2 1.5 g + 0.4 + 0.5 = 1.80980   c3 (-g - 2 (1 - g)) + 0.4 + 0.5 = -0.49347
    verdicts = [Verdict(None, None), None, Verdict(1.0, 0.4), None]
    texts, correct = [THINK_OK, NO_THINK_OK, THINK_OK, NO_THINK_WRONG], [True, True, True, False]
    assert think_quality_scores([True, False, True, False], verdicts, 2) == [None, None, 0.4, None]
    r = _eq7(texts, correct, verdicts, 2, 0.5, 0.4)
    assert r.consistency == [None, None, 1.0, 0.0]
    assert r.think_quality == [None, 0.4, 0.4, 0.4]
    assert r.total == pytest.approx([1.50653, 2.11306, 1.80980, -0.49347], abs=1e-5)
    # Group 1's members differ by their R_a alone: the judge terms add nothing to its advantages.
    assert r.total[1] - r.total[0] == pytest.approx(r.accuracy[1] - r.accuracy[0])


def test_no_think_quality_is_the_batch_think_mean_zero_without_think_none_without_scores():
    # [ours 4] think_mean 0.6 -> every no-think R_t 0.6.
    r = _eq7([THINK_OK, NO_THINK_OK], [True, True], [Verdict(1.0, 0.3), None], 2, 0.5, 0.6)
    assert r.think_quality == pytest.approx([0.3, 0.6])
    # No think completion anywhere (lambda 0): 0 (SPEC). lambda 0: gamma_nothink = exp(-1) = 0.36788:
    #   2 * 0.36788 * 1.5 + 0 + 0.5 = 1.60364
    r = _eq7([NO_THINK_OK] * 2, [True] * 2, [None, None], 2, 0.0, None)
    assert r.think_quality == [0.0, 0.0] and r.total == pytest.approx([1.60364] * 2, abs=1e-5)
    # Think completions exist but none was scored: no score (None), and no R_t term at all.
    #   c0 g * 1.5 + 0.5 = 1.40980   c1 2g * 1.5 + 0.5 = 2.31959
    r = _eq7([THINK_OK, NO_THINK_OK], [True, True], [Verdict(1.0, None), None], 2, 0.5, None)
    assert r.think_quality == [None, None] and r.consistency == [1.0, 1.0]
    assert r.total == pytest.approx([1.40980, 2.31959], abs=1e-5)


def test_without_a_judge_consistency_is_one_and_quality_zero():
    # [ours 5] verdicts None: the empty think block keeps R_c = 1 too; R_t 0 throughout.
    #   c0 g * 1.5 + 0 + 0.5 = 1.40980   c1 (-(1 - g)) * 1 + 0.5 = 0.10653 (wrong: R_c_eff 0)
    r = _eq7(["<think></think><answer>x</answer>", "<think>a</think><answer>y</answer>"], [True, False], None, 2,
             0.5, 0.0)
    assert r.consistency == [1.0, 0.0] and r.think_quality == [0.0, 0.0]
    assert r.total == pytest.approx([1.40980, 0.10653], abs=1e-5)


def test_the_preset_weights():
    texts, correct = [THINK_OK, NO_THINK_OK, "x"], [True, False, False]  # "x": untagged, R_f 0
    verdicts = [Verdict(1.0, 0.9), None, None]
    # grpo rows: 1/0 accuracy + 1.0 R_f; R_c reported 1, R_t 0: [1 + 1, 0 + 1, 0 + 0]
    r = _eq7(texts, correct, verdicts, 3, 1 / 3, 0.9, preset="grpo")
    assert r.total == [2.0, 1.0, 0.0] and r.consistency == [1.0] * 3 and r.think_quality == [0.0] * 3
    # atar: R_a + 0.5 R_f, the judge's verdicts unused. lambda 1/3, step 10 of 10: base values 1, -1, -1
    r = _eq7(texts, correct, verdicts, 3, 1 / 3, 0.9, preset="atar", step=10)
    assert r.accuracy == [1.0, -1.0, -1.0] and r.total == [1.5, -0.5, -1.0]
    # atar_cr_tr: 1 * 1.5 + 0.5 + 0.9 = 2.9; -1 * 1 + 0.5 + 0.9 = 0.4; -1 + 0 + 0.9 = -0.1
    r = _eq7(texts, correct, verdicts, 3, 1 / 3, 0.9, step=10)
    assert r.total == pytest.approx([2.9, 0.4, -0.1])
