"""Score a benchmark prediction file the way the official scripts do, and the `score` command.

    audiothinker score --benchmark {mmau,mmar,airbench} PREDICTIONS [--json OUT] [--strict] [--extract-answer]

A prediction file is the benchmark's metadata with one extra field per record (the benchmarks
are registered in `eval/benchmarks/`, one file each):
    mmau      JSON list,            `model_output`       (Sakshi113/MMAU evaluation.py)
    mmar      JSON list or JSONL,   `answer_prediction`  (ddlBoJack/MMAR code/evaluation.py)
    airbench  JSONL or JSON list,   `response`           (OFA-Sys/AIR-Bench score_foundation.py)
Every format is accepted for every benchmark: a file whose first non-blank character is
"[" is read as a JSON list, anything else as JSONL (lines split at \n, \r\n or \r only,
as the official `open()` does; blank lines skipped).

The default (official) mode reads the prediction key exactly as the official script does,
with no reduction of its own (SPEC section 7): any file, ours or another system's, gets
the leaderboard's figures. A completion left with its tags is matched tags and all, as
officially ("<think>maybe cat</think><answer>dog</answer>" names "cat" too; AIR-Bench reads
"<" as its first character). `extract_answer=True` (`--extract-answer`, not official)
first reduces each prediction to its <answer> content with `parsing.extract_answer`, the
reduction `eval` applies when it writes a prediction file.

Official behaviour kept (non-strict, the default):
- MMAU/MMAR: a record without the prediction key is skipped (counted nowhere) before any
  of its other fields is read.
- AIR-Bench: an unreadable response is a failure: counted in `fail`, left out of every
  denominator. A record whose task_name is null is skipped (the official script does so).
  The ground truth is looked up only for a response a letter was read from.
`strict=True` instead counts missing, null and (AIR-Bench) unreadable predictions as wrong.
`no_prediction` counts the records with no prediction (key absent or null) in every mode.

Where the official scripts crash we either go on or raise a ScoreError naming the file and
the line/record (see the per-benchmark notes below); we never silently guess. A null
prediction crashes them all; we treat it like a missing key (MMAU/MMAR: skipped;
AIR-Bench: a failure). A prediction of another JSON type (number, list, object, boolean)
crashes them too, and is a ScoreError here. A file in which no record has a prediction
at all is a ScoreError (the official scripts divide by zero or print nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiothinker.data.loaders import RecordParser
from audiothinker.eval.benchmarks.base import BENCHMARKS, Benchmark, Located, Reader, Tally, as_given, benchmark_names
from audiothinker.parsing import extract_answer as reduce_to_answer


class ScoreError(ValueError):
    """A prediction file or record that cannot be scored; the message says where."""


def prediction_reader(extract_answer: bool) -> Reader:
    """Official mode reads the prediction as given; --extract-answer reduces it first (not official)."""
    return reduce_to_answer if extract_answer else as_given


# ---------------------------------------------------------------------------------------
# Reading prediction files


def _where(base: str, record: Any) -> str:
    if isinstance(record, dict):
        for key in ("id", "uniq_id"):
            if record.get(key) is not None:
                return f"{base} ({key}={record[key]})"
    return base


def _lines(text: str) -> list[str]:
    """Lines as Python's text-mode `open()` yields them (the official JSONL readers).

    Only \\n, \\r\\n and \\r end a line: str.splitlines would also split at U+2028, U+0085,
    \\x1c..\\x1e, \\x0b and \\x0c, which JSON allows raw inside a string.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


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
        for lineno, line in enumerate(_lines(text), start=1):
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


