"""Score a benchmark prediction file the way the official scripts do, and the `score` command.

    audiothinker score --benchmark {mmau,mmar,airbench} PREDICTIONS [--json OUT] [--strict]

A prediction file is the benchmark's metadata with one extra field per record:
    mmau      JSON list,            `model_output`       (Sakshi113/MMAU evaluation.py)
    mmar      JSON list or JSONL,   `answer_prediction`  (ddlBoJack/MMAR code/evaluation.py)
    airbench  JSONL or JSON list,   `response`           (OFA-Sys/AIR-Bench score_foundation.py)
Every format is accepted for every benchmark: a file whose first non-blank character is
"[" is read as a JSON list, anything else as JSONL (blank lines skipped).

Before matching, the prediction is reduced to its <answer> content with
`parsing.extract_answer` (SPEC section 7): a think block that names another option must
not count. Text without tags is only stripped, which changes neither the MMAU/MMAR word
sets nor the AIR-Bench letter (both scripts strip too), so plain official prediction
files score exactly as with the official scripts. For AIR-Bench this is our addition
[ours]: "<answer>B</answer>" reads as "B" instead of failing on its first character "<".

Official behaviour kept (non-strict, the default):
- MMAU/MMAR: a record without the prediction key is skipped (counted nowhere).
- AIR-Bench: an unreadable response is a failure: counted in `fail`, left out of every
  denominator. A record whose task_name is null is skipped (the official script does so).
`strict=True` instead counts missing, null and (AIR-Bench) unreadable predictions as wrong.

Where the official scripts crash we either go on or raise a ScoreError naming the file and
the line/record (see the per-benchmark notes below); we never silently guess.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from audiothinker.eval.official import airbench_gt_letter, airbench_letter, mmau_match, mmar_match
from audiothinker.parsing import extract_answer

Tally = list[int]  # [correct, n]
Located = tuple[str, dict[str, Any]]  # (where: "file:line 3 (id=...)", record)


class ScoreError(ValueError):
    """A prediction file or record that cannot be scored; the message says where."""


# ---------------------------------------------------------------------------------------
# Reading prediction files


def _where(base: str, record: Any) -> str:
    if isinstance(record, dict):
        for key in ("id", "uniq_id"):
            if record.get(key) is not None:
                return f"{base} ({key}={record[key]})"
    return base


def load_predictions(path: str | Path) -> list[Located]:
    """Read a JSON list or a JSONL file into (location, record) pairs."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScoreError(f"{path}: no such prediction file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScoreError(f"{path}: cannot read: {e}") from None
    stripped = text.lstrip()
    if not stripped:
        raise ScoreError(f"{path}: empty prediction file")
    located: list[Located] = []
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise ScoreError(f"{path}: line {e.lineno}: malformed JSON: {e.msg}") from None
        for i, record in enumerate(records):
            located.append((_where(f"{path}: record {i}", record), record))
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue  # the official JSONL readers crash on blank lines; we skip them
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ScoreError(f"{path}: line {lineno}: malformed JSON: {e.msg}") from None
            located.append((_where(f"{path}: line {lineno}", record), record))
    for where, record in located:
        if not isinstance(record, dict):
            raise ScoreError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return located


