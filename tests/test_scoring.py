"""score_batch: the presets' totals on hand-built batches, judge failures, what reaches the judge."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audiothinker.data.records import AudioQA
from audiothinker.judge.base import JudgeRequest, Verdict
from audiothinker.judge.rule import RuleJudge
from audiothinker.rewards import get_preset
from audiothinker.trainer.scoring import score_batch

WAV = np.zeros(1600, dtype=np.float32)
# The rule judge scores R_t against the records' facts (the synthetic set's annotations).
BEEPS = AudioQA("r0", WAV, "How many beeps are there?", ["two", "three", "four"], "three", 16000,
                metadata={"facts": [["the count", "three"]]})
LOUD = AudioQA("r1", WAV, "Which segment is loudest?", ["first", "second"], "second", 16000,
               metadata={"facts": [["the louder", "the second segment"]]})


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _fraction(flags: list[bool]) -> float:
    """lambda on one process (`Dist.global_fraction` without the reduction)."""
    return _mean([float(f) for f in flags])


def _score(records, texts, group_size, preset, judge, step=0, total_steps=10):
    return score_batch(records, texts, group_size, get_preset(preset), judge, step, total_steps, _fraction, _mean)


class FakeJudge:
    """Returns canned verdicts keyed by the think text and records every request it sees."""

    def __init__(self, verdicts: dict[str, Verdict]):
        self.verdicts = verdicts
        self.calls: list[tuple[list[JudgeRequest], bool, bool]] = []

    def judge(self, requests, consistency=True, quality=True):
        self.calls.append((list(requests), consistency, quality))
        return [self.verdicts[r.think] for r in requests]

    @property
    def seen(self) -> list[str]:
        return [r.think for reqs, _, _ in self.calls for r in reqs]


# ---- presets on 2 records x 2 completions, with the rule judge --------------------------------

TEXTS = [
    "<think>The count is three. So the answer is three.</think><answer>three</answer>",  # think, correct
    "<answer>three</answer>",  # no-think, correct
    "<think>The louder is the first segment. So the answer is first.</think><answer>first</answer>",  # think, wrong
    "second",  # no tags: format failure, counts as no-think wrong
]
# lambda = 2 think of 4 = 0.5; step 0 of 10: gamma_think = gamma_nothink = exp(-0.5) = g = 0.60653
G = math.exp(-0.5)
# R_a:  [g, 2g, -(1 - g), -g - 2(1 - g)] = [0.60653, 1.21306, -0.39347, -1.39347]
R_A = [G, 2 * G, -(1 - G), -G - 2 * (1 - G)]
R_F = [1.0, 1.0, 1.0, 0.0]
# Rule judge on the two think blocks (judge/rule.py):
#   c0 "The count is three. So the answer is three." -> concludes "three" = the answer: R_c 1;
#      one claim ("the count", "three"), true, of one fact: R_t 1.0
#   c2 "The louder is the first segment. So the answer is first." -> concludes "first" = its answer: R_c 1;
#      one claim ("the louder", "the first segment"), false (the second): R_t 0.0
R_T_THINK = [1.0, 0.0]


def test_rule_judge_values_used_below():
    v = RuleJudge().judge([
        JudgeRequest(BEEPS.question, tuple(BEEPS.choices), "The count is three. So the answer is three.", "three",
                     (("the count", "three"),)),
        JudgeRequest(LOUD.question, tuple(LOUD.choices), "The louder is the first segment. So the answer is first.",
                     "first", (("the louder", "the second segment"),)),
    ])
    assert [x.consistency for x in v] == [1.0, 1.0]
    assert [x.quality for x in v] == R_T_THINK


def test_preset_grpo():
    # accuracy 1/0 + 1.0 * R_f: [1 + 1, 1 + 1, 0 + 1, 0 + 0]
    s = _score([BEEPS, LOUD], TEXTS, 2, "grpo", RuleJudge())
    assert s.total == pytest.approx([2.0, 2.0, 1.0, 0.0])
    assert s.accuracy == [1.0, 1.0, 0.0, 0.0]
    assert s.correct == [True, True, False, False]
    assert s.think == [True, False, True, False]
    assert s.format == R_F


def test_preset_atar():
    # R_a + 0.5 R_f: [g + 0.5, 2g + 0.5, g - 1 + 0.5, -2 + g + 0] = [1.10653, 1.71306, 0.10653, -1.39347]
    s = _score([BEEPS, LOUD], TEXTS, 2, "atar", RuleJudge())
    assert s.total == pytest.approx([1.10653, 1.71306, 0.10653, -1.39347], abs=1e-5)
    assert s.accuracy == pytest.approx(R_A)
    assert s.consistency == [1.0] * 4 and s.think_quality == [0.0] * 4  # not used


def test_preset_atar_cr():
    # R_c_eff: c0 judged consistent 1; c1 no-think correct 1; c2, c3 wrong 0.
    # R_a (1 + 0.5 R_c_eff) + 0.5 R_f:
    #   c0 1.5 g + 0.5 = 1.40980   c1 3 g + 0.5 = 2.31959   c2 0.10653   c3 -1.39347
    s = _score([BEEPS, LOUD], TEXTS, 2, "atar_cr", RuleJudge())
    assert s.consistency == [1.0, 1.0, 0.0, 0.0]
    assert s.total == pytest.approx([1.40980, 2.31959, 0.10653, -1.39347], abs=1e-5)


def test_preset_atar_cr_tr():
    # R_t: think c0 1.0, c2 0.0; no-think c1, c3 get the mean of the batch's think R_t (1.0 + 0.0) / 2 = 0.5
    #   c0 1.40980 + 1.0 = 2.40980   c1 2.31959 + 0.5 = 2.81959
    #   c2 0.10653 + 0.0 = 0.10653   c3 -1.39347 + 0.5 = -0.89347
    s = _score([BEEPS, LOUD], TEXTS, 2, "atar_cr_tr", RuleJudge())
    assert s.think_quality == pytest.approx([1.0, 0.5, 0.0, 0.5])
    assert s.total == pytest.approx([2.40980, 2.81959, 0.10653, -0.89347], abs=1e-5)
    assert s.judge_failures == {"consistency": 0, "think_quality": 0}


def test_totals_match_eq7_component_by_component():
    s = _score([BEEPS, LOUD], TEXTS, 2, "atar_cr_tr", RuleJudge())
    for i in range(4):
        expected = s.accuracy[i] * (1 + 0.5 * s.consistency[i]) + 0.5 * s.format[i] + s.think_quality[i]
        assert s.total[i] == pytest.approx(expected)


def test_atar_cr_without_tr_sends_only_correct_think_to_the_judge():
    # R_c matters only when the answer is correct: c2 (think, wrong) is not judged; c1, c3 have no think.
    judge = FakeJudge({"The count is three. So the answer is three.": Verdict(1.0, None)})
    _score([BEEPS, LOUD], TEXTS, 2, "atar_cr", judge)
    assert judge.seen == ["The count is three. So the answer is three."]
    assert judge.calls[0][1:] == (True, False)  # consistency asked, quality not


def test_no_judge_call_for_presets_without_judge_terms():
    judge = FakeJudge({})
    _score([BEEPS, LOUD], TEXTS, 2, "atar", judge)
    _score([BEEPS, LOUD], TEXTS, 2, "grpo", judge)
    assert judge.calls == []


# ---- judge failures are filled with the group mean of applicable scores -----------------------


def test_judge_failures_are_counted_and_filled():
    texts = [
        # record BEEPS (answer "three"): three think completions, all correct
        "<think>t0</think><answer>three</answer>",
        "<think>t1</think><answer>three</answer>",
        "<think>t2</think><answer>(B)</answer>",
        # record LOUD (answer "second"): think wrong, no-think correct, no-think wrong
        "<think>t3</think><answer>first</answer>",
        "<answer>second</answer>",
        "<answer>first</answer>",
    ]
    judge = FakeJudge({
        "t0": Verdict(1.0, 0.8),
        "t1": Verdict(None, None),  # the judge failed on both questions
        "t2": Verdict(0.0, 0.5),
        "t3": Verdict(1.0, 0.2),  # consistency of a wrong answer is not used
    })
    s = _score([BEEPS, LOUD], texts, 3, "atar_cr_tr", judge)

    # Only the think completions reach the judge, each once, in one batched call.
    assert len(judge.calls) == 1
    assert judge.seen == ["t0", "t1", "t2", "t3"]
    assert s.judge_failures == {"consistency": 1, "think_quality": 1}
    # R_c_eff: t1's missing score = mean of its group's correct, scored completions (1 + 0) / 2 = 0.5;
    # wrong answers 0; the no-think correct completion 1.
    assert s.consistency == pytest.approx([1.0, 0.5, 0.0, 0.0, 1.0, 0.0])
    # R_t: t1's missing score = mean of its group's think scores (0.8 + 0.5) / 2 = 0.65;
    # no-think completions get the batch's think mean (0.8 + 0.65 + 0.5 + 0.2) / 4 = 0.5375.
    assert s.think_quality == pytest.approx([0.8, 0.65, 0.5, 0.2, 0.5375, 0.5375])

    # lambda = 4 / 6; step 0: gt = exp(-2/3) = 0.51342, gn = exp(-1/3) = 0.71653
    gt, gn = math.exp(-2 / 3), math.exp(-1 / 3)
    expected = [
        gt * 1.5 + 0.5 + 0.8,  # 0.77013 + 1.3 = 2.07013
        gt * 1.25 + 0.5 + 0.65,  # 1.79177
        gt * 1.0 + 0.5 + 0.5,  # 1.51342
        -(1 - gt) + 0.5 + 0.2,  # 0.21342
        2 * gn * 1.5 + 0.5 + 0.5375,  # 3.18709
        (-gn - 2 * (1 - gn)) + 0.5 + 0.5375,  # -0.24597
    ]
    assert expected == pytest.approx([2.07013, 1.79177, 1.51342, 0.21342, 3.18709, -0.24597], abs=1e-5)
    assert s.total == pytest.approx(expected, abs=1e-9)


def test_no_think_r_t_is_mean_of_think_r_t():
    # One think completion per record, scored 0.3 and 0.9: no-think ones get (0.3 + 0.9) / 2 = 0.6.
    texts = ["<think>a</think><answer>three</answer>", "<answer>two</answer>",
             "<think>b</think><answer>second</answer>", "<answer>second</answer>"]
    judge = FakeJudge({"a": Verdict(1.0, 0.3), "b": Verdict(1.0, 0.9)})
    s = _score([BEEPS, LOUD], texts, 2, "atar_cr_tr", judge)
    assert judge.seen == ["a", "b"]
    assert s.think_quality == pytest.approx([0.3, 0.6, 0.9, 0.6])


def test_no_think_r_t_is_zero_without_think_completions():
    judge = FakeJudge({})
    s = _score([BEEPS, LOUD], ["<answer>three</answer>", "<answer>two</answer>"] * 2, 2, "atar_cr_tr", judge)
    assert judge.calls == []
    assert s.think_quality == [0.0] * 4
    # lambda 0: gamma_nothink = exp(-1) = 0.36788; correct 2 * 0.36788 * 1.5 + 0.5 = 1.60364,
    # wrong (-0.36788 - 2 * 0.63212) * 1 + 0.5 = -1.13212  (c2 "three" for LOUD is not an option: wrong)
    assert s.total == pytest.approx([1.60364, -1.13212, -1.13212, -1.13212], abs=1e-5)


# ---- issue 11: a judge outage is never scored as 0 -------------------------------------------

DOWN_TEXTS = [
    # record BEEPS: two correct think completions, one wrong think, one correct no-think
    "<think>t0</think><answer>three</answer>", "<think>t1</think><answer>three</answer>",
    "<think>t2</think><answer>two</answer>", "<answer>three</answer>",
    # record LOUD: correct think, wrong think, wrong no-think, correct no-think
    "<think>t3</think><answer>second</answer>", "<think>t4</think><answer>first</answer>",
    "<answer>first</answer>", "<answer>second</answer>",
]


def _advantages(total: list[float], g: int) -> list[float]:
    import torch

    from audiothinker.algos import group_advantages

    return group_advantages(torch.tensor(total), g, "group").tolist()


def test_judge_entirely_down_leaves_both_components_out():
    down = FakeJudge({f"t{i}": Verdict(None, None) for i in range(5)})
    s = _score([BEEPS, LOUD], DOWN_TEXTS, 4, "atar_cr_tr", down)
    plain = _score([BEEPS, LOUD], DOWN_TEXTS, 4, "atar", None)
    assert s.judge_requests == 5 and s.judge_answered == 0
    # No score is reported as 0: the correct think completions' R_c_eff and every think R_t are None.
    # (the correct no-think completions' R_c = 1 is left out with the rest of their group's term)
    assert s.consistency == [None, None, 0.0, None, None, 0.0, 0.0, None]
    assert s.think_quality == [None] * 8  # no-think too: the batch's think mean does not exist
    # Neither term moves the advantages: they equal those of the preset without judge terms.
    assert s.total == pytest.approx(plain.total)
    assert _advantages(s.total, 4) == pytest.approx(_advantages(plain.total, 4))


def test_a_group_without_any_score_is_unaffected_while_another_group_is_scored():
    # BEEPS's group has no score at all; LOUD's correct think t3 is scored (R_c 1, R_t 0.8; t4 R_t 0.4).
    judge = FakeJudge({"t0": Verdict(None, None), "t1": Verdict(None, None), "t2": Verdict(None, None),
                       "t3": Verdict(1.0, 0.8), "t4": Verdict(None, 0.4)})
    s = _score([BEEPS, LOUD], DOWN_TEXTS, 4, "atar_cr_tr", judge)
    plain = _score([BEEPS, LOUD], DOWN_TEXTS, 4, "atar", None)
    assert s.judge_answered == 2
    # BEEPS: no judge score for R_c (the no-think completion's rule-given 1 does not stand in for
    # one) nor R_t: both left out; its no-think R_t is the batch's think mean (0.8 + 0.4) / 2.
    assert s.consistency[:4] == [None, None, 0.0, None]
    assert s.think_quality[:4] == [None, None, None, pytest.approx(0.6)]
    assert _advantages(s.total, 4)[:4] == pytest.approx(_advantages(plain.total, 4)[:4], abs=1e-5)
    # LOUD is scored normally (the wrong t4's missing R_c is not needed): its advantages differ from plain ATAR's.
    assert s.consistency[4:] == [1.0, 0.0, 0.0, 1.0]
    assert s.think_quality[4:] == pytest.approx([0.8, 0.4, 0.6, 0.6])
    assert _advantages(s.total, 4)[4:] != pytest.approx(_advantages(plain.total, 4)[4:], abs=1e-3)


def test_a_group_without_think_completions_keeps_its_consistency_term():
    # Nothing was missing there: the no-think completions' R_c = 1 applies as usual.
    s = _score([BEEPS, LOUD], DOWN_TEXTS[3:4] * 2 + DOWN_TEXTS[6:8], 2, "atar_cr", FakeJudge({}))
    assert s.consistency == [1.0, 1.0, 0.0, 1.0]
