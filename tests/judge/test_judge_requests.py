"""The one judge-request rule (`judge.requests`), as training and evaluation use it."""

from __future__ import annotations

import numpy as np

from audiothinker.data.records import AudioQA
from audiothinker.judge.base import Verdict
from audiothinker.judge.requests import ask_judge, wants_judge
from audiothinker.parsing import parse_completion

REC = AudioQA("r0", np.zeros(160, dtype=np.float32), "Which animal?", ["dog", "cat"], "dog", 16000,
              metadata={"facts": [["the sound", "a bark"]]})
TEXTS = {
    "think": "<think>It barks.</think><answer>dog</answer>",
    "empty_think": "<think> </think><answer>dog</answer>",
    "cut_off_think": "<think>It barks and",
    "no_think": "<answer>dog</answer>",
    "untagged": "dog",
}


def test_who_is_sent():
    sent = {name: (wants_judge(parse_completion(t), consistency=True, quality=False),
                   wants_judge(parse_completion(t), consistency=False, quality=True))
            for name, t in TEXTS.items()}
    # (R_c asked, R_t asked): R_c needs a well-formed think completion, R_t any think text; no text, no request.
    assert sent == {"think": (True, True), "empty_think": (False, False), "cut_off_think": (False, True),
                    "no_think": (False, False), "untagged": (False, False)}


class Recorder:
    def __init__(self):
        self.calls = []

    def judge(self, requests, consistency=True, quality=True):
        self.calls.append((requests, consistency, quality))
        return [Verdict(1.0 if consistency else None, 0.5 if quality else None) for _ in requests]


def test_ask_judge_aligns_verdicts_and_sends_one_call():
    texts = [TEXTS["no_think"], TEXTS["think"], TEXTS["cut_off_think"], TEXTS["think"].replace("dog<", "cat<")]
    parsed = [parse_completion(t) for t in texts]
    judge = Recorder()
    # Evaluation: R_c of every well-formed think completion, right or wrong.
    assert ask_judge(judge, [REC] * 4, parsed, consistency=True, quality=False) == [
        None, Verdict(1.0, None), None, Verdict(1.0, None)]
    requests, consistency, quality = judge.calls[-1]
    assert (len(requests), consistency, quality) == (2, True, False)
    assert requests[0].think == "It barks." and requests[0].answer == "dog"
    assert requests[0].facts == (("the sound", "a bark"),)  # what the rule judge scores R_t against
    # Training with R_c only: the wrong answer's R_c would not count (R_c_eff = 0), so it is not sent.
    correct = [True, True, False, False]
    assert ask_judge(judge, [REC] * 4, parsed, True, False, correct) == [None, Verdict(1.0, None), None, None]
    # Training with R_t too: every think completion with text, the cut-off one included.
    assert ask_judge(judge, [REC] * 4, parsed, True, True, correct) == [None] + [Verdict(1.0, 0.5)] * 3
    n_calls = len(judge.calls)
    assert ask_judge(judge, [REC], [parsed[0]], True, True, [True]) == [None]
    assert len(judge.calls) == n_calls  # nothing to ask: no call
