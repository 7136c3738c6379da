"""Parse a policy completion into (mode, think, answer) and match the answer to an option.

Pure string functions; used by the rewards, the evaluator and the judge alike.
Valid shapes (SPEC section 2):
    think mode:    <think>...</think><answer>...</answer>   (whitespace between allowed)
    no-think mode: <answer>...</answer>
Anything else is a format failure; its mode is the one its tags suggest.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["think", "no_think", "none"]

_TAGS = ("<think>", "</think>", "<answer>", "</answer>")
FIRST_TAGS = {"think": "<think>", "no_think": "<answer>"}
"""The tag that opens a completion in each mode (SPEC section 2)."""
_THINK_SHAPE = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.DOTALL)
_ANSWER_SHAPE = re.compile(r"^\s*<answer>(.*?)</answer>\s*$", re.DOTALL)
_FIRST_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_FIRST_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    mode: Mode  # "think" | "no_think" | "none" (no tags at all)
    think: str | None  # the think block's text, stripped (None when absent)
    answer: str | None  # the answer block's text, stripped (None when absent)
    valid: bool  # True iff the completion has exactly one of the two valid shapes

    @property
    def thinks(self) -> bool:
        return self.mode == "think"


def parse_completion(text: str) -> Parsed:
    """Split a completion into its think and answer parts and check the format."""
    counts = {tag: text.count(tag) for tag in _TAGS}
    one_answer = counts["<answer>"] == 1 and counts["</answer>"] == 1
    if counts["<think>"] == 1 and counts["</think>"] == 1 and one_answer:
        m = _THINK_SHAPE.match(text)
        if m:
            return Parsed("think", m.group(1).strip(), m.group(2).strip(), True)
    if counts["<think>"] == 0 and counts["</think>"] == 0 and one_answer:
        m = _ANSWER_SHAPE.match(text)
        if m:
            return Parsed("no_think", None, m.group(1).strip(), True)
    # A format failure: keep what can be read, for logging and the mode.
    answer_m = _FIRST_ANSWER.search(text)
    answer = answer_m.group(1).strip() if answer_m else None
    if counts["<think>"] or counts["</think>"]:
        think_m = _FIRST_THINK.search(text)
        think = think_m.group(1).strip() if think_m else None
        return Parsed("think", think, answer, False)
    if counts["<answer>"] or counts["</answer>"]:
        return Parsed("no_think", None, answer, False)
    return Parsed("none", None, None, False)


def extract_answer(text: str) -> str:
    """The completion reduced to its <answer> content; think text is never part of it.

    This is what we write under a benchmark's official prediction key, and what
    `score --extract-answer` matches (SPEC section 7): a think block that names another
    option must not reach the MMAU/MMAR matcher or the AIR-Bench letter reader.
    1. Complete <think>...</think> blocks are removed first (an <answer> quoted inside
       one is think text).
    2. The first <answer>...</answer> block's content, stripped; an unterminated <answer>
       (generation hit the token limit) gives everything after it.
    3. No <answer>: the think text is dropped, what is left is kept, stripped. An
       unterminated <think> runs to the end; a lone </think> closes a think block whose
       opening tag the prompt supplied, so everything before it is think text. A stray
       </answer> is a tag, not content, and is removed.
    Untagged text is only stripped.
    """
    rest = _THINK_BLOCK.sub(" ", text)
    m = _FIRST_ANSWER.search(rest)
    if m:
        return m.group(1).strip()
    if "<answer>" in rest:
        return rest.split("<answer>", 1)[1].strip()
    if "</think>" in rest:
        rest = rest.rsplit("</think>", 1)[1]
    if "<think>" in rest:
        rest = rest.split("<think>", 1)[0]
    return rest.replace("</answer>", " ").strip()


_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_LETTER = re.compile(r"^\(?([A-Za-z])[\).:]?(?:\s+(.*))?$", re.DOTALL)


def normalize(text: str) -> str:
    """Lowercase, punctuation to spaces, whitespace collapsed."""
    return " ".join(text.lower().translate(_PUNCT).split())


def match_option(answer: str | None, choices: list[str]) -> int | None:
    """Index of the option `answer` names, or None.

    Accepted: the option text up to case, punctuation and spacing; the option's letter
    ("B", "(B)", "B.", "B) text") when the text that follows, if any, is that option.
    """
    if answer is None:
        return None
    norm = normalize(answer)
    if not norm:
        return None
    norms = [normalize(c) for c in choices]
    hits = [i for i, c in enumerate(norms) if c == norm]
    if len(hits) == 1:
        return hits[0]
    m = _LETTER.match(answer.strip())
    if m:
        idx = ord(m.group(1).upper()) - ord("A")
        rest = normalize(m.group(2) or "")
        if 0 <= idx < len(choices) and (not rest or rest == norms[idx]):
            # A bare word like "a" could also be an option's text; that case matched above.
            return idx
    return None


def is_correct(parsed: Parsed, choices: list[str], answer: str) -> bool:
    """Correct iff the format is valid and the answer names the right option."""
    if not parsed.valid:
        return False
    idx = match_option(parsed.answer, choices)
    return idx is not None and choices[idx] == answer


def first_tag_ids(tokenizer: Any) -> dict[str, list[int]]:
    """{mode: token ids of its first tag} in `tokenizer` (`<think>` is several tokens in Qwen's vocabulary)."""
    return {mode: tokenizer(tag, add_special_tokens=False)["input_ids"] for mode, tag in FIRST_TAGS.items()}
