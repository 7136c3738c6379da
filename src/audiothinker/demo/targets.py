"""The behaviours the demo must show (issue: the demo shows the paper's effect), measured; and their spread over seeds.

Pure functions of evaluation summaries (`eval.report.summarize` dicts, plus `think_quality`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Summary = Mapping[str, Any]


def _d(s: Summary, level: str, key: str) -> float:
    return s["by_difficulty"][level][key]


def forced_gain(forced: Mapping[str, Summary], level: str) -> float:
    """Accuracy made to think minus accuracy made to answer directly, on one difficulty."""
    return _d(forced["think"], level, "accuracy") - _d(forced["no_think"], level, "accuracy")


def sampled(s: Summary) -> Summary:
    """The summary of a run's sampled completions (`demo.evaluate.SAMPLES` per item, temperature 1.0); {} if none."""
    return s.get("sampled") or {}


def no_think_at(figures: Summary, level: str) -> float | None:
    """The no-think rate of one difficulty in a summary or one of its sections (sampled, first_tag); None if absent."""
    return figures.get("by_difficulty", {}).get(level, {}).get("no_think_rate")


def _sampled_no_think(s: Summary, level: str) -> float | None:
    return no_think_at(sampled(s), level)


def _expected_no_think(s: Summary, level: str) -> float | None:
    return no_think_at(s.get("first_tag") or {}, level)


def no_think_gap(s: Summary) -> float | None:
    """No-think rate on easy items minus that on hard items, as sampling at temperature 1.0 has it in expectation
    (`demo.evaluate.first_tag_summary`: 1 - p(<think> first), item by item); None without those figures.

    Sampled, not greedy: a question the policy thinks on in 54 % of its samples is thought on every time
    greedily, so greedy rates turn the cold start's per-task chances, flat across difficulties by construction,
    into whichever side of one half each landed (seed 42, one cold start: sampled no-think 0.39 / 0.39 / 0.41
    on easy / medium / hard, greedy 0.50 / 0.50 / 0.00). In expectation, not counted over the samples drawn:
    with one sample per item (`SAMPLES`) the counted gap over 320 easy and 320 hard items has a standard error
    of 0.04 at rates near one half, so a cold start at -0.03 in expectation misses the flat target on the count
    alone about one seed in 25 (seed 72's cold start: counted -0.106, expected -0.035). The expectation is what
    the counted rate estimates; the report lists both."""
    easy, hard = _expected_no_think(s, "easy"), _expected_no_think(s, "hard")
    return None if easy is None or hard is None else easy - hard


EPS = 1e-9
"""Slack of every comparison with a bound: rates are counts over n, so a difference that is exactly the bound
(96 of 320 items: +0.30) can come out a rounding error under it (0.934375 - 0.634375 = 0.29999999999999993)."""


def _at_least(v: float | None, bound: float) -> bool:
    return v is not None and v >= bound - EPS


def _within(v: float | None, bound: float) -> bool:
    return v is not None and abs(v) <= bound + EPS


def _halved(atar: float | None, atar_cr: float | None) -> bool:
    return atar is not None and atar_cr is not None and atar_cr <= atar / 2 + EPS and atar > 0


PAIRED = (("atar_cr_tr", "grpo"), ("atar_cr_tr", "grpo_cot"))
"""The runs the hard-accuracy targets compare, (a, b): a's accuracy on hard items must be at least b's (`TARGETS`
is built from it, and `demo.evaluate.Evaluations.paired` compares the same runs item by item)."""


def paired_counts(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
                  level: str) -> dict[str, int]:
    """Two runs' greedy rows on the same held-out items of one difficulty, paired by id: {"items": items both
    answered, "only_a": right in a and wrong in b, "only_b": the reverse}. The accuracy difference is
    (only_a - only_b) / items; the items both got right or both wrong say nothing about which run is better."""
    b = {r["id"]: bool(r["correct"]) for r in rows_b if r.get("difficulty") == level}
    pairs = [(bool(r["correct"]), b[r["id"]]) for r in rows_a if r.get("difficulty") == level and r["id"] in b]
    return {"items": len(pairs), "only_a": sum(x and not y for x, y in pairs),
            "only_b": sum(y and not x for x, y in pairs)}


def sign_test_p(only_a: int, only_b: int) -> float:
    """Exact two-sided sign test (McNemar's exact test) on the discordant items: the chance, were each of them
    equally likely to favour either run, of a split at least as uneven as this one. 1.0 with no discordant item."""
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def _hard_gap(a: str, b: str) -> Callable[[Mapping[str, Summary], Mapping[str, Summary]], float]:
    return lambda s, f: _d(s[a], "hard", "accuracy") - _d(s[b], "hard", "accuracy")


