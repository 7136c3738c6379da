"""Which tones the demo's hard-item traces mishear, before and after RL: false claims per slot and direction.

Not a timing. Reads finished demo directories (`audiothinker demo --out DIR`) and nothing else: the held-out items'
facts (`data/test.jsonl`, `metadata.facts`) and the greedy rows the demo saved for the cold start made to think
under each route (`eval/forced/think_prompt_rows.jsonl`: the think prompt, where `grpo_cot` starts;
`eval/forced/forced_think_rows.jsonl`: the adaptive prompt with `<think>`, where the adaptive presets start) and for
each thinking preset after RL (`eval/<preset>/rows.jsonl`). Claims are read as the rule judge reads them
(`judge.rule.claims`); a claim about a tone ("Tone three is loud") is false when it differs from the clip's fact
about that tone. For each directory it prints, per source: hard items answered with a trace, how many of them
are right, the false tone claims in all, by direction (quiet->loud / loud->quiet, low->high / high->low, other: one
cue's word for the other's), and the most common (tone, direction).

    .venv/bin/python benchmarks/trace_claims.py DEMO_DIR [DEMO_DIR ...]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

from audiothinker.data.loaders import load_records
from audiothinker.data.records import DataError
from audiothinker.eval.score import ScoreError, load_predictions, require_str
from audiothinker.judge.rule import claims, record_facts
from audiothinker.parsing import normalize, parse_completion

SOURCES = (
    ("cold start, think prompt", "eval/forced/think_prompt_rows.jsonl"),
    ("cold start, adaptive + <think>", "eval/forced/forced_think_rows.jsonl"),
    ("grpo_cot", "eval/grpo_cot/rows.jsonl"),
    ("atar", "eval/atar/rows.jsonl"),
    ("atar_cr", "eval/atar_cr/rows.jsonl"),
    ("atar_cr_tr", "eval/atar_cr_tr/rows.jsonl"),
)
DIRECTIONS = ("quiet->loud", "loud->quiet", "low->high", "high->low")


def read_rows(path: Path) -> list[dict]:
    """Every row of a demo's eval rows file, read by the scorer's reader (`eval.score.load_predictions`); a missing
    file, a bad line or a row without an id stops with its one line."""
    try:
        located = load_predictions(path)
        for where, row in located:
            require_str(where, row, "id")
    except ScoreError as e:
        sys.exit(f"{e} (is this a finished demo directory?)")
    return [row for _, row in located]


def tone_facts(path: Path) -> dict[str, dict[str, str]]:
    """{item id: {'tone three': 'loud', ...}}: each held-out item's facts about its tones (normalized), read by the
    project's loader (`load_records`) and the rule judge's `record_facts`; a bad file stops with its one line."""
    try:
        records = load_records(path, "jsonl").records
    except DataError as e:
        sys.exit(str(e))
    return {r.id: {normalize(s): normalize(v) for s, v in (record_facts(r) or ()) if normalize(s).startswith("tone ")}
            for r in records}


def false_claims(row: dict, facts: dict[str, str]) -> list[tuple[str, str]]:
    """(tone, 'fact->said') for each claim of the row's trace about a tone that differs from the tone's fact."""
    think = parse_completion(row.get("raw_output") or "").think or ""
    return [(s, f"{facts[s]}->{v}") for s, v in claims(think) if s in facts and v != facts[s]]


def source_line(name: str, rows: list[dict], facts: dict[str, dict[str, str]]) -> str:
    """One markdown row: a trace source's false tone claims on hard items."""
    counts: collections.Counter = collections.Counter()
    traced = right = 0
    for row in rows:
        if row["id"] not in facts or row.get("difficulty") != "hard" or row.get("think_mode") != "think":
            continue
        traced += 1
        right += bool(row.get("correct"))
        counts.update(false_claims(row, facts[row["id"]]))
    total = sum(counts.values())
    by_direction = collections.Counter()
    for (_, direction), v in counts.items():
        by_direction[direction] += v
    other = total - sum(by_direction[x] for x in DIRECTIONS)  # a cue's word for the other cue ("high->loud")
    dirs = " / ".join(str(by_direction[x]) for x in DIRECTIONS) + f" / {other}"
    (tone, direction), top = counts.most_common(1)[0] if counts else (("-", "-"), 0)
    return f"| {name} | {traced} | {right} | {total} | {dirs} | {tone} {direction}: {top} |"


def report(directory: Path) -> list[str]:
    facts = tone_facts(directory / "data" / "test.jsonl")
    lines = [f"## {directory}", "",
             "| traces of | hard items with a trace | right | false tone claims | " + " / ".join(DIRECTIONS)
             + " / other | most common |", "|---|---:|---:|---:|---|---|"]
    lines += [source_line(name, read_rows(directory / rel), facts) for name, rel in SOURCES]
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="finished demo directories (audiothinker demo --out DIR)")
    for directory in ap.parse_args(argv).dirs:
        print("\n".join(report(directory)))


if __name__ == "__main__":
    main()
