"""The official matchers on tricky cases; every expectation is worked out by hand from the rules.

MMAU/MMAR rule (Sakshi113/MMAU evaluation.py, ddlBoJack/MMAR code/evaluation.py):
    words(t) = set of `\\b\\w+\\b` in t.lower(); no prediction words -> wrong;
    wrong_words = union over options o with words(o) != words(answer) of words(o) - words(answer);
    correct iff words(answer) <= words(pred) and words(pred) & wrong_words == {}.
AIR-Bench rule (OFA-Sys/AIR-Bench score_foundation.py):
    p = response.strip().replace("\\n", ""); "" or "None" -> failure;
    p[0] in "ABCD" -> p[0]; elif len(p) > 1 and p[-2] in "ABCD" -> p[-2]; else failure.
"""

import pytest

from audiothinker.eval.official import (
    airbench_gt_letter,
    airbench_letter,
    airbench_match,
    airbench_option_text,
    mmar_match,
    mmau_match,
    word_set,
)

ANIMALS = ["cat", "dog", "bird"]


def test_word_set_tokenization():
    # Lowercased; punctuation splits; hyphen splits; underscore and digits are word characters.
    assert word_set("The Dog, twenty-two light_switch 1:3!") == {
        "the", "dog", "twenty", "two", "light_switch", "1", "3",
    }
    assert word_set("  ?! ") == set()


@pytest.mark.parametrize(
    "prediction, expected, why",
    [
        ("dog", True, "exactly the answer's words"),
        ("Dog.", True, "lowercased; the period is not a word"),
        ("DOG", True, "case does not matter"),
        ("The answer is dog", True, "extra words are free as long as none is another option's word"),
        ("The answer is dog, not cat", False, "'cat' is a word of a wrong option"),
        ("cat", False, "answer word 'dog' missing (and 'cat' is wrong)"),
        ("A", False, "letter only: words {'a'} lack 'dog'"),
        ("(B)", False, "letter only: words {'b'} lack 'dog'"),
        ("", False, "no words at all -> wrong"),
        ("   ", False, "whitespace only has no words"),
        ("?!", False, "punctuation only has no words"),
        ("dogs", False, "'dogs' is a different word from 'dog' (whole words, no stemming)"),
        ("hotdog", False, "\\b\\w+\\b gives 'hotdog', not 'dog'"),
        ("<answer>dog</answer>", True, "raw tags add words 'answer', which no option has"),
        ("<think>maybe cat</think><answer>dog</answer>", False, "raw, unextracted: the think block's 'cat' counts"),
    ],
)
def test_mmau_match_single_word_options(prediction, expected, why):
    assert mmau_match("dog", prediction, ANIMALS) is expected, why


def test_letter_answer_only_counts_when_the_option_is_that_letter():
    # Options that are letters themselves: answer words {'b'}, wrong words {'a'}.
    assert mmau_match("B", "(B)", ["A", "B"]) is True
    assert mmau_match("B", "A or B", ["A", "B"]) is False  # 'a' is a wrong word


def test_multi_word_options_sharing_words():
    choices = ["acoustic guitar", "electric guitar", "piano"]
    # answer words {electric, guitar}; wrong words = {acoustic, guitar, piano} - answer = {acoustic, piano}
    assert mmau_match("electric guitar", "electric guitar", choices) is True
    assert mmau_match("electric guitar", "Guitar, electric.", choices) is True  # order is invisible
    assert mmau_match("electric guitar", "guitar", choices) is False  # 'electric' missing
    assert mmau_match("electric guitar", "electric", choices) is False  # 'guitar' missing
    assert mmau_match("electric guitar", "an electric, not an acoustic guitar", choices) is False  # 'acoustic'


def test_answer_contained_in_another_option():
    choices = ["guitar", "bass guitar"]
    # answer "guitar": wrong words {bass} -> "bass guitar" is wrong, "guitar" right.
    assert mmau_match("guitar", "guitar", choices) is True
    assert mmau_match("guitar", "bass guitar", choices) is False
    # answer "bass guitar": wrong words {guitar} - {bass, guitar} = {} -> only completeness matters.
    assert mmau_match("bass guitar", "bass guitar", choices) is True
    assert mmau_match("bass guitar", "guitar", choices) is False  # 'bass' missing
    assert mmau_match("bass guitar", "bass", choices) is False  # 'guitar' missing


def test_options_with_the_same_word_set_are_indistinguishable():
    # Quirk: "From near to far" has the same word set as the answer, so it is skipped when
    # collecting wrong words; predicting that WRONG option is judged correct.
    # (Real items: MMAR Z8nnssMvvG4_00-00-00_00-00-07, MMAU 004fd9c5-....)
    choices = ["From near to far", "From far to near", "From near to near"]
    assert mmau_match("From far to near", "From near to far", choices) is True
    # "From near to near" has words {from, near, to}: missing 'far' -> wrong.
    assert mmau_match("From far to near", "From near to near", choices) is False


