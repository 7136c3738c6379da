"""Reward formulas (SPEC section 3) against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from audiothinker.parsing import parse_completion
from audiothinker.rewards import (
    PRESETS,
    accuracy_reward,
    atar_reward,
    consistency_effective,
    direct_break_even,
    fill_missing,
    format_reward,
    get_preset,
    total_reward,
)

# (think, correct) in the order of SPEC's table: think+correct, think+wrong, no-think+correct, no-think+wrong.
CASES = [(True, True), (True, False), (False, True), (False, False)]


def _atar_row(lam: float, step: int = 0, total: int = 1000) -> list[float]:
    return [atar_reward(th, ok, lam, step, total) for th, ok in CASES]


# ---- R_a (ATAR) -------------------------------------------------------------------------------


def test_atar_spec_example():
    # step 0, lambda 0.5: gamma_think = gamma_nothink = exp(-0.5 * 1) = 0.60653
    #   think+correct    gamma                    =  0.607
    #   think+wrong      -(1 - 0.60653)           = -0.393
    #   no-think+correct 2 * 0.60653              =  1.213
    #   no-think+wrong   -0.60653 - 2 * 0.39347   = -1.393
    assert _atar_row(0.5) == pytest.approx([0.607, -0.393, 1.213, -1.393], abs=5e-4)
    g = math.exp(-0.5)
    assert _atar_row(0.5) == pytest.approx([g, -(1 - g), 2 * g, -g - 2 * (1 - g)], abs=1e-12)


def test_atar_lambda_zero():
    # lambda 0 (nobody thinks): gamma_think = exp(0) = 1, gamma_nothink = exp(-1) = 0.36788
    #   think: 1 and -(1 - 1) = 0 (thinking is not penalised at all)
    #   no-think: 2 * 0.36788 = 0.73576 and -0.36788 - 2 * 0.63212 = -1.63212
    assert _atar_row(0.0) == pytest.approx([1.0, 0.0, 0.73576, -1.63212], abs=1e-5)


def test_atar_lambda_one():
    # lambda 1 (everybody thinks): gamma_think = exp(-1) = 0.36788, gamma_nothink = exp(0) = 1
    #   think: 0.36788 and -(1 - 0.36788) = -0.63212
    #   no-think: the base values 2 and -1 - 2 * 0 = -1
    assert _atar_row(1.0) == pytest.approx([0.36788, -0.63212, 2.0, -1.0], abs=1e-5)


@pytest.mark.parametrize("think_acc, consistency, expected", [
    # without R_c: a trace earns 1 p_t, a direct answer 2 p_d - (1 - p_d) = 3 p_d - 1; equal at p_d = (1 + p_t) / 3
    (1.0, False, 2 / 3), (0.5, False, 0.5), (0.0, False, 1 / 3),
    # with R_c: 1.5 p_t against 3 p_d - (1 - p_d) = 4 p_d - 1; equal at p_d = (1 + 1.5 p_t) / 4
    (1.0, True, 0.625), (0.97, True, (1 + 1.5 * 0.97) / 4), (0.0, True, 0.25),
])
def test_direct_break_even(think_acc, consistency, expected):
    p_d = direct_break_even(think_acc, consistency)
    assert p_d == pytest.approx(expected, abs=1e-12)
    # at that accuracy the two modes' expected rewards at step T are equal
    scale = 1.5 if consistency else 1.0
    think = think_acc * 1.0 * scale + (1 - think_acc) * 0.0
    assert p_d * 2.0 * scale + (1 - p_d) * -1.0 == pytest.approx(think, abs=1e-12)


def test_direct_break_even_rejects_a_rate_outside_0_1():
    with pytest.raises(ValueError, match="think_accuracy"):
        direct_break_even(1.2)


def test_atar_halfway_through_training():
    # step 500 of 1000, lambda 1: gamma_think = exp(-1 * (1 - 0.5)) = exp(-0.5) = 0.60653
    assert atar_reward(True, True, 1.0, 500, 1000) == pytest.approx(0.60653, abs=1e-5)
    assert atar_reward(True, False, 1.0, 500, 1000) == pytest.approx(-0.39347, abs=1e-5)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_atar_at_the_end_gives_base_values(lam):
    # step = T: 1 - step/T = 0, both gammas exp(0) = 1 whatever lambda: base values 1, 0, 2, -1.
    assert _atar_row(lam, step=1000, total=1000) == pytest.approx([1.0, 0.0, 2.0, -1.0], abs=1e-12)
    # Past the end the schedule stays at its end point.
    assert _atar_row(lam, step=1200, total=1000) == pytest.approx([1.0, 0.0, 2.0, -1.0], abs=1e-12)


@pytest.mark.parametrize(
    "lam, step, total",
    [(-0.1, 0, 10), (1.1, 0, 10), (0.5, 0, 0), (0.5, 0, -5)],
)
def test_atar_bad_inputs_raise(lam, step, total):
    with pytest.raises(ValueError):
        atar_reward(True, True, lam, step, total)


# ---- the other components ---------------------------------------------------------------------


def test_format_reward():
    assert format_reward(parse_completion("<think>a</think> <answer>b</answer>")) == 1.0
    assert format_reward(parse_completion("<answer>b</answer>")) == 1.0
    assert format_reward(parse_completion("<answer>b</answer> trailing")) == 0.0
    assert format_reward(parse_completion("b")) == 0.0


def test_accuracy_and_consistency_effective():
    assert (accuracy_reward(True), accuracy_reward(False)) == (1.0, 0.0)
    # R_c_eff = R_c if correct else 0; a missing score (None) stays missing for fill_missing.
    assert consistency_effective(1.0, True) == 1.0
    assert consistency_effective(0.0, True) == 0.0
    assert consistency_effective(1.0, False) == 0.0
    assert consistency_effective(None, True) is None
    assert consistency_effective(None, False) == 0.0


@pytest.mark.parametrize(
    "r_a, r_c, r_f, r_t, expected",
    [
        (1.0, 1.0, 1.0, 0.7, 2.7),  # 1 * (1 + 0.5) + 0.5 + 0.7
        (1.0, 0.0, 1.0, 0.0, 1.5),  # 1 * 1 + 0.5
        (2.0, 1.0, 1.0, 0.3, 3.8),  # 2 * 1.5 + 0.5 + 0.3
        (-1.0, 0.0, 0.0, 0.2, -0.8),  # -1 * 1 + 0 + 0.2
        (-0.393, 0.0, 1.0, 0.5, 0.607),  # -0.393 + 0.5 + 0.5
        (0.6, 0.5, 1.0, 0.0, 1.25),  # 0.6 * 1.25 + 0.5 = 0.75 + 0.5
    ],
)
def test_total_reward_eq7(r_a, r_c, r_f, r_t, expected):
    assert total_reward(r_a, r_c, r_f, r_t) == pytest.approx(expected, abs=1e-12)


def test_total_reward_format_weight():
    # the grpo rows weigh R_f 1.0: 1 * (1 + 0) + 1.0 * 1 + 0 = 2
    assert total_reward(1.0, 0.0, 1.0, 0.0, format_weight=1.0) == 2.0


# ---- fill_missing -----------------------------------------------------------------------------


def test_fill_missing_group_mean():
    # groups of 2: [1, None] -> fill 1 (mean of [1]); [0, 0.5] untouched
    assert fill_missing([1.0, None, 0.0, 0.5], 2) == [1.0, 1.0, 0.0, 0.5]
    # groups of 3: [1, 0, None] -> mean 0.5; [0, None, 0.8] -> mean 0.4
    assert fill_missing([1.0, 0.0, None, 0.0, None, 0.8], 3) == pytest.approx([1.0, 0.0, 0.5, 0.0, 0.4, 0.8])


def test_fill_missing_with_applicable():
    # Same values; index 3 is not applicable (e.g. a wrong answer's R_c_eff = 0):
    # group 1 mean of [1, 0] = 0.5; group 2 mean of [0.8] only = 0.8 (the 0 does not count).
    values = [1.0, 0.0, None, 0.0, None, 0.8]
    applicable = [True, True, True, False, False, True]
    assert fill_missing(values, 3, applicable) == pytest.approx([1.0, 0.0, 0.5, 0.0, 0.8, 0.8])


def test_fill_missing_leaves_a_group_without_scores_unscored():
    # Issue 11: a group with no applicable score borrows nothing (neither other groups' mean nor 0):
    # its Nones stay, and the caller leaves the component out of that group.
    assert fill_missing([1.0, 0.5, None, None], 2) == [1.0, 0.5, None, None]
    # group 2's only score is not applicable: index 3 stays None (index 2's 0.2 is kept as is)
    assert fill_missing([1.0, 1.0, 0.2, None], 2, [True, True, False, True]) == [1.0, 1.0, 0.2, None]
    assert fill_missing([None, None], 2) == [None, None]
    out = fill_missing([1, None], 2)
    assert all(isinstance(v, float) for v in out)


def test_fill_missing_bad_length():
    with pytest.raises(ValueError, match="groups of 2"):
        fill_missing([1.0, 0.0, 1.0], 2)


# ---- presets ---------------------------------------------------------------------------------


def test_presets_table():
    # SPEC section 3 ablation table: (prompt, ATAR, R_c, R_t, weight of R_f)
    expected = {
        "grpo": ("no_think", False, False, False, 1.0),
        "grpo_cot": ("think", False, False, False, 1.0),
        "atar": ("adaptive", True, False, False, 0.5),
        "atar_cr": ("adaptive", True, True, False, 0.5),
        "atar_cr_tr": ("adaptive", True, True, True, 0.5),
    }
    assert set(PRESETS) == set(expected)
    for name, row in expected.items():
        p = get_preset(name)
        assert p.name == name
        assert (p.prompt, p.adaptive_accuracy, p.consistency, p.think_quality, p.format_weight) == row


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="atar_cr_tr"):
        get_preset("atar_tr")


@pytest.fixture
def dummy_preset():
    """A preset registered for one test, next to its definition as a real one would be; removed after."""
    from audiothinker.rewards import Preset, register_preset

    preset = register_preset(Preset("dummy_think_only", "think", True, False, False, 0.25))
    yield preset
    del PRESETS[preset.name]


def test_a_registered_preset_is_accepted_by_config_and_cli(dummy_preset, capsys):
    from audiothinker.cli import main
    from audiothinker.config import load_config
    from audiothinker.rewards import register_preset

    assert get_preset("dummy_think_only") is dummy_preset
    assert load_config(overrides=["reward.preset=dummy_think_only"]).reward.preset == "dummy_think_only"
    assert main(["config", "--set", "reward.preset=dummy_think_only"]) == 0
    assert "preset: dummy_think_only" in capsys.readouterr().out
    with pytest.raises(ValueError, match="already registered"):
        register_preset(dummy_preset)


def test_an_unregistered_preset_is_refused_naming_the_registered_ones(capsys):
    from audiothinker.cli import main

    assert main(["config", "--set", "reward.preset=dummy_think_only"]) == 2
    err = capsys.readouterr().err
    assert "reward.preset" in err and "atar_cr_tr" in err and "dummy" in err
