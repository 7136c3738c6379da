"""The rule judge that stands in for the LLM judge on the synthetic set: values worked out by hand."""

from __future__ import annotations

import pytest

from audiothinker.judge.base import JudgeRequest, Verdict
from audiothinker.judge.rule import RuleJudge, last_option_named, rule_consistency, rule_quality

CHOICES = ("two", "three", "four")


def _req(think: str, answer: str = "three", choices: tuple[str, ...] = CHOICES) -> JudgeRequest:
    return JudgeRequest("How many beeps?", choices, think, answer)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("I count three beeps", 1),
        ("not two but three", 1),  # the last one named wins
        ("three, no wait, two.", 0),
        ("Three? FOUR!", 2),  # case and punctuation do not matter
        ("twenty beeps", None),  # whole words only: "twenty" is not "two"
        ("nothing here", None),
    ],
)
def test_last_option_named(text, expected):
    assert last_option_named(text, CHOICES) == expected


def test_last_option_named_prefers_the_longer_option_at_the_same_place():
    # "dog barking" and "barking" both end at the text's end; "barking" starts later, so it is last.
    assert last_option_named("I hear a dog barking", ("dog barking", "barking")) == 1
    # Both start at the same position: the longer option is the one named.
    assert last_option_named("dog barking loudly", ("dog", "dog barking")) == 1


def test_rule_consistency():
    assert rule_consistency(_req("I count three beeps", "three")) == 1.0
    assert rule_consistency(_req("I count three beeps", "B")) == 1.0  # the answer by letter
    assert rule_consistency(_req("I count three beeps", "two")) == 0.0  # disagrees
    assert rule_consistency(_req("I count some beeps", "three")) == 0.0  # names no option
    assert rule_consistency(_req("I count three beeps", "a lot")) == 0.0  # answer names no option


@pytest.mark.parametrize(
    "think, expected",
    [
        # 2 steps of >= 2 words: 0.3 * 2/3 = 0.2; "three" a number +0.3; "more"/"than"/"so" +0.2;
        # names "three" +0.2 -> 0.9; 9 words, no penalty
        ("I hear three beeps, more than two. So three.", 0.9),
        # 3+ steps: 0.3; number "3" +0.3; "louder" +0.2; option "four" +0.2 -> 1.0
        ("There are 3 clear beeps. The last is louder. Maybe a fourth hides. So four.", 1.0),
        # 1 step: 0.1; no number, no comparison, no option -> 0.1
        ("It sounds like beeping", 0.1),
        # 2 words (< 3): 1 step 0.1 + option "two" 0.2 + number "two" 0.3 = 0.6, halved -> 0.3
        ("maybe two", 0.3),
        # empty reasoning: 0
        ("", 0.0),
    ],
)
def test_rule_quality_by_hand(think, expected):
    assert rule_quality(_req(think)) == pytest.approx(expected)


def test_rule_quality_penalises_rambling():
    # 130 words: 3 steps 0.3 + number 0.3 = 0.6, halved for > 120 words -> 0.3
    think = ". ".join(["one beep here"] * 43) + ". beep"
    assert len(think.split()) == 130
    assert rule_quality(_req(think)) == pytest.approx(0.3)


def test_quality_is_a_multiple_of_a_tenth():
    for think in ["a b. c d; e f\n g h", "3 beeps louder than", "x y z so two three four"]:
        q = rule_quality(_req(think))
        assert 0.0 <= q <= 1.0
        assert round(q * 10) == pytest.approx(q * 10)


def test_judge_returns_only_what_was_asked():
    reqs = [_req("I hear three beeps, more than two. So three."), _req("It sounds like beeping", "two")]
    judge = RuleJudge()
    assert judge.judge(reqs) == [Verdict(1.0, 0.9), Verdict(0.0, 0.1)]
    assert judge.judge(reqs, consistency=False) == [Verdict(None, 0.9), Verdict(None, 0.1)]
    assert judge.judge(reqs, quality=False) == [Verdict(1.0, None), Verdict(0.0, None)]
    assert judge.judge([]) == []