def test_articles_in_wrong_options_count_as_wrong_words():
    # answer "the dog": wrong words = {a, cat}; the article 'a' sinks an otherwise right prediction.
    choices = ["the dog", "a cat"]
    assert mmau_match("the dog", "It is the dog, a puppy", choices) is False
    assert mmau_match("the dog", "It is the dog", choices) is True


def test_duplicate_and_overlapping_options():
    # Duplicated wrong option: wrong words {one}; duplicates change nothing.
    assert mmau_match("four", "four", ["one", "four", "four"]) is True
    assert mmau_match("four", "one", ["one", "four", "four"]) is False
    # Duplicated answer option (real MMAU item e277d88f): words {1, 63, seconds}; wrong {2, 74}.
    choices = ["1.63 seconds", "2.74 seconds", "1.53 seconds", "1.63 seconds"]
    # wrong words: {2,74} | {1,53} - {1,63,seconds} = {2, 74, 53}
    assert mmau_match("1.63 seconds", "1.63 seconds", choices) is True
    assert mmau_match("1.63 seconds", "1.53 seconds", choices) is False  # '53' wrong, '63' missing
    # Hyphenated: answer words {twenty, two}; options "twenty", "two" add no wrong words.
    choices = ["twenty-two", "twenty", "two"]
    assert mmau_match("twenty-two", "two twenty", choices) is True
    assert mmau_match("twenty-two", "twenty", choices) is False  # 'two' missing


def test_underscore_joins_words():
    # 'light_switch_clicking' is ONE word, so the spaced spelling lacks it.
    choices = ["light_switch_clicking", "clock_ticking"]
    assert mmau_match("light_switch_clicking", "light switch clicking", choices) is False
    assert mmau_match("light_switch_clicking", "light_switch_clicking", choices) is True


def test_answer_without_words():
    # Answer "?" has no words: the completeness test is vacuous; wrong words {yes}.
    assert mmau_match("?", "no idea", ["?", "yes"]) is True
    assert mmau_match("?", "yes", ["?", "yes"]) is False
    assert mmau_match("?", "", ["?", "yes"]) is False  # empty prediction is still wrong


def test_mmar_uses_the_same_matcher():
    assert mmar_match is mmau_match


@pytest.mark.parametrize(
    "response, letter, why",
    [
        ("B", "B", "first character"),
        ("b", None, "lowercase; a single character has no second-to-last -> failure"),
        ("b.", None, "first 'b' and second-to-last 'b' are lowercase"),
        ("(B)", "B", "first '(' no; second-to-last 'B'"),
        ("B)", "B", "first character"),
        ("The answer is B", None, "first 'T'; second-to-last is ' ' -> failure"),
        ("The answer is B.", "B", "second-to-last 'B' (the case the official comment names)"),
        ("The answer is (D)", "D", "second-to-last 'D'"),
        ("Answer: B", "A", "quirk: starts with capital 'A'"),
        ("Dog", "D", "quirk: starts with capital 'D'"),
        ("A dog barks.", "A", "quirk: starts with capital 'A'"),
        ("C'est le chien", "C", "quirk: starts with capital 'C'"),
        ("  \n B \n", "B", "stripped first"),
        ("The answer is\nB.", "B", "inner newline deleted -> 'The answer isB.'"),
        ("E", None, "not A-D"),
        ("xyz", None, "no letter anywhere the rule looks"),
        ("", None, "empty"),
        ("None", None, "the literal string 'None' is a failure"),
        (None, None, "null response (the official script would crash)"),
        ("BC", "B", "first character wins"),
    ],
)
def test_airbench_letter(response, letter, why):
    assert airbench_letter(response) == letter, why


def test_airbench_gt_letter_and_option_text():
    four = ("x", "y", "z", "w")
    two = ("x", "y", None, None)
    assert airbench_gt_letter("y", two) == "B"
    assert airbench_gt_letter("w", four) == "D"
    assert airbench_gt_letter("x", ("x", "x", "z", "w")) == "A"  # duplicates: first in A..D order
    assert airbench_gt_letter("X", four) is None  # exact equality, case-sensitive
    assert airbench_gt_letter("x ", four) is None  # and no stripping
    assert airbench_option_text("B", two) == "y"
    assert airbench_option_text("C", two) is None


def test_airbench_match():
    two = ("x", "y", None, None)
    assert airbench_match("B", "y", two) is True
    assert airbench_match("The answer is A.", "y", two) is False
    assert airbench_match("C", "y", two) is False  # a letter for an absent option is just wrong
    assert airbench_match("b", "y", two) is None  # failure: leaves the denominator
    with pytest.raises(ValueError, match="none of the choices"):
        airbench_match("B", "q", two)
