"""Completion parsing (SPEC section 2): the two valid shapes, every format failure, option matching."""

from __future__ import annotations

import pytest

from audiothinker.parsing import Parsed, extract_answer, is_correct, match_option, normalize, parse_completion

CHOICES = ["dog barking", "cat meowing", "car horn", "rain"]


# ---- the two valid shapes --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<think>It barks.</think><answer>dog barking</answer>",
        "  <think>\n It barks. \n</think>\n\n  <answer> dog barking </answer>\n",  # whitespace everywhere allowed
        "<think>It barks.</think> <answer>dog barking</answer>",
    ],
)
def test_think_shape_is_valid_and_stripped(text):
    p = parse_completion(text)
    assert p == Parsed("think", "It barks.", "dog barking", True)
    assert p.thinks


@pytest.mark.parametrize("text", ["<answer>rain</answer>", "\n <answer>\n rain \n</answer> \n"])
def test_no_think_shape_is_valid_and_stripped(text):
    p = parse_completion(text)
    assert p == Parsed("no_think", None, "rain", True)
    assert not p.thinks


def test_multiline_think_block_is_kept_whole():
    p = parse_completion("<think>line one.\nline two.</think><answer>rain</answer>")
    assert p.valid and p.think == "line one.\nline two."


# ---- format failures, each with the mode its tags suggest -------------------------------------


@pytest.mark.parametrize(
    "text, mode",
    [
        # missing tags
        ("dog barking", "none"),
        ("", "none"),
        ("<think>It barks.</think>", "think"),  # no answer block
        ("<think>It barks.<answer>dog barking</answer>", "think"),  # </think> missing
        ("It barks.</think><answer>dog barking</answer>", "think"),  # <think> missing
        ("<answer>dog barking", "no_think"),  # unterminated answer
        ("dog barking</answer>", "no_think"),
        # two answers
        ("<answer>rain</answer><answer>car horn</answer>", "no_think"),
        ("<think>x</think><answer>rain</answer><answer>car horn</answer>", "think"),
        # text after </answer>
        ("<answer>rain</answer> because it patters", "no_think"),
        ("<think>x</think><answer>rain</answer>.", "think"),
        # text before the first tag
        ("Sure! <answer>rain</answer>", "no_think"),
        ("Let me see. <think>x</think><answer>rain</answer>", "think"),
        # answer before think
        ("<answer>rain</answer><think>x</think>", "think"),
        # nested tags
        ("<think>x <answer>rain</answer></think>", "think"),  # answer inside think, none after
        ("<think><think>x</think></think><answer>rain</answer>", "think"),
        ("<answer><answer>rain</answer></answer>", "no_think"),
        ("<think>x</think><answer><think>y</think>rain</answer>", "think"),
        # two think blocks
        ("<think>x</think><think>y</think><answer>rain</answer>", "think"),
    ],
)
def test_format_failures(text, mode):
    p = parse_completion(text)
    assert p.valid is False
    assert p.mode == mode


def test_failure_keeps_the_readable_parts_for_logs():
    p = parse_completion("<answer>rain</answer><think>x</think>")
    assert (p.think, p.answer) == ("x", "rain")
    assert parse_completion("no tags at all") == Parsed("none", None, None, False)


# ---- extract_answer (what the MMAU/MMAR matcher sees) ----------------------------------------


def test_extract_answer_ignores_the_think_block():
    # The think block names "car horn"; only the answer block may reach the matcher (SPEC section 7).
    assert extract_answer("<think>maybe car horn? no.</think><answer> rain </answer>") == "rain"


def test_extract_answer_first_block_unterminated_and_untagged():
    assert extract_answer("<answer>rain</answer><answer>car horn</answer>") == "rain"
    assert extract_answer("<think>x</think><answer> car horn") == "car horn"  # hit the token limit
    assert extract_answer("  just text \n") == "just text"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>cat</think> dog", "dog"),  # no <answer>: the think block is dropped, never scored
        ("<think>cat</think>", ""),
        ("<think>cat or dog", ""),  # unterminated think runs to the end
        ("cat</think> dog", "dog"),  # lone </think>: its opening tag was in the prompt
        ("a<think>b</think>c<think>d</think>e", "a c e"),
        ("<think><answer>cat</answer></think><answer>dog</answer>", "dog"),  # quoted while thinking
        ("<think>x</think>dog</answer>", "dog"),  # a stray closing tag is not content
        ("", ""),
    ],
)
def test_extract_answer_never_returns_think_text(text, expected):
    assert extract_answer(text) == expected


# ---- match_option ----------------------------------------------------------------------------


def test_normalize():
    assert normalize("  Dog-Barking!!  ") == "dog barking"
    assert normalize("A.") == "a"


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("cat meowing", 1),
        ("Cat Meowing.", 1),  # case and punctuation
        ("  car   horn ", 2),  # spacing
        ("car-horn", 2),  # punctuation becomes a space
        ("B", 1),
        ("b", 1),
        ("(B)", 1),
        ("B.", 1),
        ("B:", 1),
        ("B)", 1),
        ("B) cat meowing", 1),  # letter plus the text of the same option
        ("(C) Car horn.", 2),
        ("D", 3),
    ],
)
def test_match_option_accepts_text_and_letter_forms(answer, expected):
    assert match_option(answer, CHOICES) == expected


@pytest.mark.parametrize(
    "answer",
    [
        None,
        "",
        "  .. ",  # nothing left after normalising
        "giraffe",  # no option
        "dog",  # part of an option is not the option
        "E",  # letter out of range (4 options: A-D)
        "B) dog barking",  # letter B, but the text names option A
        "A) cat meowing",
        "B dog barking",
        "the answer is B",
    ],
)
def test_match_option_rejects(answer):
    assert match_option(answer, CHOICES) is None


def test_match_option_ambiguous_text_is_none():
    # Two options normalise to the same text: neither can be chosen.
    assert match_option("yes", ["Yes.", "yes", "no"]) is None


def test_match_option_text_beats_letter():
    # Option texts that are letters: "B" is the text of option 0, not the letter of option 1.
    assert match_option("B", ["B", "A"]) == 0
    assert match_option("A", ["B", "A"]) == 1


# ---- is_correct -------------------------------------------------------------------------------


def test_is_correct():
    ok = parse_completion("<think>It meows.</think><answer>(B)</answer>")
    assert is_correct(ok, CHOICES, "cat meowing")
    assert not is_correct(ok, CHOICES, "dog barking")
    # Right option, wrong format: never correct.
    assert not is_correct(parse_completion("<answer>cat meowing</answer> yes"), CHOICES, "cat meowing")
    assert not is_correct(parse_completion("cat meowing"), CHOICES, "cat meowing")
    # Valid format but no option named.
    assert not is_correct(parse_completion("<answer>a cat</answer>"), CHOICES, "cat meowing")
    assert is_correct(parse_completion("<answer>Cat meowing!</answer>"), CHOICES, "cat meowing")
