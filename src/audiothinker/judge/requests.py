"""Which completions go to the judge, and what it sees of them: one rule for training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from audiothinker.judge.base import Judge, JudgeRequest, Verdict
from audiothinker.judge.rule import record_facts
from audiothinker.parsing import Parsed

if TYPE_CHECKING:
    from audiothinker.data.records import AudioQA


def wants_judge(parsed: Parsed, *, consistency: bool, quality: bool) -> bool:
    """True iff the completion has a think block with text and a score asked of it can be used.

    R_t (`quality`) is scored for any such completion, regardless of correctness or format (SPEC
    section 3: a malformed think completion is think-mode wrong). R_c (`consistency`) needs a
    well-formed completion: without a proper <answer> there is nothing to be consistent with.
    No think text, nothing to judge (the reward gives it R_c = R_t = 0, `rewards.eq7` [ours 1]).
    """
    return parsed.thinks and bool(parsed.think) and (quality or (consistency and parsed.valid))


def judge_request(record: AudioQA, parsed: Parsed) -> JudgeRequest:
    """What the judge sees of one completion: the question, options, think text and answer (and the item's
    facts, which only the rule judge reads)."""
    return JudgeRequest(record.question, tuple(record.choices), parsed.think or "", parsed.answer or "",
                        record_facts(record))


def ask_judge(
    judge: Judge,
    records: Sequence[AudioQA],
    parsed: Sequence[Parsed],
    consistency: bool,
    quality: bool,
    correct: Sequence[bool] | None = None,
) -> list[Verdict | None]:
    """The judge's verdict for each completion (`records[i]` is completion i's item), None where it was not
    sent (`wants_judge`); all requests go out in one call, none when there is nothing to ask.

    correct: given in training, where R_c counts only for a correct answer (R_c_eff = 0 otherwise), so a
    wrong one is sent only when R_t is asked. Evaluation leaves it out: its inconsistency rate covers
    every well-formed think completion.
    """
    idx = [
        i for i, p in enumerate(parsed)
        if wants_judge(p, consistency=consistency and (correct is None or correct[i]), quality=quality)
    ]
    requests = [judge_request(records[i], parsed[i]) for i in idx]
    verdicts: list[Verdict | None] = [None] * len(parsed)
    for i, v in zip(idx, judge.judge(requests, consistency=consistency, quality=quality) if requests else []):
        verdicts[i] = v
    return verdicts
