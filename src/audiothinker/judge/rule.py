"""A rule judge for the synthetic set: deterministic, offline, instant, and exact.

It stands in for the LLM judge where the data generator knows every fact about each clip
(`data.synthetic`: `metadata["facts"]`, an ordered list of [subject, value] claims). The rules:

- Claims. The think text is split into sentences (at ".", ";", "!", "?" and newlines). A sentence
  of the form "<subject> is <value>" is a claim, except the conclusion sentence ("so the answer
  is X"). Subject and value are compared lower-cased, with punctuation and extra spaces removed.
- R_c, consistency: the conclusion the trace states is the option named in its last sentence
  containing "the answer is" (else the last option the text names anywhere). R_c = 1 iff that
  option is the one the <answer> names, else 0 (also when either names no option).
- R_t, think quality: the k-th claim about a subject is checked against the k-th fact about that
  subject (so a running count, "the count is ...", is checked step by step); a claim about a
  subject with no such fact is false. R_t = true claims / max(claims, facts), rounded to a tenth:
  1.0 for a trace that states every fact and nothing false, less for a wrong intermediate fact, a
  made-up one or a missing one; 0 for a trace with no claim. The conclusion is not a fact: a trace
  whose facts are right but whose conclusion is wrong keeps its R_t (R_c and accuracy see that).

Like the LLM judge it never hears the audio. Without fact annotations it cannot score R_t, so
training or evaluating with `judge.backend: rule` on other data stops (`require_facts`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from audiothinker.judge.base import JudgeRequest, Verdict
from audiothinker.parsing import match_option, normalize

_SENTENCE = re.compile(r"[.;!?\n]")
_CLAIM = re.compile(r"^(?P<subject>.+?) is (?P<value>.+)$")
_CONCLUSION = re.compile(r"\bthe answer is\b")

NO_FACTS_MESSAGE = (
    "judge.backend: rule scores think quality against the synthetic set's fact annotations "
    "(metadata.facts), and {where} has none: this is not the synthetic set. Configure an LLM judge "
    "(judge.backend: openai with judge.base_url, or judge.backend: local; see docs/judge.md)"
)


class MissingFactsError(ValueError):
    """The rule judge was asked for R_t about an item without fact annotations."""


def last_option_named(text: str, choices: tuple[str, ...]) -> int | None:
    """Index of the option whose text occurs last in `text` (whole words, normalized)."""
    norm = f" {normalize(text)} "
    best, best_pos = None, -1
    for i, choice in enumerate(choices):
        c = normalize(choice)
        if not c:
            continue
        pos = norm.rfind(f" {c} ")
        longer = best is not None and len(c) > len(normalize(choices[best]))
        if pos > best_pos or (pos == best_pos and pos >= 0 and longer):
            best, best_pos = i, pos
    return best if best_pos >= 0 else None


def _sentences(text: str) -> list[str]:
    return [s for s in (normalize(p) for p in _SENTENCE.split(text)) if s]


def stated_conclusion(think: str, choices: tuple[str, ...]) -> int | None:
    """The option the trace concludes: in its last "the answer is" sentence, else the last one named."""
    for sentence in reversed(_sentences(think)):
        if _CONCLUSION.search(sentence):
            return last_option_named(sentence.split("the answer is")[-1], choices)
    return last_option_named(think, choices)


def claims(think: str) -> list[tuple[str, str]]:
    """The (subject, value) claims of a trace, in order; the conclusion sentence is not one."""
    out = []
    for sentence in _sentences(think):
        if _CONCLUSION.search(sentence):
            continue
        m = _CLAIM.match(sentence)
        if m:
            out.append((_strip_article(m["subject"]), m["value"]))
    return out


def _strip_article(subject: str) -> str:
    """'so the count' and 'the count' are the same subject; 'so' and 'and' only link sentences."""
    return re.sub(r"^(so|and|then)\s+", "", subject)


def fact_share(stated: Sequence[tuple[str, str]], facts: Sequence[Sequence[str]]) -> float:
    """true claims / max(claims, facts): the k-th claim about a subject against its k-th fact."""
    truth: dict[str, list[str]] = {}
    for subject, value in facts:
        truth.setdefault(_strip_article(normalize(subject)), []).append(normalize(value))
    seen: dict[str, int] = {}
    true = 0
    for subject, value in stated:
        k = seen.get(subject, 0)
        seen[subject] = k + 1
        values = truth.get(subject, [])
        true += k < len(values) and values[k] == value
    denominator = max(len(stated), len(facts))
    return true / denominator if denominator else 0.0


def rule_consistency(req: JudgeRequest) -> float:
    named = stated_conclusion(req.think, req.choices)
    answered = match_option(req.answer, list(req.choices))
    return 1.0 if named is not None and named == answered else 0.0


def rule_quality(req: JudgeRequest) -> float:
    """R_t in steps of 0.1 from the share of true facts (rules in the module doc)."""
    if req.facts is None:
        raise MissingFactsError(NO_FACTS_MESSAGE.format(where=f"the item asking {req.question!r}"))
    return round(fact_share(claims(req.think), req.facts) * 10) / 10


def record_facts(record: Any) -> tuple[tuple[str, str], ...] | None:
    """A record's fact annotations as a hashable tuple (None when it has none)."""
    facts = (getattr(record, "metadata", None) or {}).get("facts")
    if not isinstance(facts, list) or not all(isinstance(f, (list, tuple)) and len(f) == 2 for f in facts):
        return None
    return tuple((str(s), str(v)) for s, v in facts)


def require_facts(records: Sequence[Any], source: str) -> None:
    """Stop (ConfigError, one line) unless every record carries fact annotations: the rule judge needs them."""
    from audiothinker.config import ConfigError

    for r in records:
        if record_facts(r) is None:
            raise ConfigError(NO_FACTS_MESSAGE.format(where=f"{source} (record {r.id!r})"))


class RuleJudge:
    """Judge protocol implementation with the rules above."""

    def judge(self, requests: list[JudgeRequest], consistency: bool = True, quality: bool = True) -> list[Verdict]:
        return [
            Verdict(rule_consistency(r) if consistency else None, rule_quality(r) if quality else None)
            for r in requests
        ]
