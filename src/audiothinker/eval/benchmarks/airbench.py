"""AIR-Bench foundation (github.com/OFA-Sys/AIR-Bench): metadata, `response` predictions (JSONL), score_foundation.py's scoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audiothinker.data.loaders import RecordParser, Source, record_id, required, text_of
from audiothinker.data.records import AudioQA, is_missing
from audiothinker.eval.benchmarks.base import Located, Reader, Tally, as_given, register_benchmark
from audiothinker.eval.official import airbench_gt_letter, airbench_letter
from audiothinker.eval.score import ScoreError, prediction_of, require_str
from audiothinker.parsing import match_option


def parse_airbench(raw: dict[str, Any], source: Source) -> AudioQA:
    """AIR-Bench foundation: audio at <root>/<task_name>_<dataset_name>/<path> (official layout)."""
    task_name = text_of(required(raw, "task_name"), "task_name")
    dataset_name = text_of(required(raw, "dataset_name"), "dataset_name")
    path = text_of(required(raw, "path"), "path")
    if task_name == "Audio_Grounding":  # the official inference script reads these as .flac
        path = path[:-3] + "flac"
    letters = [k for k in ("choice_a", "choice_b", "choice_c", "choice_d") if not is_missing(raw.get(k))]
    choices = [c for c in (text_of(raw[k], k) for k in letters) if c]
    return AudioQA(
        id=record_id(raw, "uniq_id", source, "airbench"),
        audio=source.resolve(f"{task_name}_{dataset_name}/{path}"),
        question=text_of(required(raw, "question"), "question"),
        choices=choices,
        answer=text_of(required(raw, "answer_gt"), "answer_gt"),
        task=task_name,
        category=dataset_name,
        metadata={"group": f"{task_name}_{dataset_name}", "raw": raw},
    )


def airbench_response(answer: str, raw: dict[str, Any]) -> str:
    """The letter of the option `answer` names, else `answer` unchanged [ours].

    Our prompt lists options by text (SPEC section 2) while AIR-Bench's scorer reads a
    letter, so an answer naming an option (by text or letter) is written as that letter;
    anything else is left for the official rule to read or fail on.
    """
    options = [(letter, raw.get(key)) for letter, key in zip("ABCD", ("choice_a", "choice_b", "choice_c", "choice_d"))]
    options = [(letter, text.strip()) for letter, text in options if isinstance(text, str) and text.strip()]
    idx = match_option(answer, [text for _, text in options])
    return options[idx][0] if idx is not None else answer


def _airbench_gt(where: str, record: dict) -> str:
    """The ground-truth letter; the official script exits(1) (or crashes) when there is none."""
    answer_gt = require_str(where, record, "answer_gt")
    choices = [require_str(where, record, "choice_a")]
    for key in ("choice_b", "choice_c", "choice_d"):  # read only as far as needed officially; may be absent
        choices.append(require_str(where, record, key, nullable=True) if key in record else None)
    gt = airbench_gt_letter(answer_gt, choices)
    if gt is None:
        raise ScoreError(f"{where}: answer_gt {answer_gt!r} matches none of choice_a..choice_d")
    return gt


@dataclass(frozen=True)
class AirBenchFoundation:
    """AIR-Bench foundation: a letter read from the response, scored per task_dataset subset.

    Subsets appear in first-seen order; one whose every response failed is reported as
    [0, 0] (the official script crashes on it with KeyError). `total` sums the subsets
    (the official script prints only their sizes). A missing `response` key or a null,
    both of which crash the official script, are failures like a "None" response.
    """

    name: str = "airbench"
    prediction_key: str = "response"
    format: str = "airbench"
    parse: RecordParser | None = parse_airbench
    json_list: bool = False
    official = True

    def prediction(self, answer: str, raw: dict[str, Any]) -> str:
        return airbench_response(answer, raw)

    def score(self, records: Sequence[Located], strict: bool = False, read: Reader = as_given) -> dict[str, Any]:
        total: Tally = [0, 0]
        subsets: dict[str, Tally] = {}
        fail = no_prediction = 0
        for where, record in records:
            task_name = require_str(where, record, "task_name", nullable=True)
            dataset_name = require_str(where, record, "dataset_name", nullable=task_name is None)
            if task_name is None:
                continue  # official: prints "1.task_name is None" and skips the record
            subset = subsets.setdefault(f"{task_name}_{dataset_name}", [0, 0])
            raw = prediction_of(where, record, self.prediction_key)
            no_prediction += raw is None
            letter = None if raw is None else airbench_letter(read(raw))
            if letter is None:
                fail += 1
                if not strict:
                    continue  # failures leave the denominator
            correct = letter is not None and letter == _airbench_gt(where, record)
            for tally in (subset, total):
                tally[0] += int(correct)
                tally[1] += 1
        return {"total": total, "subset": subsets, "fail": fail, "no_prediction": no_prediction}


AIRBENCH = register_benchmark(AirBenchFoundation())
