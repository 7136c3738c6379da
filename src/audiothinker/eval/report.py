"""Evaluation summaries, Markdown tables and PNG plots, computed from per-item rows.

A row is one evaluated item (written by `eval.run.score_completions`):
    id, task, difficulty, category   labels of the record (None when the data has none)
    answer                           the right option's text
    raw_output                       the completion as generated
    prediction                       its <answer> content, think text dropped (`parsing.extract_answer`)
    think_mode                       "think" | "no_think" | "none", from the tags (`parsing.parse_completion`);
                                     "none" is an untagged output (no think or answer tag at all)
    format_ok                        one of the two valid shapes (SPEC section 2)
    correct                          True/False, or None when the scorer leaves the item out of the
                                     denominator (an unreadable AIR-Bench response)
    truncated                        no EOS within max_new_tokens
    consistency                      the judge's R_c for a well-formed think completion (1.0 the think
                                     conclusion agrees with the answer, 0.0 not), None when not judged

Rates:
    accuracy            correct / scored (rows whose `correct` is not None)
    no_think_rate       share of rows not in think mode: the no-think shape and untagged outputs
                        alike, as ATAR's lambda counts them (a completion thinks or it does not)
    untagged_rate       share of untagged rows (think_mode "none"), also inside no_think_rate
    format_rate         share of rows with a valid shape
    inconsistency_rate  share of judged rows with consistency < 0.5; None when nothing was judged
Paper Fig. 2 is the no-think rate by difficulty: it should fall from easy to hard.

`summarize` is pure; `write_report` and `compare_runs` write files (matplotlib, Agg canvas,
no pyplot state).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from audiothinker.data.records import DIFFICULTIES

INCONSISTENT_BELOW = 0.5
"""A consistency verdict below this counts as "think conclusion disagrees with the answer"."""


# --------------------------------------------------------------------------- tables (pure)


def _rate(k: int, n: int) -> float:
    return k / n if n else 0.0


def group_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy, no-think/format/inconsistency rates and counts of a set of rows."""
    scored = [r for r in rows if r.get("correct") is not None]
    judged = [r for r in rows if r.get("consistency") is not None]
    n_correct = sum(bool(r["correct"]) for r in scored)
    n_inconsistent = sum(r["consistency"] < INCONSISTENT_BELOW for r in judged)
    return {
        "accuracy": _rate(n_correct, len(scored)),
        "no_think_rate": _rate(sum(r.get("think_mode") != "think" for r in rows), len(rows)),
        "untagged_rate": _rate(sum(r.get("think_mode") == "none" for r in rows), len(rows)),
        "think_rate": _rate(sum(r.get("think_mode") == "think" for r in rows), len(rows)),
        "format_rate": _rate(sum(bool(r.get("format_ok")) for r in rows), len(rows)),
        "truncated_rate": _rate(sum(bool(r.get("truncated")) for r in rows), len(rows)),
        "inconsistency_rate": _rate(n_inconsistent, len(judged)) if judged else None,
        "n": len(rows),
        "n_scored": len(scored),
        "n_correct": n_correct,
        "n_judged": len(judged),
    }


def _label_order(labels: Iterable[str]) -> list[str]:
    """Difficulties in paper order (easy, medium, hard), anything else after them, sorted."""
    labels = set(labels)
    return [d for d in DIFFICULTIES if d in labels] + sorted(labels - set(DIFFICULTIES))


def grouped(rows: Sequence[Mapping[str, Any]], field: str) -> dict[str, dict[str, Any]]:
    """`group_stats` per value of `field`; rows without a label are left out of the breakdown."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get(field) is not None:
            groups.setdefault(str(r[field]), []).append(r)
    return {label: group_stats(groups[label]) for label in _label_order(groups)}


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The overall `group_stats` plus `by_difficulty` and `by_task` breakdowns."""
    return {**group_stats(rows), "by_difficulty": grouped(rows, "difficulty"), "by_task": grouped(rows, "task")}