def _require_str(where: str, record: dict, key: str, *, nullable: bool = False) -> str | None:
    if key not in record:
        raise ScoreError(f"{where}: missing required field {key!r}")
    value = record[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ScoreError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def _prediction(where: str, record: dict, key: str) -> str | None:
    """The raw prediction, or None when the key is missing or null."""
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ScoreError(f"{where}: prediction {key!r} must be a string, got {value!r}")
    return value


def _count(tally: dict[str, Tally], name: str, correct: bool) -> None:
    slot = tally.setdefault(name, [0, 0])
    slot[0] += int(correct)
    slot[1] += 1


# ---------------------------------------------------------------------------------------
# Benchmarks: one small class each


class Benchmark(Protocol):
    name: str
    prediction_key: str

    def score(self, records: Sequence[Located], strict: bool = False) -> dict[str, Any]:
        """{"total": [correct, n], <group>: {name: [correct, n]}, ...}"""
        ...


@dataclass(frozen=True)
class ChoiceBenchmark:
    """MMAU and MMAR: the word-set matcher, reported per group and in total.

    `groups` lists (field, the keys the official script pre-declares) in report order;
    pre-declared keys are reported even at [0, 0], as the official printout does. A value
    the script does not know (it would crash with KeyError) gets its own row after them.
    "sub-category" is read with .get, as officially: a record without one is counted in
    total and the other groups only.
    """

    name: str
    prediction_key: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    match: Callable[[str, str, Sequence[str]], bool]  # (answer, prediction, choices)

    def score(self, records: Sequence[Located], strict: bool = False) -> dict[str, Any]:
        total: Tally = [0, 0]
        tallies = {field: {key: [0, 0] for key in preset} for field, preset in self.groups}
        subcats: dict[str, Tally] = {}
        for where, record in records:
            answer = _require_str(where, record, "answer")
            choices = record.get("choices")
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise ScoreError(f"{where}: field 'choices' must be a list of strings, got {choices!r}")
            labels = {field: _require_str(where, record, field) for field, _ in self.groups}
            subcat = record.get("sub-category")
            raw = _prediction(where, record, self.prediction_key)
            if raw is None and not strict:
                continue  # official: "If there's no model output key, skip"
            correct = raw is not None and self.match(answer, extract_answer(raw), choices)
            total[0] += int(correct)
            total[1] += 1
            for field, label in labels.items():
                _count(tallies[field], label, correct)
            if subcat is not None:
                _count(subcats, str(subcat), correct)
        return {"total": total, **tallies, "sub-category": subcats}


@dataclass(frozen=True)
class AirBenchFoundation:
    """AIR-Bench foundation: a letter read from the response, scored per task_dataset subset.

    Subsets appear in first-seen order; one whose every response failed is reported as
    [0, 0] (the official script crashes on it with KeyError). `total` sums the subsets
    (the official script prints only their sizes). A missing `response` key, which crashes
    the official script, is a failure like a null or "None" response.
    """

    name: str = "airbench"
    prediction_key: str = "response"

    def score(self, records: Sequence[Located], strict: bool = False) -> dict[str, Any]:
        total: Tally = [0, 0]
        subsets: dict[str, Tally] = {}
        fail = 0
        for where, record in records:
            task_name = _require_str(where, record, "task_name", nullable=True)
            dataset_name = _require_str(where, record, "dataset_name", nullable=task_name is None)
            if task_name is None:
                continue  # official: prints "1.task_name is None" and skips the record
            answer_gt = _require_str(where, record, "answer_gt")
            choices = [_require_str(where, record, "choice_a"), _require_str(where, record, "choice_b")]
            for key in ("choice_c", "choice_d"):  # may be absent or null
                choices.append(_require_str(where, record, key, nullable=True) if key in record else None)
            gt = airbench_gt_letter(answer_gt, choices)
            if gt is None:  # the official script prints it and exits(1)
                raise ScoreError(f"{where}: answer_gt {answer_gt!r} matches none of choice_a..choice_d")
            subset = subsets.setdefault(f"{task_name}_{dataset_name}", [0, 0])
            raw = _prediction(where, record, self.prediction_key)
            letter = airbench_letter(None if raw is None else extract_answer(raw))
            if letter is None:
                fail += 1
                if not strict:
                    continue  # failures leave the denominator
            correct = letter == gt
            for tally in (subset, total):
                tally[0] += int(correct)
                tally[1] += 1
        return {"total": total, "subset": subsets, "fail": fail}


BENCHMARKS: dict[str, Benchmark] = {
    "mmau": ChoiceBenchmark(
        name="mmau",
        prediction_key="model_output",
        groups=(("task", ("sound", "music", "speech")), ("difficulty", ("easy", "hard", "medium"))),
        match=mmau_match,
    ),
    "mmar": ChoiceBenchmark(
        name="mmar",
        prediction_key="answer_prediction",
        groups=(
            (
                "modality",
                (
                    "sound", "music", "speech", "mix-sound-music", "mix-sound-speech",
                    "mix-music-speech", "mix-sound-music-speech",
                ),
            ),
            ("category", ("Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer")),
        ),
        match=mmar_match,
    ),
    "airbench": AirBenchFoundation(),
}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise ScoreError(f"unknown benchmark {name!r}; valid: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def score_records(benchmark: str, records: Iterable[dict[str, Any]], strict: bool = False) -> dict[str, Any]:
    """Score in-memory records (metadata + prediction field), as `score_file` does."""
    located = [(_where(f"record {i}", r), r) for i, r in enumerate(records)]
    for where, record in located:
        if not isinstance(record, dict):
            raise ScoreError(f"{where}: expected a dict, got {type(record).__name__}")
    return get_benchmark(benchmark).score(located, strict=strict)


def score_file(benchmark: str, path: str | Path, strict: bool = False) -> dict[str, Any]:
    """Score a prediction file with the official rules.

    Returns {"total": [correct, n], <group>: {name: [correct, n], ...}, ...}:
        mmau      groups task, difficulty, sub-category
        mmar      groups modality, category, sub-category
        airbench  group subset (task_name + "_" + dataset_name), plus "fail": count
    """
    bench = get_benchmark(benchmark)
    return bench.score(load_predictions(path), strict=strict)


# ---------------------------------------------------------------------------------------
# Report and CLI


def _percent(tally: Tally) -> str:
    correct, n = tally
    return f"{100 * correct / n:.2f}%" if n else "-"


def result_table(result: dict[str, Any], title: str = ""):
    """A rich Table: one section per group, then the total."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title or None)
    table.add_column("group")
    table.add_column("name")
    for column in ("correct", "n", "accuracy"):
        table.add_column(column, justify="right")
    for group, tallies in result.items():
        if not isinstance(tallies, dict):
            continue
        for name, tally in tallies.items():  # Text(): names like "['Reasoning']" are not markup
            table.add_row(Text(group), Text(name), str(tally[0]), str(tally[1]), _percent(tally))
        table.add_section()
    total = result["total"]
    table.add_row(Text("total", style="bold"), "", str(total[0]), str(total[1]), Text(_percent(total), style="bold"))
    return table


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `score` on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "score",
        help="score a prediction file with a benchmark's official rules",
        description="Score a prediction file exactly as the benchmark's official script does "
        "(after reducing each output to its <answer> content).",
    )
    parser.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS), help="which official scorer to use")
    parser.add_argument("predictions", metavar="PREDICTIONS", help="prediction file (JSON list or JSONL)")
    parser.add_argument("--json", metavar="OUT", default=None, help="also write the counts as JSON to OUT")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="count missing/unreadable predictions as wrong instead of skipping them (not official)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score, print the table, optionally write JSON. Returns the exit code (1 on bad input)."""
    from rich.console import Console

    strict = bool(getattr(args, "strict", False))
    try:
        result = score_file(args.benchmark, args.predictions, strict=strict)
    except ScoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    mode = "strict" if strict else "official"
    console = Console()
    console.print(result_table(result, title=f"{args.benchmark} ({mode}): {args.predictions}"))
    if "fail" in result:
        where = "counted wrong" if strict else "not in any denominator"
        console.print(f"unreadable responses (fail): {result['fail']} ({where})", markup=False)
    out = getattr(args, "json", None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
