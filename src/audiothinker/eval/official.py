"""The official scoring rules of MMAU, MMAR and AIR-Bench foundation, quirks included.

Pure functions, string in, bool/letter out; no I/O (reading files and counting live in
`eval/score.py`). Each rule is re-implemented from the benchmark's own script:
    MMAU       github.com/Sakshi113/MMAU            evaluation.py          `string_match`
    MMAR       github.com/ddlBoJack/MMAR            code/evaluation.py     `string_match`
               (the same function as MMAU's, character for character)
    AIR-Bench  github.com/OFA-Sys/AIR-Bench         score_foundation.py    (inline in the loop)
These see the prediction as given, as the official scripts do: `score` passes the file's
value unchanged by default. Reducing a raw completion to its <answer> content (SPEC
section 7) happens only where we write a prediction file (`eval`) or when asked
(`score --extract-answer`), through `parsing.extract_answer`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# MMAU/MMAR tokenizer: lowercase the text, then take every `\b\w+\b` match as a set.
# `\w` is Unicode-aware (Python str regex): "twenty-two" -> {"twenty", "two"},
# "light_switch_clicking" -> one word (underscore is a word character), "1:3" -> {"1", "3"}.
_WORD = re.compile(r"\b\w+\b")


def word_set(text: str) -> set[str]:
    """The set of lowercase words the MMAU/MMAR matcher compares (`\\b\\w+\\b` after `.lower()`)."""
    return set(_WORD.findall(text.lower()))


def mmau_match(answer: str, prediction: str, choices: Sequence[str]) -> bool:
    """MMAU's official `string_match`: is `prediction` judged to name `answer`?

    Rules of the official script, in its order:
    1. A prediction with no words at all ("", "  ", "?!") is wrong.
    2. Wrong words = the words of every option whose word set differs from the answer's,
       minus the answer's own words. (An option with the *same* word set as the answer,
       e.g. "From near to far" vs "From far to near", contributes nothing: word order is
       invisible, so predicting that wrong option is judged correct.)
    3. Correct iff every answer word is in the prediction AND the prediction has no wrong
       word. Other words are free: "The answer is dog" names "dog", but "It is the dog, a
       puppy" fails against a wrong option "a cat" because of the article "a".
    A letter alone ("B", "(B)") is a one-word prediction {"b"}: right only when the answer
    is literally that word. An answer without words (e.g. "?") makes rule 3's first half
    vacuous: any prediction with a word and no wrong word is correct.
    """
    prediction_words = word_set(prediction)
    answer_words = word_set(answer)
    if not prediction_words:
        return False
    wrong_words: set[str] = set()
    for choice in choices:
        choice_words = word_set(choice)
        if choice_words != answer_words:
            wrong_words |= choice_words - answer_words
    return answer_words <= prediction_words and prediction_words.isdisjoint(wrong_words)


# MMAR's code/evaluation.py carries an identical `string_match`.
mmar_match = mmau_match


AIR_LETTERS = ("A", "B", "C", "D")


def airbench_letter(response: str | None) -> str | None:
    """The option letter AIR-Bench's score_foundation.py reads from a response, or None (a failure).

    Official rule, step by step:
    - `predict = response.strip().replace('\\n', '')`: strip the ends, then delete inner
      newlines ("The answer is\\nB." becomes "The answer isB.").
    - `predict == 'None'` or empty: failure ("Response is None"). A JSON null crashes the
      official script; we treat it as that same failure.
    - first character in "ABCD" (uppercase only): that letter. Quirk: any response that
      merely *starts* with a capital A-D picks that letter: "Answer: B" -> "A",
      "Dog" -> "D", "A dog barks." -> "A".
    - else, if longer than one character, the second-to-last character in "ABCD": that
      letter (meant for "The answer is A."; "(B)" and "B)" work too).
    - else failure: "The answer is B" (second-to-last is " "), "b", "b." (lowercase),
      and single characters other than A-D.
    Failures leave the denominator (counted apart as `fail`).
    """
    if response is None:
        return None
    predict = response.strip().replace("\n", "")
    if not predict or predict == "None":
        return None
    if predict[0] in AIR_LETTERS:
        return predict[0]
    if len(predict) > 1 and predict[-2] in AIR_LETTERS:
        return predict[-2]
    return None


def airbench_gt_letter(answer_gt: str, choices: Sequence[str | None]) -> str | None:
    """The letter of the ground truth: the first of choice_a..choice_d equal to `answer_gt`.

    `choices` is (choice_a, choice_b, choice_c, choice_d) with None where c or d is absent.
    Exact string equality, checked in order A, B, C, D (a duplicated option maps to its
    first letter). None when nothing matches; the official script then exits, and the
    caller should raise.
    """
    for letter, choice in zip(AIR_LETTERS, choices):
        if choice is not None and answer_gt == choice:
            return letter
    return None


def airbench_option_text(letter: str, choices: Sequence[str | None]) -> str | None:
    """The option text a letter stands for (None when that option is absent)."""
    index = AIR_LETTERS.index(letter)
    return choices[index] if index < len(choices) else None


def airbench_match(response: str | None, answer_gt: str, choices: Sequence[str | None]) -> bool | None:
    """True/False when a letter is read from `response`, None when the item is a failure.

    A letter naming an absent option (C or D on a two-option item) is simply wrong, as in
    the official script. Raises ValueError when `answer_gt` is none of the choices.
    """
    gt = airbench_gt_letter(answer_gt, choices)
    if gt is None:
        raise ValueError(f"answer_gt {answer_gt!r} is none of the choices {list(choices)!r}")
    letter = airbench_letter(response)
    if letter is None:
        return None
    return letter == gt
