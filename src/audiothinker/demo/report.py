"""The demo's report: Table 1 and Figure 2 analogues, the forced-mode table, targets, curves and timings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audiothinker.data.records import DIFFICULTIES
from audiothinker.demo.evaluate import SAMPLES
from audiothinker.demo.plan import (PLANS, PRESETS, PROMPTS, TRACE_SHARES, DemoPlan, reused_seconds,
                                   task_think_fractions)
from audiothinker.demo.targets import no_think_at, sampled

LEVELS = DIFFICULTIES
"""The difficulties, in the order of every table and plot."""


TRANSFER = (
    "The mechanism transfers: ATAR keeps a trace only where the model's own traces beat its direct answers by "
    "ATAR's margin (late in training a right trace earns 1, a right direct answer 2 and a wrong one -1, so "
    "thinking pays where think accuracy exceeds 3 x direct accuracy - 1; with R_c, which adds half to every right "
    "consistent answer, 1.5 x think accuracy must exceed 4 x direct accuracy - 1), so RL learns to think only where "
    "the cold start's traces really help, and only on questions the policy can tell apart at its first token. "
    "What does not transfer: the sizes (a 64-wide 2-layer model, minutes of CPU), difficulty by construction (the "
    "parity of 3-4 perceived tones of random lengths, which the direct path still gets right on 47-74 % of a "
    "hard task's items: two options, where MMAU has four, put a guess at 50 %, close to where ATAR stops paying for a "
    "trace), per-task think chances set by a coin rather than learned from data, a rule judge that knows every "
    "fact (an LLM judge is noisy and never hears the audio), Dr. GRPO's advantages in place of the paper's "
    "group-normalised ones, split at the think-or-answer token (`train.mode_advantage: split`, ours), the audio "
    "projector kept at the cold start's weights in RL (`model.freeze_parameters`; the paper does not say), and one RL "
    f"run per preset, evaluated greedily on {PLANS['full'].test_items // len(LEVELS)} held-out items per "
    "difficulty in the full plan (RL runs from one cold start differ by several points on hard items)."
)
"""The report's paragraph on what the toy shows about real models."""
RULES = (
    "The rule judge (`judge/rule.py`) knows every fact of the synthetic clips. R_c: 1 iff the option the "
    "trace concludes (its last \"the answer is X\" sentence) is the option the `<answer>` names. R_t: the "
    "share of the item's facts the trace states correctly, true claims / max(claims, facts), in tenths; the "
    "k-th claim about a subject is checked against its k-th fact, so each running count is checked. "
    f"Cold-start traces: {100 * TRACE_SHARES[0]:.0f} % flawed (misheard tones that keep the answer: R_t < 1) and "
    f"{100 * TRACE_SHARES[1]:.0f} % inconsistent (every fact right, the other option concluded: R_c = 0)."
)
"""How the rule judge scores, as the report states it."""


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def run_label(name: str) -> str:
    return "cold start (adaptive prompt)" if name == "cold_start" else f"{name} ({PROMPTS[name]} prompt)"