def require_str(where: str, record: dict, key: str, *, nullable: bool = False) -> str | None:
    if key not in record:
        raise ScoreError(f"{where}: missing required field {key!r}")
    value = record[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise ScoreError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def prediction_of(where: str, record: dict, key: str) -> str | None:
    """The raw prediction, or None when the key is missing or null.

    Any other non-string value crashes the official scripts (`.lower()` / `.strip()` on it).
    """
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ScoreError(
            f"{where}: prediction {key!r} must be a string, got {type(value).__name__} {value!r} "
            "(the official script cannot read it either)"
        )
    return value


def _count(tally: dict[str, Tally], name: str, correct: bool) -> None:
    slot = tally.setdefault(name, [0, 0])
    slot[0] += int(correct)
    slot[1] += 1


# ---------------------------------------------------------------------------------------
# The word-set benchmarks' scorer (MMAU and MMAR register one each, in eval/benchmarks/)


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
    format: str
    parse: RecordParser | None
    json_list: bool = True
    official = True

    def prediction(self, answer: str, raw: dict[str, Any]) -> str:
        return answer

    def score(self, records: Sequence[Located], strict: bool = False, read: Reader = as_given) -> dict[str, Any]:
        total: Tally = [0, 0]
        tallies = {field: {key: [0, 0] for key in preset} for field, preset in self.groups}
        subcats: dict[str, Tally] = {}
        no_prediction = 0
        for where, record in records:
            raw = prediction_of(where, record, self.prediction_key)
            if raw is None:
                no_prediction += 1
                if not strict:
                    continue  # official: "If there's no model output key, skip", before any other field
            answer = require_str(where, record, "answer")
            choices = record.get("choices")
            if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
                raise ScoreError(f"{where}: field 'choices' must be a list of strings, got {choices!r}")
            labels = {field: require_str(where, record, field) for field, _ in self.groups}
            subcat = record.get("sub-category")
            correct = raw is not None and self.match(answer, read(raw), choices)
            total[0] += int(correct)
            total[1] += 1
            for field, label in labels.items():
                _count(tallies[field], label, correct)
            if subcat is not None:
                _count(subcats, str(subcat), correct)
        return {"total": total, **tallies, "sub-category": subcats, "no_prediction": no_prediction}


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark `name`, if `score` can score it (official rules)."""
    valid = benchmark_names(official=True)
    if name not in valid:
        raise ScoreError(f"unknown benchmark {name!r}; valid: {', '.join(valid)}")
    return BENCHMARKS[name]


def score_records(
    benchmark: str, records: Iterable[dict[str, Any]], strict: bool = False, extract_answer: bool = False
) -> dict[str, Any]:
    """Score in-memory records (metadata + prediction field), as `score_file` does."""
    located = [(_where(f"record {i}", r), r) for i, r in enumerate(records)]
    for where, record in located:
        if not isinstance(record, dict):
            raise ScoreError(f"{where}: expected a dict, got {type(record).__name__}")
    return get_benchmark(benchmark).score(located, strict=strict, read=prediction_reader(extract_answer))


def score_file(benchmark: str, path: str | Path, strict: bool = False, extract_answer: bool = False) -> dict[str, Any]:
    """Score a prediction file with the official rules (reading each prediction as given, by default).

    Returns {"total": [correct, n], <group>: {name: [correct, n], ...}, ..., "no_prediction": k}:
        mmau      groups task, difficulty, sub-category
        mmar      groups modality, category, sub-category
        airbench  group subset (task_name + "_" + dataset_name), plus "fail": count
    Raises ScoreError when the file has no record, or no record with a prediction.
    """
    bench = get_benchmark(benchmark)
    located = load_predictions(path)
    if not located:
        raise ScoreError(f"{path}: no records (the official script has nothing to score)")
    if all(record.get(bench.prediction_key) is None for _, record in located):
        raise ScoreError(
            f"{path}: none of its {len(located)} records has a prediction under {bench.prediction_key!r} "
            f"(the key --benchmark {benchmark} reads); is this a metadata file, or another benchmark's predictions?"
        )
    return bench.score(located, strict=strict, read=prediction_reader(extract_answer))


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


def warnings_for(result: dict[str, Any], benchmark: str, source: str, strict: bool) -> list[str]:
    """One line per thing the figures leave out: records with no prediction, nothing scored."""
    key = get_benchmark(benchmark).prediction_key
    lines = []
    missing = result.get("no_prediction", 0)
    if missing:
        fate = "counted wrong (--strict)" if strict else (
            "counted as failures" if "fail" in result else "skipped, as the official script does")
        lines.append(f"{source}: {missing} records have no {key!r} prediction (key absent or null): {fate}")
    if result["total"][1] == 0:
        lines.append(f"{source}: no prediction could be scored; every figure is empty")
    return lines


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `score` on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "score",
        help="score a prediction file with a benchmark's official rules",
        description="Score a prediction file exactly as the benchmark's official script does: the "
        "prediction key is read as given, tags and all (--extract-answer reduces it to its <answer> first).",
    )
    parser.add_argument("--benchmark", required=True, choices=sorted(benchmark_names(official=True)), help="which official scorer to use")
    parser.add_argument("predictions", metavar="PREDICTIONS", help="prediction file (JSON list or JSONL)")
    parser.add_argument("--json", metavar="OUT", default=None, help="also write the counts as JSON to OUT")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="count missing/unreadable predictions as wrong instead of skipping them (not official)",
    )
    parser.add_argument(
        "--extract-answer",
        action="store_true",
        help="reduce each prediction to its <answer> content (think text dropped) before the official "
        "rule reads it (not official: the official scripts read the key as given)",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Score, print the table, optionally write JSON. Returns the exit code (1 on bad input)."""
    from rich.console import Console

    strict = bool(getattr(args, "strict", False))
    extract = bool(getattr(args, "extract_answer", False))
    try:
        result = score_file(args.benchmark, args.predictions, strict=strict, extract_answer=extract)
    except ScoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2  # a user error, like every other CLI error
    mode = ("strict" if strict else "official") + (", --extract-answer" if extract else "")
    console = Console()
    console.print(result_table(result, title=f"{args.benchmark} ({mode}): {args.predictions}"))
    if "fail" in result:
        where = "counted wrong" if strict else "not in any denominator"
        console.print(f"unreadable responses (fail): {result['fail']} ({where})", markup=False)
    for line in warnings_for(result, args.benchmark, args.predictions, strict):
        print(f"warning: {line}", file=sys.stderr)
    out = getattr(args, "json", None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0
