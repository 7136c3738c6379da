"""The rule judge that stands in for the LLM judge on the synthetic set: values worked out by hand."""

from __future__ import annotations

import json

import pytest

from audiothinker.config import ConfigError
from audiothinker.data.records import AudioQA
from audiothinker.judge.base import JudgeRequest, Verdict
from audiothinker.judge.rule import (
    MissingFactsError, RuleJudge, claims, fact_share, last_option_named, record_facts, require_facts,
    rule_consistency, rule_quality, stated_conclusion,
)

CHOICES = ("odd", "even")
FACTS = (("tone one", "high"), ("the count", "one"), ("tone two", "low"), ("the count", "one"),
         ("tone three", "high"), ("the count", "two"))
GOOD = ("Tone one is high. The count is one. Tone two is low. The count is one. Tone three is high. "
        "The count is two. So the answer is even.")


def _req(think: str, answer: str = "even", facts=FACTS) -> JudgeRequest:
    return JudgeRequest("Is the number of high tones odd or even?", CHOICES, think, answer, facts)


@pytest.mark.parametrize(
    "text, choices, expected",
    [
        ("I count three beeps", ("two", "three", "four"), 1),
        ("not two but three", ("two", "three", "four"), 1),  # the last one named wins
        ("Three? FOUR!", ("two", "three", "four"), 2),  # case and punctuation do not matter
        ("twenty beeps", ("two", "three", "four"), None),  # whole words only: "twenty" is not "two"
        ("nothing here", ("two", "three", "four"), None),
    ],
)
def test_last_option_named(text, choices, expected):
    assert last_option_named(text, choices) == expected


def test_last_option_named_prefers_the_longer_option_at_the_same_place():
    assert last_option_named("I hear a dog barking", ("dog barking", "barking")) == 1
    assert last_option_named("dog barking loudly", ("dog", "dog barking")) == 1


def test_stated_conclusion_reads_the_last_answer_sentence():
    assert stated_conclusion(GOOD, CHOICES) == 1
    # An option named after the conclusion sentence does not change what the trace concluded.
    assert stated_conclusion("So the answer is odd. Even so, it was close", CHOICES) == 0
    # Two conclusions: the last one counts.
    assert stated_conclusion("The answer is odd. No: the answer is even.", CHOICES) == 1
    # No conclusion sentence: the last option named.
    assert stated_conclusion("odd or maybe even", CHOICES) == 1
    assert stated_conclusion("I cannot tell", CHOICES) is None


def test_rule_consistency():
    assert rule_consistency(_req(GOOD, "even")) == 1.0
    assert rule_consistency(_req(GOOD, "B")) == 1.0  # the answer by letter
    assert rule_consistency(_req(GOOD, "odd")) == 0.0  # the trace concluded even
    assert rule_consistency(_req("Tone one is high.", "even")) == 0.0  # concludes nothing
    assert rule_consistency(_req(GOOD, "a lot")) == 0.0  # the answer names no option


def test_claims_are_subject_is_value_sentences_without_the_conclusion():
    assert claims("Tone one is high. So the count is one; the answer is odd. Nothing here") == [
        ("tone one", "high"), ("the count", "one")]


@pytest.mark.parametrize(
    "think, expected",
    [
        (GOOD, 1.0),  # 6 true claims of 6 facts
        # tone two misheard: 5 true of 6
        (GOOD.replace("Tone two is low", "Tone two is high"), 0.8),
        # the second count wrong (checked in order: the 2nd "the count" against the 2nd fact): 5 of 6
        (GOOD.replace("Tone two is low. The count is one", "Tone two is low. The count is two"), 0.8),
        # only two claims, both true: 2 of max(2, 6)
        ("Tone one is high. The count is one. So the answer is even.", 0.3),
        # a made-up subject counts against: 6 true of max(7, 6)
        (GOOD.replace("So the", "Tone nine is loud. So the"), 0.9),
        # the conclusion is not a fact: a wrong conclusion keeps R_t (R_c sees it)
        (GOOD.replace("answer is even", "answer is odd"), 1.0),
        ("", 0.0),
        ("I just know.", 0.0),
    ],
)
def test_rule_quality_by_hand(think, expected):
    assert rule_quality(_req(think)) == pytest.approx(expected)