# --------------------------------------------------------------------------- Markdown


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _group_table(groups: Mapping[str, Mapping[str, Any]], name: str) -> list[str]:
    lines = [
        f"| {name} | n | accuracy % | no-think % | untagged % | format % | inconsistency % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, g in groups.items():
        lines.append(
            f"| {label} | {g['n']} | {_pct(g['accuracy'])} | {_pct(g['no_think_rate'])} | "
            f"{_pct(g.get('untagged_rate'))} | {_pct(g['format_rate'])} | {_pct(g.get('inconsistency_rate'))} |"
        )
    return lines


def official_markdown(official: Mapping[str, Any]) -> list[str]:
    """The official scorer's counts (`eval.score.score_records` output) as one table."""
    lines = ["| group | name | correct | n | accuracy % |", "|---|---|---:|---:|---:|"]
    for group, tallies in official.items():
        if isinstance(tallies, dict):
            for name, (c, n) in tallies.items():
                lines.append(f"| {group} | {name} | {c} | {n} | {_pct(c / n) if n else '-'} |")
    c, n = official["total"]
    lines.append(f"| **total** | | **{c}** | **{n}** | **{_pct(c / n) if n else '-'}** |")
    if "fail" in official:
        lines.append(f"\nUnreadable responses (left out of every denominator, as officially): {official['fail']}")
    if official.get("no_prediction"):
        lines.append(f"\nRecords without a prediction (skipped or failed, as officially): {official['no_prediction']}")
    return lines


def markdown_report(
    title: str,
    summary: Mapping[str, Any],
    official: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
    plots: Sequence[str] = (),
) -> str:
    s = summary
    lines = [
        f"# {title}",
        "",
        f"- items: {s['n']} (scored {s['n_scored']}, correct {s['n_correct']})",
        f"- accuracy: {_pct(s['accuracy'])}%",
        f"- no-think rate: {_pct(s['no_think_rate'])}% (every completion not in think mode)",
        f"- untagged outputs: {_pct(s.get('untagged_rate'))}% (no think or answer tag; counted in the no-think rate)",
        f"- format rate: {_pct(s['format_rate'])}%",
        f"- think/answer inconsistency: "
        + (f"{_pct(s['inconsistency_rate'])}% of {s['n_judged']} judged think completions"
           if s.get("inconsistency_rate") is not None else "not measured (no judge, or no well-formed think completion)"),
        "",
    ]
    if s["by_difficulty"]:
        lines += ["## By difficulty", "", *_group_table(s["by_difficulty"], "difficulty"), ""]
    if s["by_task"]:
        lines += ["## By task", "", *_group_table(s["by_task"], "task"), ""]
    if official is not None:
        lines += ["## Official scoring", "", *official_markdown(official), ""]
    if plots:
        lines += ["## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots], ""]
    if run:
        lines += ["## Run", "", "```json", json.dumps(run, indent=2, ensure_ascii=False, default=str), "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def bar_plot(
    path: str | os.PathLike[str],
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    ylabel: str,
) -> Path:
    """Grouped bars: one group per label, one bar per series (values in [0, 1], drawn as %)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    legend = 3.0 if len(series) > 1 else 0.0  # inches for the legend beside the axes
    fig = Figure(figsize=(max(4.0, 1.1 * len(labels) * max(1, len(series)) ** 0.5 + 2) + legend, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        heights = [100 * v if v is not None else 0.0 for v in values]
        bars = ax.bar(xs, heights, width, label=name)
        for bar, v in zip(bars, values):
            text = "n/a" if v is None else f"{100 * v:.0f}"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0, fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:  # beside the axes, never over a bar
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png", dpi=110)
    return path


def _plots(out: Path, summary: Mapping[str, Any], title: str) -> list[Path]:
    by_d, by_t = summary["by_difficulty"], summary["by_task"]
    paths = []
    if by_t:
        paths.append(bar_plot(out / "accuracy_by_task.png", list(by_t), {"accuracy": [g["accuracy"] for g in by_t.values()]},
                              f"{title}: accuracy by task", "accuracy (%)"))
    if by_d:
        labels = list(by_d)
        paths.append(bar_plot(out / "accuracy_by_difficulty.png", labels, {"accuracy": [g["accuracy"] for g in by_d.values()]},
                              f"{title}: accuracy by difficulty", "accuracy (%)"))
        paths.append(bar_plot(out / "no_think_rate_by_difficulty.png", labels,
                              {"no-think rate": [g["no_think_rate"] for g in by_d.values()]},
                              f"{title}: no-think rate by difficulty", "no-think (%)"))
    if summary.get("inconsistency_rate") is not None:
        groups = {"all": summary, **by_d}
        paths.append(bar_plot(out / "inconsistency_rate.png", list(groups),
                              {"inconsistent": [g.get("inconsistency_rate") for g in groups.values()]},
                              f"{title}: think/answer inconsistency", "inconsistent think (%)"))
    return paths


def write_report(
    out_dir: str | os.PathLike[str],
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    title: str,
    *,
    official: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write report.json, report.md and the PNG plots under out_dir; return {name: path}.

    Plots: accuracy by task, accuracy and no-think rate by difficulty (when the data has
    difficulty labels), inconsistency rate overall and by difficulty (when a judge ran).
    `rows` go into report.json only as counts; the runner keeps them in its prediction files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(out, summary, title)
    report = {"title": title, "summary": summary, "official": official, "run": run or {}, "rows": len(rows),
              "plots": [p.name for p in plots]}
    paths = {"json": out / "report.json", "md": out / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown_report(title, summary, official, run, [p.name for p in plots]), encoding="utf-8")
    paths.update({p.stem: p for p in plots})
    return paths


# --------------------------------------------------------------------------- several runs


def _summary_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a summary or a whole report.json dict (which holds one under "summary")."""
    return obj["summary"] if "summary" in obj and "by_difficulty" not in obj else obj


def compare_runs(named_summaries: Mapping[str, Mapping[str, Any]], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Side-by-side accuracy and no-think rate by difficulty for several runs, and a Markdown table.

    named_summaries: {run name: summary (or report.json dict)}, in the order to draw them,
    e.g. {"cold-start": ..., "grpo": ..., "atar_cr_tr": ...}. Writes compare.md, compare.json,
    compare_accuracy_by_difficulty.png and compare_no_think_rate_by_difficulty.png.
    """
    if not named_summaries:
        raise ValueError("compare_runs needs at least one run")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = {name: _summary_of(s) for name, s in named_summaries.items()}
    levels = _label_order({d for s in runs.values() for d in s["by_difficulty"]})
    labels = ["all", *levels]

    def column(s: Mapping[str, Any], key: str) -> list[float | None]:
        return [s[key]] + [s["by_difficulty"][d][key] if d in s["by_difficulty"] else None for d in levels]

    paths = {
        "accuracy": bar_plot(out / "compare_accuracy_by_difficulty.png", labels,
                             {n: column(s, "accuracy") for n, s in runs.items()}, "accuracy by difficulty", "accuracy (%)"),
        "no_think": bar_plot(out / "compare_no_think_rate_by_difficulty.png", labels,
                             {n: column(s, "no_think_rate") for n, s in runs.items()},
                             "no-think rate by difficulty", "no-think (%)"),
    }
    head = ["run", "n", "accuracy %", *[f"acc {d} %" for d in levels], "no-think %",
            *[f"no-think {d} %" for d in levels], "untagged %", "format %", "inconsistency %"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, s in runs.items():
        acc, nt = column(s, "accuracy"), column(s, "no_think_rate")
        cells = [name, str(s["n"]), *map(_pct, acc), *map(_pct, nt), _pct(s.get("untagged_rate")), _pct(s["format_rate"]),
                 _pct(s.get("inconsistency_rate"))]
        lines.append("| " + " | ".join(cells) + " |")
    plots = [f"![{p.stem}]({p.name})" for p in paths.values()]
    paths["md"] = out / "compare.md"
    paths["md"].write_text("# Runs compared\n\n" + "\n".join(lines) + "\n\n" + "\n".join(plots) + "\n", encoding="utf-8")
    paths["json"] = out / "compare.json"
    paths["json"].write_text(json.dumps(runs, indent=2, default=str) + "\n", encoding="utf-8")
    return paths