# Each target: (name, measure(summaries, forced) -> float | None, holds(value) -> bool, format of the value).
TARGETS: list[tuple[str, Callable[[Mapping[str, Summary], Mapping[str, Summary]], Any], Callable[[Any], bool]]] = [
    ("before RL, forced modes: think - direct accuracy on hard >= +0.30",
     lambda s, f: forced_gain(f, "hard"), lambda v: _at_least(v, 0.30)),
    ("before RL, forced modes: think - direct accuracy on easy within +-0.05",
     lambda s, f: forced_gain(f, "easy"), lambda v: _within(v, 0.05)),
    ("atar_cr_tr: no-think rate easy - hard >= 0.30 (sampled, in expectation)",
     lambda s, f: no_think_gap(s["atar_cr_tr"]), lambda v: _at_least(v, 0.30)),
    ("cold start (prompt only): no-think rate easy - hard within +-0.10 (sampled, in expectation)",
     lambda s, f: no_think_gap(s["cold_start"]), lambda v: _within(v, 0.10)),
    ("atar_cr halves atar's think/answer inconsistency rate (sampled)",
     lambda s, f: (sampled(s["atar"]).get("inconsistency_rate"), sampled(s["atar_cr"]).get("inconsistency_rate")),
     lambda v: _halved(*v)),
    *[(f"accuracy on hard: {a} >= {b}", _hard_gap(a, b), lambda v: _at_least(v, 0.0)) for a, b in PAIRED],
    ("accuracy overall: atar_cr_tr > cold start",
     lambda s, f: s["atar_cr_tr"]["accuracy"] - s["cold_start"]["accuracy"], lambda v: v > EPS),
]


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, tuple):
        return " vs ".join("n/a" if x is None else f"{x:.2f}" for x in v)
    return f"{v:+.2f}"


def targets(summaries: Mapping[str, Summary], forced: Mapping[str, Summary]) -> list[dict[str, Any]]:
    """[{target, value (number or pair), text, ok}] for one seed; summaries by run name, forced by mode."""
    out = []
    for name, measure, holds in TARGETS:
        v = measure(summaries, forced)
        out.append({"target": name, "value": v, "text": _fmt(v), "ok": bool(holds(v))})
    return out


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation, min and max of the values that exist."""
    xs = [v for v in values if v is not None]
    if not xs:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {"mean": statistics.fmean(xs), "sd": statistics.stdev(xs) if len(xs) > 1 else 0.0,
            "min": min(xs), "max": max(xs), "n": len(xs)}


def aggregate_targets(per_seed: Mapping[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per target: its value at each seed, how many seeds it held at, mean and spread of the value."""
    seeds = list(per_seed)
    rows = []
    for k, (name, _, _) in enumerate(TARGETS):
        vals = [per_seed[s][k]["value"] for s in seeds]
        flat = [v[1] - v[0] if isinstance(v, (tuple, list)) and None not in v else v for v in vals]
        flat = [None if isinstance(v, (tuple, list)) else v for v in flat]
        rows.append({"target": name, "held": sum(per_seed[s][k]["ok"] for s in seeds), "seeds": len(seeds),
                     "values": {s: per_seed[s][k]["text"] for s in seeds}, **spread(flat)})
    return rows


METRICS: list[tuple[str, str, Callable[[Summary], float | None]]] = [
    (run, label, fn)
    for run in ("cold_start", "grpo", "grpo_cot", "atar", "atar_cr", "atar_cr_tr")
    for label, fn in (
        ("accuracy", lambda s: s["accuracy"]),
        ("accuracy hard", lambda s: _d(s, "hard", "accuracy")),
        ("no-think easy", lambda s: _d(s, "easy", "no_think_rate")),
        ("no-think hard", lambda s: _d(s, "hard", "no_think_rate")),
        ("inconsistency", lambda s: s.get("inconsistency_rate")),
        ("think quality", lambda s: s.get("think_quality")),
        ("sampled: no-think easy", lambda s: _sampled_no_think(s, "easy")),
        ("sampled: no-think hard", lambda s: _sampled_no_think(s, "hard")),
        ("sampled: inconsistency", lambda s: sampled(s).get("inconsistency_rate")),
        ("expected: no-think easy", lambda s: _expected_no_think(s, "easy")),
        ("expected: no-think hard", lambda s: _expected_no_think(s, "hard")),
    )
]
"""The figures whose mean and spread over seeds the multi-seed report lists."""


def aggregate_metrics(per_seed: Mapping[int, Mapping[str, Summary]]) -> list[dict[str, Any]]:
    """[{run, metric, mean, sd, min, max, n}] over the seeds' summaries."""
    return [{"run": run, "metric": label, **spread([fn(per_seed[s][run]) for s in per_seed])}
            for run, label, fn in METRICS]