def test_fact_share_exact():
    assert fact_share([("tone one", "high")], [("tone one", "high"), ("tone two", "low")]) == 0.5
    assert fact_share([], []) == 0.0


def test_quality_needs_facts():
    with pytest.raises(MissingFactsError, match="LLM judge"):
        rule_quality(_req(GOOD, facts=None))
    # Consistency needs no facts.
    assert RuleJudge().judge([_req(GOOD, facts=None)], quality=False) == [Verdict(1.0, None)]


def test_facts_do_not_change_request_equality():
    # An LLM judge caches by request; it never sees the facts, so they are not part of the key.
    assert _req(GOOD) == _req(GOOD, facts=None) and hash(_req(GOOD)) == hash(_req(GOOD, facts=None))


def test_judge_returns_only_what_was_asked():
    reqs = [_req(GOOD), _req("Tone one is high. So the answer is odd.", "even")]
    judge = RuleJudge()
    assert judge.judge(reqs) == [Verdict(1.0, 1.0), Verdict(0.0, 0.2)]
    assert judge.judge(reqs, consistency=False) == [Verdict(None, 1.0), Verdict(None, 0.2)]
    assert judge.judge(reqs, quality=False) == [Verdict(1.0, None), Verdict(0.0, None)]
    assert judge.judge([]) == []


def test_record_facts_and_require_facts():
    syn = AudioQA("s1", "x.wav", "q?", ["a", "b"], "a", metadata={"facts": [["tone one", "high"]]})
    real = AudioQA("mmau-7", "y.wav", "q?", ["a", "b"], "a", metadata={"raw": {}})
    assert record_facts(syn) == (("tone one", "high"),) and record_facts(real) is None
    require_facts([syn], "train.jsonl")
    with pytest.raises(ConfigError, match=r"train.jsonl \(record 'mmau-7'\).*LLM judge"):
        require_facts([syn, real], "train.jsonl")


def test_train_with_rule_judge_on_data_without_facts_is_an_error(tmp_path, capsys):
    """Issue 8 item 7: `judge.backend: rule` on any data that is not the synthetic set stops, naming the fix."""
    from audiothinker.cli import main
    from audiothinker.data.synthetic import write_synthetic

    path = write_synthetic(tmp_path / "data", 4, seed=1)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r["metadata"] = {}
    plain = tmp_path / "plain.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "data" / "plain.jsonl").write_text(plain.read_text())
    rc = main(["train", "--set", "model.name_or_path=tiny:qwen2_audio_short", "--set", "data.format=jsonl",
               "--set", f"data.train_file={tmp_path / 'data' / 'plain.jsonl'}", "--set", "reward.preset=atar_cr_tr",
               "--set", "judge.backend=rule", "--set", f"output_dir={tmp_path / 'run'}", "--set", "max_steps=1"])
    err = capsys.readouterr().err
    assert rc == 2 and "judge.backend: rule" in err and "LLM judge" in err and "plain.jsonl" in err
    assert len(err.strip().splitlines()) == 1


def test_eval_with_rule_judge_on_data_without_facts_is_an_error(tmp_path, capsys):
    """`eval --judge-backend rule` on data that is not the synthetic set stops before any model work."""
    from audiothinker.cli import main
    from audiothinker.data.synthetic import write_synthetic

    path = write_synthetic(tmp_path / "data", 2, seed=1)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r["metadata"] = {}
    plain = tmp_path / "data" / "plain.jsonl"
    plain.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = main(["eval", "--benchmark", "jsonl", "--data", str(plain), "--model", "no/such/model",
               "--out", str(tmp_path / "ev"), "--judge-backend", "rule"])
    err = capsys.readouterr().err
    assert rc == 2 and "LLM judge" in err and "plain.jsonl" in err