def sampled_summaries(summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Each run's summary of its sampled completions, for the runs that have one."""
    return {n: v["sampled"] for n, v in summaries.items() if v.get("sampled")}


def table1(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Accuracy and no-think rate by difficulty, inconsistency and think quality, one row per run (%)."""
    head = ["run", "acc", *[f"acc {d}" for d in LEVELS], "no-think", *[f"nt {d}" for d in LEVELS],
            "inconsistent", "think quality", "format"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, s in summaries.items():
        d = s["by_difficulty"]
        cells = [_pct(s["accuracy"]), *[_pct(d[lv]["accuracy"]) for lv in LEVELS], _pct(s["no_think_rate"]),
                 *[_pct(d[lv]["no_think_rate"]) for lv in LEVELS], _pct(s.get("inconsistency_rate")),
                 _pct(s.get("think_quality")), _pct(s.get("format_rate"))]
        lines.append(f"| {run_label(name)} | " + " | ".join(cells) + " |")
    return lines


def expected_table(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """No-think rate by difficulty in expectation when sampled (`first_tag`), beside the counted one (%), one row
    per run that has the figures."""
    head = ["run", "no-think", *[f"nt {d}" for d in LEVELS], "counted: " + " / ".join(LEVELS), "tag mass"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, s in summaries.items():
        e = s.get("first_tag")
        if not e:
            continue
        counted = sampled(s)
        cells = [_pct(e["no_think_rate"]), *[_pct(no_think_at(e, lv)) for lv in LEVELS],
                 " / ".join(_pct(no_think_at(counted, lv)) for lv in LEVELS), _pct(e.get("tag_mass"))]
        lines.append(f"| {run_label(name)} | " + " | ".join(cells) + " |")
    return lines


FORCED_LABELS = {"think_prompt": "think prompt, no tag (`grpo_cot`'s start)"}
"""Row labels of the forced-mode table other than the mode's own name."""


def forced_table(forced: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| forced mode | all | " + " | ".join(LEVELS) + " | think quality |", "|---|---:|" + "---:|" * 4]
    for mode, s in forced.items():
        cells = [_pct(s["accuracy"]), *[_pct(s["by_difficulty"][d]["accuracy"]) for d in LEVELS],
                 _pct(s.get("think_quality"))]
        lines.append(f"| {FORCED_LABELS.get(mode, mode)} | " + " | ".join(cells) + " |")
    return lines


def break_even_rows(forced: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per task: forced think and direct accuracy, the direct accuracy above which ATAR with R_c pays a direct
    answer more late in training (`rewards.direct_break_even`), the margin and its standard error, and the mode
    that pays more ("either" where the margin is within one standard error of the direct accuracy)."""
    import math

    from audiothinker.rewards import direct_break_even

    rows = []
    for task, direct in forced["no_think"]["by_task"].items():
        think = forced["think"]["by_task"].get(task)
        if think is None or direct["accuracy"] is None or think["accuracy"] is None:
            continue
        p, n = direct["accuracy"], direct["n_scored"]
        even = direct_break_even(think["accuracy"])
        margin, se = p - even, math.sqrt(p * (1 - p) / n) if n else float("nan")
        pays = "either" if abs(margin) <= se else "direct" if margin > 0 else "think"
        rows.append({"task": task, "think": think["accuracy"], "direct": p, "break_even": even, "margin": margin,
                     "se": se, "pays": pays})
    return rows


def break_even_table(forced: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| task | think | direct | break-even | direct - break-even (se) | pays more |",
             "|---|---:|---:|---:|---:|---|"]
    for r in break_even_rows(forced):
        lines.append(f"| {r['task']} | {_pct(r['think'])} | {_pct(r['direct'])} | {_pct(r['break_even'])} | "
                     f"{100 * r['margin']:+.1f} ({100 * r['se']:.1f}) | {r['pays']} |")
    return lines


def coupling_table(coupling: Mapping[str, Any], fractions: Mapping[str, float]) -> list[str]:
    """Per task: its cold-start think chance, its think share of the first tag, and the cosine of its
    decision gradient with every task's (`evaluate.decision_coupling`)."""
    tasks = list(coupling["cosine"])
    lines = ["| task | chance | think share | " + " | ".join(tasks) + " |",
             "|---|---:|---:|" + "---:|" * len(tasks)]
    for a in tasks:
        chance = f"{fractions[a]:.2f}" if a in fractions else "-"
        lines.append(f"| {a} | {chance} | {_pct(coupling['think_share'][a])} | "
                     + " | ".join(f"{coupling['cosine'][a][b]:.2f}" for b in tasks) + " |")
    return lines


def coupling_groups(coupling: Mapping[str, Any], fractions: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Per task: the mean cosine of its decision gradient with the other tasks that share its cold-start think
    chance ("same chance") and with the tasks at another chance ("other chance"); None where there are none."""
    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    cos, out = coupling["cosine"], {}
    for a in cos:
        if a not in fractions:
            continue
        same = [cos[a][b] for b in cos if b != a and fractions.get(b) == fractions[a]]
        other = [cos[a][b] for b in cos if b in fractions and fractions[b] != fractions[a]]
        out[a] = {"same chance": mean(same), "other chance": mean(other)}
    return out


def task_table(summaries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    tasks = list(summaries["cold_start"]["by_task"])
    lines = ["| task | " + " | ".join(f"{n}: acc / no-think" for n in summaries) + " |",
             "|---|" + "---:|" * len(summaries)]
    for t in tasks:
        cells = []
        for s in summaries.values():
            g = s["by_task"].get(t)
            cells.append("-" if g is None else f"{100 * g['accuracy']:.0f} / {100 * g['no_think_rate']:.0f}")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return lines


def targets_table(checks: list[dict[str, Any]]) -> list[str]:
    return ["| target | measured | reached |", "|---|---|---|",
            *[f"| {c['target']} | {c['text']} | {'yes' if c['ok'] else 'no'} |" for c in checks]]


def _p(p: float) -> str:
    return "< 0.01" if p < 0.01 else f"{p:.2f}"


def paired_lines(paired: list[dict[str, Any]] | None) -> list[str]:
    """The hard-accuracy targets' runs compared item by item (`Evaluations.paired`); [] without them."""
    if not paired:
        return []
    rows = [f"| `{c['a']}` vs `{c['b']}` | {c['only_a']} | {c['only_b']} | {c['only_a'] - c['only_b']:+d} of "
            f"{c['items']} | {_p(c['p'])} |" for c in paired]
    return ["## The hard-accuracy targets, item by item", "",
            "Both runs answer the same held-out items, so the items both got right, or both wrong, cancel: the "
            "difference in accuracy is what the items only one of them got right leave. p is the chance of a split "
            "of those items at least this uneven were each a coin flip between the two runs (exact sign test, "
            "McNemar's): a target missed by a few items with a large p cannot be told from a tie on this split. It "
            "counts the held-out items' noise only; RL runs from the same cold start also differ by several points on "
            "hard items.", "",
            "| comparison | right only in the first | right only in the second | difference (items) | p |",
            "|---|---:|---:|---:|---:|", *rows, ""]


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def plot_curves(path: Path, metrics: dict[str, list[dict]]) -> Path:
    """Reward, training-batch accuracy and think rate over RL steps, one line per preset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4.0))
    FigureCanvasAgg(fig)
    panels = [("reward/total_mean", "reward (batch mean)"), ("accuracy", "accuracy (training batch)"),
              ("think_rate", "think rate (training batch)")]
    fig2_run = metrics.get("atar_cr_tr", [])  # the Figure 2 run, level by level
    for k, (key, title) in enumerate([*panels, ("think_rate/", "atar_cr_tr: think rate by difficulty")]):
        ax = fig.add_subplot(1, len(panels) + 1, k + 1)
        lines = {lv: (f"{key}{lv}", fig2_run) for lv in LEVELS} if key.endswith("/") else \
            {preset: (key, rows) for preset, rows in metrics.items()}
        for label, (name, rows) in lines.items():
            pts = [(r["step"], r[name]) for r in rows if name in r]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("RL step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)  # below, never over a line
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    return path


def plots(out: Path, summaries: Mapping[str, Mapping[str, Any]], metrics: dict[str, list[dict]]) -> list[Path]:
    """Table 1 bars (accuracy by difficulty), Figure 2 bars (no-think rate by difficulty), RL curves."""
    from audiothinker.eval.report import bar_plot, compare_runs

    named = {run_label(n): s for n, s in summaries.items()}
    paths = compare_runs(named, out)
    fig2 = {}  # the no-think targets read the expected bars
    for n in ("cold_start", "atar_cr_tr"):
        fig2[run_label(n)] = summaries[n]
        if summaries[n].get("sampled"):
            fig2[f"{run_label(n)}, sampled"] = summaries[n]["sampled"]
        if summaries[n].get("first_tag"):
            fig2[f"{run_label(n)}, sampled (expected)"] = summaries[n]["first_tag"]
    no_think = bar_plot(out / "figure2_no_think_rate.png", list(LEVELS),
                        {name: [s["by_difficulty"][d]["no_think_rate"] for d in LEVELS] for name, s in fig2.items()},
                        "no-think rate by difficulty (Figure 2 analogue)", "no-think (%)")
    return [plot_curves(out / "rl_curves.png", metrics), no_think,
            *[p for p in paths.values() if p.suffix == ".png"]]


def coupling_lines(coupling: Mapping[str, Any], fractions: Mapping[str, float]) -> list[str]:
    """The report's section on how the cold start's first-tag choice is shared between questions."""
    if not coupling:
        return []
    groups = coupling_groups(coupling, fractions)
    lo, hi = min(coupling["items"].values()), max(coupling["items"].values())
    items = f"{lo}" if lo == hi else f"{lo}-{hi}"
    means = "; ".join(f"{t} {g['same chance']:.2f} vs {g['other chance']:.2f}" for t, g in groups.items()
                      if g["same chance"] is not None and g["other chance"] is not None)
    return [
        "## Which questions' choices move together (cold start, before RL)",
        "",
        "For each task, d = log p(`<think>`) - log p(`<answer>`) as the completion's first tag (adaptive prompt, "
        f"mean over {items} held-out items per task); think share = sigmoid(d). Each cell is the cosine between "
        "two tasks' gradients of d over the weights: a step that raises one task's log-odds of thinking raises the "
        "other's in proportion. RL pushes easy and medium questions toward direct answers and hard ones toward "
        "traces; a hard question whose gradient lies close to those of easy and medium ones moves with them, "
        "whatever its own rewards (`evaluate.decision_coupling`).",
        "",
        *coupling_table(coupling, fractions),
        "",
        f"Mean cosine with the other tasks at the same cold-start chance vs at the other chance: {means}.",
        "",
    ]


def think_chance_line(plan: DemoPlan, seed: int) -> str:
    """The report's sentence on the cold start's think chance of each task, with each difficulty's mean."""
    means = ", ".join(f"{d} {sum(c) / len(c):.2f}" for d, c in plan.think_fractions.items())
    chances = ", ".join(f"{t} {f:.2f}" for t, f in task_think_fractions(seed, plan.think_fractions).items())
    return ("Cold start: the chance of a think target under the adaptive prompt, by task (within each difficulty "
            f"one task at each of its chances, drawn by the seed; each difficulty's mean: {means}): {chances}.")


def report_lines(plan_name: str, plan: DemoPlan, seed: int, judge_backend: str, summaries: Mapping[str, Any],
                 forced: Mapping[str, Any], checks: list[dict], pngs: list[Path],
                 coupling: Mapping[str, Any] | None = None, paired: list[dict[str, Any]] | None = None) -> list[str]:
    """The Markdown of one seed's report."""
    gains = ", ".join(f"{d} {100 * (forced['think']['by_difficulty'][d]['accuracy'] - g['accuracy']):+.1f}"
                      for d, g in forced["no_think"]["by_difficulty"].items())
    return [
        "# Audio-Thinker demo: a tiny audio LM learns when to think",
        "",
        f"Plan `{plan_name}`, seed {seed}: {json.dumps(dataclasses.asdict(plan))}. Judge for R_c/R_t, the "
        f"inconsistency rate and think quality: `{judge_backend}`. Held-out test split (another seed), greedy.",
        "",
        *([RULES, ""] if judge_backend == "rule" else []),
        think_chance_line(plan, seed),
        "",
        "## Does thinking help the cold-start model? (before any RL)",
        "",
        "Accuracy (%) of the cold start made to think (prompt + `<think>`) or to answer directly "
        "(prompt + `<answer>`). ATAR pays a correct direct answer twice a correct think answer, so RL "
        "can only learn to think where the model's own traces raise accuracy. The last row is the cold start "
        "with the think prompt, where `grpo_cot` starts: its traces can differ from the adaptive prompt's.",
        "",
        *forced_table(forced),
        "",
        f"Think minus direct accuracy, in points: {gains}.",
        "",
        "By task, against ATAR's break-even: late in training ATAR with R_c pays a direct answer more than a "
        "trace where direct accuracy exceeds (1 + 1.5 x think accuracy) / 4 (`rewards.direct_break_even`). This "
        "table shows, before any RL, how much room ATAR leaves each question; it does not settle the outcome "
        "where the margin is a few points (RL also trains the direct path, and the easy questions' pull toward "
        "direct answers reaches the hard ones). \"either\": the margin is within one standard error of the "
        "direct accuracy.",
        "",
        *break_even_table(forced),
        "",
        *coupling_lines(coupling or {}, task_think_fractions(seed, plan.think_fractions)),
        "## Table 1 analogue: accuracy (%) by difficulty, each preset with its own prompt",
        "",
        *table1(summaries),
        "",
        "nt = no-think rate (%); inconsistent = think completions whose stated conclusion is not the answer "
        "(% of well-formed think completions); think quality = mean R_t of the think completions (%).",
        "",
        f"## The same runs sampled ({SAMPLES} completion{'s' * (SAMPLES > 1)} per item, temperature 1.0 as in RL)",
        "",
        "Greedy decoding shows each run's most likely completion; what a policy does less than half the "
        f"time (a conclusion that slips in {100 * TRACE_SHARES[1]:.0f} % of its traces, thinking on 40 % of the hard "
        "items) shows only here. R_c and R_t act on sampled completions, so the inconsistency target reads this "
        "table.",
        "",
        *table1(sampled_summaries(summaries)),
        "",
        "The no-think rate these samples have in expectation: 1 - p(<think> first) under the run's prompt, item by "
        "item, so without the sampling noise of the counted rate (at rates near one half and 320 items per "
        "difficulty, one sample per item leaves a standard error near 0.04 on the easy - hard gap). The no-think "
        "targets read it; tag mass is the mean probability that a completion opens with either tag.",
        "",
        *expected_table(summaries),
        "",
        "## Targets",
        "",
        *targets_table(checks),
        "",
        *paired_lines(paired),
        "## Accuracy / no-think rate by task (%)",
        "",
        *task_table({k: summaries[k] for k in ("cold_start", "grpo", "atar_cr_tr")}),
        "",
        "## Plots",
        "",
        *[f"![{p.stem}]({p.name})" for p in pngs],
        "",
        "## What transfers to real models, and what does not",
        "",
        TRANSFER,
        "",
    ]


def timing_lines(timings: Mapping[str, float], cpu: Mapping[str, float]) -> list[str]:
    reused = reused_seconds(timings)
    earlier = f" Reused stages took {reused / 60:.1f} min when they ran." if reused else ""
    return ["## Time", "", f"Wall {timings.get('total', 0) / 60:.1f} min this run; CPU time of the process (user + "
            f"sys) {cpu['user'] / 60:.1f} + {cpu['sys'] / 60:.1f} min. Shared machines inflate wall time.{earlier}", "",
            "| stage | seconds |", "|---|---:|", *[f"| {k} | {v:.0f} |" for k, v in timings.items()], ""]


def write_report(out: Path, plan_name: str, plan: DemoPlan, seed: int, judge_backend: str,
                 summaries: dict, forced: dict, checks: list[dict], timings: dict, cpu: dict,
                 coupling: dict | None = None, paired: list[dict] | None = None) -> tuple[Path, list[str]]:
    """report.md + report.json + PNGs under `out`; returns the report path and the lines to print."""
    metrics = {p: read_metrics(out / p) for p in PRESETS}
    pngs = plots(out, summaries, metrics)
    lines = report_lines(plan_name, plan, seed, judge_backend, summaries, forced, checks, pngs, coupling, paired)
    report = out / "report.md"
    report.write_text("\n".join(lines + timing_lines(timings, cpu)))
    (out / "report.json").write_text(json.dumps(
        {"plan": plan_name, "seed": seed, "summaries": summaries, "forced": forced, "coupling": coupling,
         "targets": checks, "paired": paired, "timings": timings, "cpu": cpu}, indent=2, default=str))
    return report, [*table1(summaries), "", "sampled:", *table1(sampled_summaries(summaries)), "",
                    *forced_table(forced), "",
                    *targets_table(checks), "", *paired_lines(paired)]


def paired_seed_lines(seeds: list[int], paired: Mapping[int, list[dict[str, Any]]]) -> list[str]:
    """`paired_lines` over several seeds: per comparison and seed, the difference in items, the items right only in
    each run, and the sign test's p. Not pooled: each seed compares its own two models."""
    comparisons = [(c["a"], c["b"]) for c in paired[seeds[0]]]
    lines = ["## The hard-accuracy targets, item by item, per seed", "",
             "Each cell: difference in items (right only in the first run / right only in the second, of the held-out "
             "hard items; exact sign test p), as in each seed's report.", "",
             "| comparison | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---:|" * len(seeds)]
    for k, (a, b) in enumerate(comparisons):
        cells = [paired[s][k] for s in seeds]
        lines.append(f"| `{a}` vs `{b}` | " + " | ".join(
            f"{c['only_a'] - c['only_b']:+d} ({c['only_a']} / {c['only_b']}, p {_p(c['p'])})" for c in cells) + " |")
    return [*lines, ""]


def seeds_report(out: Path, seeds: list[int], target_rows: list[dict], metric_rows: list[dict],
                 wall: float, cpu: Mapping[str, float],
                 paired: Mapping[int, list[dict[str, Any]]]) -> tuple[Path, list[str]]:
    """<out>/report.md over several seeds: each target's value per seed, how often it held, mean and spread, and the
    hard-accuracy targets item by item per seed (`paired_seed_lines`)."""
    def num(x: float | None, pct: bool = True) -> str:
        return "-" if x is None else (f"{100 * x:.1f}" if pct else f"{x:+.2f}")

    tlines = ["| target | " + " | ".join(f"seed {s}" for s in seeds) + " | held | mean | sd |",
              "|---|" + "---|" * len(seeds) + "---:|---:|---:|"]
    for t in target_rows:
        tlines.append(f"| {t['target']} | " + " | ".join(t["values"][s] for s in seeds)
                      + f" | {t['held']}/{t['seeds']} | {num(t['mean'], False)} | {num(t['sd'], False)} |")
    mlines = ["| run | figure (%) | mean | sd | min | max |", "|---|---|---:|---:|---:|---:|"]
    for m in metric_rows:
        mlines.append(f"| {m['run']} | {m['metric']} | {num(m['mean'])} | {num(m['sd'])} | {num(m['min'])} | "
                      f"{num(m['max'])} |")
    plines = paired_seed_lines(seeds, paired)
    lines = ["# Audio-Thinker demo over seeds " + ", ".join(map(str, seeds)), "",
             "Each seed is a full demo (data, model init, cold start, five RL runs, evaluation) under "
             "`seed-<s>/`, with its own report.md.", "", "## Targets", "", *tlines, "",
             *plines, "## Figures, mean and spread over seeds", "", *mlines, "",
             f"Wall {wall / 60:.1f} min in all; CPU time (user + sys) {cpu['user'] / 60:.1f} + "
             f"{cpu['sys'] / 60:.1f} min.",
             ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "report.json").write_text(json.dumps({"seeds": seeds, "targets": target_rows, "metrics": metric_rows,
                                                 "paired": paired, "wall": wall, "cpu": cpu}, indent=2, default=str))
    return report, [*tlines, "", *plines]
