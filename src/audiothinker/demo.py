"""`audiothinker demo`: a tiny audio thinker that learns when to think, end to end on one CPU.

    audiothinker demo [--quick] [--out runs/demo]

Stages, in order (each has a progress bar; a finished stage is reused when the demo is re-run
with the same plan, so an interrupted demo continues where it stopped):
  1. data        the synthetic tone/beep set (easy: pitch, presence; medium: count, order;
                 hard: majority, loudest_pitch); a held-out test split from another seed
  2. model       a tiny random Qwen2-Audio (same architecture and code path as the 7B)
  3. cold start  `audiothinker sft`: think traces or direct answers, chosen by a seeded coin
                 per item (no link to difficulty), adaptive prompt (recipes/demo/sft.yaml)
  4. eval        the cold-start model, adaptive prompt ("prompt only"); and the same model
                 forced into each mode (first tag given), which says whether thinking helps it
  5. RL          GRPO from the cold start with the presets `grpo` (accuracy + format,
                 no-think prompt) and `atar_cr_tr` (full Audio-Thinker reward; the rule
                 judge stands in for the LLM judge), recipes/demo/<preset>.yaml
  6. eval        held-out split: atar_cr_tr with the adaptive prompt; grpo with its own
                 training prompt (no-think) and, for reference, the adaptive one
  7. report      <out>/report.md (+ report.json, PNGs): the results table and the targets;
                 reward, accuracy and think rate over RL steps; accuracy and no-think rate by
                 difficulty side by side; think/answer inconsistency; accuracy per forced mode;
                 the sampled mode choice; a final table printed

`--judge-base-url URL` (with `--judge-backend openai`, the default when a URL is given) puts an
OpenAI-compatible LLM judge in place of the rule judge, for RL and evaluation alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "demo"
"""The demo's configs (a source checkout's recipes/demo); `--recipes` points elsewhere."""
PRESETS = ("grpo", "atar_cr_tr")
PROMPTS = {"grpo": "no_think", "atar_cr_tr": "adaptive"}
"""Each preset's training prompt (SPEC section 3); its evaluations use it too."""


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of one demo run; everything else is in recipes/demo/*.yaml."""

    train_items: int
    """Synthetic training items (cold start and RL draw from the same set)."""
    test_items: int
    """Held-out items (test split, another seed) for every evaluation."""
    sft_steps: int
    """Cold-start optimizer steps."""
    rl_steps: int
    """GRPO steps per preset (T of the ATAR schedule)."""
    rl_eval_steps: int
    """Evaluate on the held-out split every N RL steps (the accuracy curve); 0 = only the final evaluation."""
    rl_eval_items: int
    """Held-out items of those periodic evaluations."""
    hidden: int = 64
    """Width of the tiny model (language model and audio encoder); wider ones start using the audio later."""
    layers: int = 2
    """Language-model layers."""
    audio_layers: int = 2
    """Audio-encoder layers."""


PLANS: dict[str, DemoPlan] = {
    "full": DemoPlan(train_items=2400, test_items=300, sft_steps=1200, rl_steps=120, rl_eval_steps=20,
                     rl_eval_items=96),
    "quick": DemoPlan(train_items=480, test_items=96, sft_steps=500, rl_steps=30, rl_eval_steps=10, rl_eval_items=48),
    "smoke": DemoPlan(train_items=48, test_items=12, sft_steps=2, rl_steps=1, rl_eval_steps=0, rl_eval_items=12,
                      hidden=32, layers=1, audio_layers=1),
}


# --------------------------------------------------------------------------- stages


class Stages:
    """Runs named stages in order; a finished stage is reused while every stage before it was.

    A stage's stamp holds the whole demo setup (plan, seed, judge, recipes' text); once one stage
    runs afresh, all later ones do too, since their inputs changed.
    """

    def __init__(self, setup: dict[str, Any], console: Any):
        self.setup, self.console = setup, console
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()
        self.fresh = False

    def run(self, name: str, directory: Path, fn, *args, **kwargs) -> Any:
        stamp = directory / "demo_stage.json"
        if stamp.is_file() and not self.fresh:
            saved = json.loads(stamp.read_text())
            if saved.get("setup") == self.setup:
                self.console.print(f"[dim]reusing {name} ({directory})[/]")
                self.timings[name] = 0.0
                return saved["result"]
        if directory.exists():
            shutil.rmtree(directory)  # a half-done stage (or another plan's) must not leak into this one
        directory.mkdir(parents=True)
        self.fresh = True
        elapsed = time.perf_counter() - self.start
        self.console.rule(f"[bold]{name}[/]  (demo time {elapsed / 60:.1f} min)")
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        self.timings[name] = time.perf_counter() - t0
        stamp.write_text(json.dumps({"setup": self.setup, "result": result}, default=str))
        return result


def make_data(out: Path, plan: DemoPlan, seed: int) -> dict[str, str]:
    from audiothinker.data.synthetic import write_synthetic

    train = write_synthetic(out, plan.train_items, seed, split="train")
    test = write_synthetic(out, plan.test_items, seed, split="test")
    return {"train": str(train), "test": str(test)}


def make_model(out: Path, plan: DemoPlan, seed: int) -> str:
    from audiothinker.models.tiny import build_tiny_qwen2_audio

    path = build_tiny_qwen2_audio(out / "weights", seed=seed, hidden=plan.hidden, layers=plan.layers,
                                  audio_layers=plan.audio_layers)
    return str(path)


def run_sft(recipes: Path, overrides: list[str]) -> str:
    from audiothinker.config import load_config
    from audiothinker.sft import sft

    return str(sft(load_config(recipes / "sft.yaml", overrides)))


def run_rl(recipes: Path, preset: str, overrides: list[str]) -> str:
    from audiothinker.config import load_config
    from audiothinker.trainer.grpo import train

    cfg = load_config(recipes / f"{preset}.yaml", [f"reward.preset={preset}", *overrides])
    return str(train(cfg))


# --------------------------------------------------------------------------- evaluation


def load_eval_model(path: str):
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    policy = load_policy(ModelConfig(name_or_path=path, dtype="float32"))
    policy.model.eval()
    return policy


def evaluate(path: str, records: list, prompt: str, judge: Any, max_new_tokens: int, out: Path,
             temperature: float | None = None) -> dict[str, Any]:
    """Evaluation of the model at `path`, greedy (or sampled at `temperature`); rows and summary go under `out`.

    Greedy decoding picks the likelier first tag; when a model is near 50/50 between the modes
    that choice is brittle, so the demo also reports the sampled mode rates.
    """
    import torch

    from audiothinker.eval.runner import evaluate_policy
    from audiothinker.rollout.base import SamplingParams

    policy = load_eval_model(path)
    torch.manual_seed(0)
    sampling = SamplingParams(temperature=temperature, do_sample=True) if temperature else None
    with torch.no_grad():
        result = evaluate_policy(policy, policy.model, records, prompt, batch_size=32, max_new_tokens=max_new_tokens,
                                 judge=judge, sampling=sampling, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    _write_rows(out / "rows.jsonl", result.rows)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2))
    return result.summary


def forced_mode_summaries(path: str, records: list, judge: Any, max_new_tokens: int, out: Path) -> dict[str, Any]:
    """The model's accuracy when made to think, and when made to answer directly (adaptive prompt).

    The first tag (<think> or <answer>) is appended to every prompt, so the model continues in
    that mode; this measures whether its own think traces help it, item for item.
    """
    import torch

    from audiothinker.eval.report import summarize
    from audiothinker.eval.runner import score_completions
    from audiothinker.models.base import PromptBatch
    from audiothinker.rollout import SamplingParams, build_engine
    from audiothinker.trainer.data import prompt_batch

    policy = load_eval_model(path)
    engine = build_engine("hf", policy)
    params = SamplingParams(do_sample=False, max_new_tokens=max_new_tokens)
    summaries = {}
    for mode, tag in (("think", "<think>"), ("no_think", "<answer>")):
        tag_ids = policy.tokenizer(tag, add_special_tokens=False)["input_ids"]
        rows = []
        for start in range(0, len(records), 32):
            chunk = records[start : start + 32]
            b = prompt_batch(policy, chunk, "adaptive", None)
            col = torch.tensor([tag_ids] * len(b))  # [B, t]; prompts are left-padded, so the tag goes on the right
            mask = torch.cat([b.attention_mask, torch.ones_like(col)], 1)
            forced = PromptBatch(torch.cat([b.input_ids, col], 1), mask, b.audio, b.texts)
            with torch.no_grad():
                rollout = engine.generate(forced, 1, params)
            rows += score_completions(chunk, [tag + t for t in rollout.texts], rollout.truncated.tolist(), judge=judge)
        _write_rows(out / f"forced_{mode}_rows.jsonl", rows)
        summaries[mode] = summarize(rows)
    return summaries


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def build_judge(backend: str, base_url: str | None, model: str | None) -> Any:
    """The judge of the evaluations' inconsistency rate (RL builds its own from the same settings)."""
    if backend == "rule":
        from audiothinker.judge import RuleJudge

        return RuleJudge()
    from audiothinker.config import JudgeConfig
    from audiothinker.judge.factory import build_judge as factory

    judge = factory(JudgeConfig(backend=backend, base_url=base_url, **({"model": model} if model else {})))
    if hasattr(judge, "check"):
        judge.check()
    return judge


class Evaluations:
    """Every held-out evaluation of the demo, each a stage; results are kept on the instance for the report."""

    def __init__(self, stages: Stages, out: Path, records: list, judge: Any, max_new_tokens: int, temperature: float):
        self.stages, self.out, self.records, self.judge = stages, out, records, judge
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.summaries: dict[str, dict] = {}  # name -> greedy summary
        self.sampled: dict[str, dict] = {}  # name -> sampled summary
        self.cold_rows: dict[str, list[dict]] = {}  # prompt -> the cold start's greedy rows
        self.forced: dict[str, dict] = {}
        self.sampled_modes: dict[str, dict] = {}

    def _eval(self, name: str, path: str, prompt: str, sampled: bool = False) -> dict:
        d = self.out / (f"{name}_sampled" if sampled else name)
        label = f"eval: {name}" + (f", sampled at T={self.temperature}" if sampled else "")
        return self.stages.run(label, d, evaluate, path, self.records, prompt, self.judge, self.max_new_tokens, d,
                               self.temperature if sampled else None)

    def cold_start(self, path: str) -> None:
        self.summaries["cold_start"] = self._eval("cold_start", path, "adaptive")
        self.summaries["cold_start_no_think"] = self._eval("cold_start_no_think", path, "no_think")
        self.cold_rows = {"adaptive": _read_rows(self.out / "cold_start"),
                          "no_think": _read_rows(self.out / "cold_start_no_think")}
        forced_dir = self.out / "forced"
        self.forced = self.stages.run("eval: cold start, forced modes", forced_dir, forced_mode_summaries, path,
                                      self.records, self.judge, self.max_new_tokens, forced_dir)

    def after_rl(self, cold_path: str, finals: dict[str, str]) -> None:
        self.summaries["grpo"] = self._eval("grpo", finals["grpo"], PROMPTS["grpo"])
        self.summaries["grpo_adaptive"] = self._eval("grpo_adaptive", finals["grpo"], "adaptive")
        self.summaries["atar_cr_tr"] = self._eval("atar_cr_tr", finals["atar_cr_tr"], "adaptive")
        for name, path in (("cold_start", cold_path), ("grpo", finals["grpo"]), ("atar_cr_tr", finals["atar_cr_tr"])):
            self.sampled[name] = self._eval(name, path, PROMPTS.get(name, "adaptive"), sampled=True)
        self.sampled_modes = mode_accuracy(_read_rows(self.out / "cold_start_sampled"))

    @staticmethod
    def head(rows: list[dict], n: int) -> dict:
        from audiothinker.eval.report import summarize

        return summarize(rows[:n])


def _read_rows(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "rows.jsonl").read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- results and report


def targets(summaries: dict[str, dict]) -> list[dict[str, Any]]:
    """The behaviours the demo should show (issue: the demo), each with its measured numbers.

    summaries: "cold_start", "grpo", "atar_cr_tr", each on the whole held-out split (greedy).
    """
    def gap(s: dict) -> float:
        d = s["by_difficulty"]
        return d["easy"]["no_think_rate"] - d["hard"]["no_think_rate"]

    cold, grpo, atar = summaries["cold_start"], summaries["grpo"], summaries["atar_cr_tr"]
    inc_cold, inc_atar = cold.get("inconsistency_rate"), atar.get("inconsistency_rate")
    return [
        {"target": "atar_cr_tr: no-think rate easy - hard >= 0.30", "value": f"{gap(atar):+.2f}",
         "ok": gap(atar) >= 0.3},
        {"target": "cold start (prompt only): no-think rate easy - hard within +-0.10", "value": f"{gap(cold):+.2f}",
         "ok": abs(gap(cold)) < 0.1},
        {"target": "accuracy on hard: atar_cr_tr >= grpo",
         "value": f"{atar['by_difficulty']['hard']['accuracy']:.2f} vs {grpo['by_difficulty']['hard']['accuracy']:.2f}",
         "ok": atar["by_difficulty"]["hard"]["accuracy"] >= grpo["by_difficulty"]["hard"]["accuracy"]},
        {"target": "atar_cr_tr: accuracy rises during RL (after RL > cold start)",
         "value": f"{cold['accuracy']:.2f} -> {atar['accuracy']:.2f}", "ok": atar["accuracy"] > cold["accuracy"]},
        {"target": "think/answer inconsistency: atar_cr_tr < cold start",
         "value": f"{_fmt(inc_atar)} vs {_fmt(inc_cold)}",
         "ok": inc_atar is not None and inc_cold is not None and inc_atar < inc_cold},
    ]


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def eval_curve(metrics: list[dict], cold: dict) -> list[dict]:
    """Held-out accuracy over RL steps: the cold start at step 0, then every periodic evaluation."""
    curve = [{"step": 0, "accuracy": cold["accuracy"], "no_think_rate": cold["no_think_rate"]}]
    curve += [{"step": m["step"], "accuracy": m["eval/accuracy"], "no_think_rate": m.get("eval/no_think_rate")}
              for m in metrics if "eval/accuracy" in m]
    return curve


def plot_curves(path: Path, metrics: dict[str, list[dict]], curves: dict[str, list[dict]]) -> Path:
    """Reward, training-batch accuracy, held-out accuracy and think rate over RL steps, one line per preset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.4))
    FigureCanvasAgg(fig)
    panels = [("reward/total_mean", "reward (batch mean)"), ("accuracy", "accuracy (training batch)"),
              (None, "accuracy (held-out, greedy)"), ("think_rate", "think rate (training batch)")]
    for k, (key, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for preset, rows in metrics.items():
            if key is None:
                pts = curves.get(preset) or []
                ax.plot([p["step"] for p in pts], [p["accuracy"] for p in pts], marker="o", label=preset)
            else:
                ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=preset)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("RL step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    return path


def forced_table(forced: dict[str, dict]) -> list[str]:
    levels = list(forced["think"]["by_difficulty"])
    lines = ["| forced mode | " + " | ".join(["all", *levels]) + " |", "|---|" + "---:|" * (len(levels) + 1)]
    for mode, s in forced.items():
        cells = [f"{100 * s['accuracy']:.1f}"] + [f"{100 * s['by_difficulty'][d]['accuracy']:.1f}" for d in levels]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return lines


def mode_accuracy(rows: list[dict]) -> dict[str, dict[str, tuple[int, int]]]:
    """{difficulty or "all": {mode: (correct, n)}} from evaluation rows: accuracy of each mode where it was chosen."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for r in rows:
        for key in ("all", r.get("difficulty")):
            if key is None:
                continue
            c, n = out.setdefault(key, {}).get(r["think_mode"], (0, 0))
            out[key][r["think_mode"]] = (c + bool(r["correct"]), n + 1)
    return out


def mode_accuracy_table(stats: dict[str, dict[str, tuple[int, int]]]) -> list[str]:
    levels = ["all", *[k for k in stats if k != "all"]]
    lines = ["| mode chosen | " + " | ".join(levels) + " |", "|---|" + "---:|" * len(levels)]
    for mode in ("think", "no_think"):
        cells = []
        for level in levels:
            c, n = stats.get(level, {}).get(mode, (0, 0))
            cells.append(f"{100 * c / n:.1f} (n={n})" if n else "-")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return lines


def sampled_table(sampled: dict[str, dict]) -> list[str]:
    levels = list(next(iter(sampled.values()))["by_difficulty"])
    lines = ["| run (sampled) | accuracy | " + " | ".join(f"no-think {d}" for d in ["all", *levels]) + " |",
             "|---|---:|" + "---:|" * (len(levels) + 1)]
    for name, s in sampled.items():
        cells = [f"{100 * s['accuracy']:.1f}", f"{100 * s['no_think_rate']:.1f}",
                 *[f"{100 * s['by_difficulty'][d]['no_think_rate']:.1f}" for d in levels]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def task_table(summaries: dict[str, dict]) -> list[str]:
    tasks = list(summaries["cold_start"]["by_task"])
    lines = ["| task | " + " | ".join(f"{n} acc / no-think" for n in summaries) + " |",
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
            *[f"| {c['target']} | {c['value']} | {'yes' if c['ok'] else 'no'} |" for c in checks]]


def write_report(out: Path, plan_name: str, plan: DemoPlan, ev: Evaluations, metrics: dict, curves: dict,
                 timings: dict[str, float], judge_backend: str) -> tuple[Path, list[str]]:
    """report.md + PNGs under `out`; returns the report path and the lines of the final table."""
    from audiothinker.eval.report import bar_plot, compare_runs

    summaries, forced, sampled, temperature = ev.summaries, ev.forced, ev.sampled, ev.temperature
    named = {"cold start (adaptive prompt)": summaries["cold_start"],
             "cold start (no-think prompt)": summaries["cold_start_no_think"],
             "grpo (no-think prompt, its training prompt)": summaries["grpo"],
             "grpo (adaptive prompt)": summaries["grpo_adaptive"],
             "atar_cr_tr (adaptive prompt)": summaries["atar_cr_tr"]}
    paths = compare_runs(named, out)
    paths["inconsistency"] = bar_plot(
        out / "compare_inconsistency_rate.png", list(named),
        {"inconsistent think": [s.get("inconsistency_rate") for s in named.values()]},
        "think/answer inconsistency (n/a: no think completion)", "inconsistent (%)")
    table = [line for line in paths["md"].read_text().splitlines() if line.startswith("|")]
    curve_png = plot_curves(out / "rl_curves.png", metrics, curves)
    checks = targets(summaries)
    lines = [
        "# Audio-Thinker demo: a tiny audio LM learns when to think",
        "",
        f"Plan `{plan_name}`: {json.dumps(dataclasses.asdict(plan))}. Judge for R_c/R_t and the inconsistency "
        f"rate: `{judge_backend}`. All numbers are on the held-out test split (another seed), greedy decoding.",
        "",
        "## Results",
        "",
        *table,
        "",
        "grpo is trained and evaluated with its own prompt (the no-think instruction, as in the paper's "
        "GRPO row); its adaptive-prompt row is there for reference only. The cold start was trained with "
        "the adaptive prompt only; its no-think-prompt row is grpo's starting point.",
        "",
        "## Targets",
        "",
        *targets_table(checks),
        "",
        "## Does thinking help the cold-start model?",
        "",
        "Accuracy (%) of the cold-start model made to think (prompt + `<think>`) or to answer directly "
        "(prompt + `<answer>`), greedy. Audio-Thinker can only learn to think on hard items if its own "
        "traces help there: ATAR pays a correct direct answer twice a correct think answer and fines a "
        "wrong direct answer more, so thinking wins an item only where it raises accuracy enough.",
        "",
        *forced_table(forced),
        "",
        "Think minus no-think accuracy, in points: " + ", ".join(
            f"{level} {100 * (forced['think']['by_difficulty'][level]['accuracy'] - g['accuracy']):+.1f}"
            for level, g in forced["no_think"]["by_difficulty"].items()) + ".",
        "",
        f"## Mode choice when sampling (temperature {temperature}, as in the RL rollouts)",
        "",
        "Greedy decoding shows the likelier mode only; these no-think rates (%) show the policy's mode "
        "distribution on the same held-out items, with the accuracy of the sampled completions.",
        "",
        *sampled_table(sampled),
        "",
        "Accuracy (%) of the cold-start model's sampled completions, by the mode it picked: what the RL "
        "rollouts (which sample) see of each mode.",
        "",
        *mode_accuracy_table(ev.sampled_modes),
        "",
        "## Accuracy and no-think rate by task (greedy)",
        "",
        *task_table({k: summaries[k] for k in ("cold_start", "grpo", "atar_cr_tr")}),
        "",
        "## Plots",
        "",
        f"![RL curves]({curve_png.name})",
        "",
        *[f"![{p.stem}]({p.name})" for k, p in paths.items() if p.suffix == ".png"],
        "",
        "## Time per stage (s)",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {name} | {sec:.0f} |" for name, sec in timings.items()],
        "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    (out / "report.json").write_text(json.dumps(
        {"plan": plan_name, "summaries": summaries, "forced": forced, "sampled": sampled,
         "cold_start_sampled_accuracy_by_mode": ev.sampled_modes, "curves": curves, "targets": checks,
         "timings": timings}, indent=2, default=str))
    return report, [*table, "", *targets_table(checks)]


# --------------------------------------------------------------------------- the command


def demo(out: Path, plan_name: str = "full", *, seed: int = 42, recipes: Path = RECIPES,
         judge_backend: str = "rule", judge_base_url: str | None = None, judge_model: str | None = None,
         overrides: list[str] | None = None) -> Path:
    """Run every stage; returns the path of report.md."""
    from rich.console import Console

    from audiothinker.data.loaders import load_records

    console = Console()
    plan = PLANS[plan_name]
    overrides = list(overrides or [])
    setup = {"plan": plan_name, "sizes": dataclasses.asdict(plan), "seed": seed, "judge": judge_backend,
             "judge_base_url": judge_base_url, "judge_model": judge_model, "overrides": overrides, "recipes": {
                 p.name: p.read_text() for p in sorted(recipes.glob("*.yaml"))}}
    stages = Stages(setup, console)
    judge = build_judge(judge_backend, judge_base_url, judge_model)  # an unreachable judge fails before any training
    total_start = time.perf_counter()

    data = stages.run("data", out / "data", make_data, out / "data", plan, seed)
    model = stages.run("model", out / "model", make_model, out / "model", plan, seed)
    sft_final = stages.run("cold start (SFT)", out / "sft", run_sft, recipes, [
        f"output_dir={out / 'sft'}", f"seed={seed}", f"model.name_or_path={model}", f"data.train_file={data['train']}",
        f"max_steps={plan.sft_steps}",
    ])
    test = load_records(data["test"], "jsonl").records
    rollout = _rl_rollout(recipes)
    ev = Evaluations(stages, out / "eval", test, judge, rollout.max_new_tokens, rollout.temperature)
    ev.cold_start(sft_final)

    judge_sets = [f"judge.backend={judge_backend}"] + ([f"judge.base_url={judge_base_url}"] if judge_base_url else []) \
        + ([f"judge.model={judge_model}"] if judge_model else [])
    finals, metrics = {}, {}
    for preset in PRESETS:
        finals[preset] = stages.run(f"RL: {preset}", out / preset, run_rl, recipes, preset, [
            f"output_dir={out / preset}", f"seed={seed}", f"model.name_or_path={sft_final}",
            f"data.train_file={data['train']}", f"max_steps={plan.rl_steps}", f"eval.eval_steps={plan.rl_eval_steps}",
            f"eval.file={data['test']}", f"eval.limit={plan.rl_eval_items}", *judge_sets, *overrides,
        ])
        metrics[preset] = read_metrics(out / preset)
    ev.after_rl(sft_final, finals)

    # The periodic evaluations see the first `rl_eval_items` test items, each preset with its own prompt.
    curves = {p: eval_curve(metrics[p], ev.head(ev.cold_rows[PROMPTS[p]], plan.rl_eval_items)) for p in PRESETS}
    timings = {**stages.timings, "total": time.perf_counter() - total_start}
    report, table = write_report(out, plan_name, plan, ev, metrics, curves, timings, judge_backend)
    console.rule("[bold]results (held-out test split)[/]")
    print("\n".join(table), flush=True)  # plain print: a Markdown table must not be wrapped
    print(f"\ntotal {timings['total'] / 60:.1f} min; report: {report}")
    return report


def _rl_rollout(recipes: Path):
    """The RL rollout settings: evaluations use its completion limit, sampled ones its temperature."""
    from audiothinker.config import load_config

    return load_config(recipes / "atar_cr_tr.yaml").rollout


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="end-to-end demo on one CPU: cold start, GRPO vs Audio-Thinker, report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output directory (report.md, plots, runs)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", const="quick", dest="plan",
                      help="fewer items and steps, same pipeline (a few minutes)")
    size.add_argument("--plan", choices=sorted(PLANS),
                      help="size of the run: full (default) | quick | smoke (seconds, for tests; learns nothing)")
    p.set_defaults(plan="full")
    p.add_argument("--seed", type=int, default=42, help="seed of data, model init, training and sampling")
    p.add_argument("--recipes", type=Path, default=RECIPES, help="directory with sft.yaml, grpo.yaml, atar_cr_tr.yaml")
    p.add_argument("--judge-backend", choices=["rule", "openai", "local"], default=None,
                   help="judge of R_c/R_t and of the inconsistency rate (default: rule; openai with a base URL)")
    p.add_argument("--judge-base-url", default=None,
                   help="OpenAI-compatible judge server, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", default=None, help="judge model name as served (default Qwen/Qwen3-8B-Base)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of both RL configs, e.g. --set train.beta=0.02 (repeatable)")


def run(args: argparse.Namespace) -> int:
    from audiothinker.config import ConfigError

    backend = args.judge_backend or ("openai" if args.judge_base_url else "rule")
    if backend == "openai" and not args.judge_base_url:
        raise ConfigError("--judge-base-url: required with --judge-backend openai")
    if not (args.recipes / "sft.yaml").is_file():
        raise ConfigError(f"--recipes: {args.recipes} has no sft.yaml (run from a source checkout or pass --recipes)")
    demo(Path(args.out), args.plan, seed=args.seed, recipes=args.recipes, judge_backend=backend,
         judge_base_url=args.judge_base_url, judge_model=args.judge_model, overrides=args.overrides)
    return 0
