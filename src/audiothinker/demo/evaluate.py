"""The demo's held-out evaluations: each preset with its own prompt, the cold start forced into each mode,
and the judge's think quality of every think completion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audiothinker.demo.plan import PROMPTS, StageJob, Stages, longest_first
from audiothinker.parsing import FIRST_TAGS, first_tag_ids

SUMMARY_FIGURES = 2
"""Version of what `evaluate` puts in a summary, in each evaluation's stage key: a stamped evaluation from before
a figure was added (2: "first_tag") reruns instead of being reused without it."""

SAMPLES = 1
"""Sampled completions per held-out item for the sampled figures (temperature 1.0, as in RL): greedy decoding
hides whatever the policy does less than half the time (a conclusion that slips on 15 % of the samples is
never greedy), and R_c acts on sampled completions."""


def load_eval_model(path: str):
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    # The demo's audio tower is frozen at its random init, so its outputs are cached across evaluations.
    policy = load_policy(ModelConfig(name_or_path=path, dtype="float32", freeze_audio_tower=True,
                                     cache_audio_features=True))
    policy.model.eval()
    return policy


def think_quality(rows: list[dict], records: list, judge: Any) -> None:
    """Adds `think_quality` (the judge's R_t, 0..1) to every well-formed think row, None elsewhere."""
    from audiothinker.judge.base import JudgeRequest
    from audiothinker.judge.rule import record_facts
    from audiothinker.parsing import parse_completion

    by_id = {r.id: r for r in records}
    idx, reqs = [], []
    for i, row in enumerate(rows):
        row["think_quality"] = None
        parsed = parse_completion(row["raw_output"])
        if parsed.valid and parsed.thinks and parsed.think:
            rec = by_id[row["id"]]
            idx.append(i)
            reqs.append(JudgeRequest(rec.question, tuple(rec.choices), parsed.think, parsed.answer or "",
                                     record_facts(rec)))
    verdicts = judge.judge(reqs, consistency=False, quality=True) if reqs else []
    for i, v in zip(idx, verdicts):
        rows[i]["think_quality"] = v.quality


def quality_summary(rows: list[dict]) -> dict[str, Any]:
    """Mean think quality over the judged think rows, overall and by difficulty (None where there are none)."""
    def mean(sel: list[dict]) -> float | None:
        q = [r["think_quality"] for r in sel if r.get("think_quality") is not None]
        return sum(q) / len(q) if q else None

    levels = sorted({r.get("difficulty") for r in rows if r.get("difficulty")})
    return {"think_quality": mean(rows),
            "think_quality_by_difficulty": {d: mean([r for r in rows if r.get("difficulty") == d]) for d in levels}}


def evaluate(path: str, records: list, prompt: str, judge: Any, max_new_tokens: int, out: Path,
             progress: bool = True) -> dict[str, Any]:
    """Greedy evaluation of the model at `path` with `prompt`, plus `SAMPLES` sampled completions per item
    (summary["sampled"]) and, with the adaptive prompt, the no-think rate those have in expectation
    (summary["first_tag"], `first_tag_summary`); rows and summary go under `out`. The think and no-think
    prompts name the mode (`grpo_cot` and `grpo` open with their prompt's tag with probability >= 0.998 in
    expectation, in each of the 22 demo runs that measured it), so their runs skip that pass: one forward of
    every prompt, 8 s each on one thread."""
    import torch

    from audiothinker.eval.run import evaluate_policy
    from audiothinker.rollout import SamplingParams

    policy = load_eval_model(path)
    torch.manual_seed(0)
    with torch.no_grad():
        result = evaluate_policy(policy, policy.model, records, prompt, batch_size=48, max_new_tokens=max_new_tokens,
                                 judge=judge, progress=progress)
        sampled = evaluate_policy(policy, policy.model, list(records) * SAMPLES, prompt, batch_size=48,
                                  max_new_tokens=max_new_tokens, judge=judge, progress=progress,
                                  sampling=SamplingParams(temperature=1.0, do_sample=True)).rows
    summary = {**scored_summary(result.rows, records, judge, out / "rows.jsonl"),
               "sampled": {**scored_summary(sampled, records, judge, out / "sampled_rows.jsonl"),
                           "samples_per_item": SAMPLES},
               **({"first_tag": first_tag_summary(policy, records, prompt)} if prompt == "adaptive" else {})}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def scored_summary(rows: list[dict], records: list, judge: Any, path: Path) -> dict[str, Any]:
    """Score the rows' think quality, write them to `path`, and return their summary with the quality figures."""
    from audiothinker.eval.report import summarize

    think_quality(rows, records, judge)
    write_rows(path, rows)
    return {**summarize(rows), **quality_summary(rows)}


FORCED_ROWS = (*FIRST_TAGS, "think_prompt")
"""The forced-mode stage's rows: each mode under the adaptive prompt with its tag given, then the think prompt."""


def first_tag_logprobs(policy: Any, records: list, prompt: str) -> Any:
    """[B, 2]: log p(<think>) and log p(<answer>) as the completion's start, each tag teacher-forced after the
    prompt (one forward: both tags as two completions of each prompt). Gradients flow where the caller allows."""
    import torch

    from audiothinker.data.batching import prompt_batch

    tags = list(first_tag_ids(policy.tokenizer).values())  # think, then no_think
    width = max(map(len, tags))  # right-padded to one length
    tag_ids = torch.tensor([t + [0] * (width - len(t)) for t in tags])  # [2, t]
    tag_mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in tags])  # [2, t]
    batch = prompt_batch(policy, records, prompt, None)
    ids, mask = tag_ids.repeat(len(records), 1), tag_mask.repeat(len(records), 1)  # [B*2, t]: row 2b + g
    return (policy.token_logprobs(policy.model, batch, ids, mask, 2) * mask).sum(1).view(-1, 2)  # [B, 2]


def expected_no_think(p_think: list[float], difficulties: list[str | None]) -> dict[str, Any]:
    """The no-think rate that sampling at temperature 1.0 has in expectation: 1 - p(<think> first), the mean over
    the items, overall and by difficulty. A completion that does not open with <think> is not in think mode,
    whatever it opens with, as in `eval.report.summarize`'s no-think rate; so this is that rate's expected
    value, without the sampling noise of a few completions per item."""
    from audiothinker.data.records import DIFFICULTIES

    def rate(ps: list[float]) -> float:
        return 1.0 - sum(ps) / len(ps)

    levels = [d for d in DIFFICULTIES if d in difficulties]
    return {"n": len(p_think), "no_think_rate": rate(p_think) if p_think else None,
            "by_difficulty": {d: {"n": difficulties.count(d),
                                  "no_think_rate": rate([p for p, x in zip(p_think, difficulties) if x == d])}
                              for d in levels}}


def first_tag_summary(policy: Any, records: list, prompt: str, batch_size: int = 48) -> dict[str, Any]:
    """`expected_no_think` of the policy under `prompt` over `records`, with the mean probability of the two tags
    together (`tag_mass`: near 1 where every completion opens with one of them)."""
    import torch

    p_think, mass = [], []
    with torch.no_grad():
        for i in range(0, len(records), batch_size):
            p = first_tag_logprobs(policy, records[i : i + batch_size], prompt).exp()  # [B, 2]
            p_think += p[:, 0].tolist()
            mass += p.sum(1).tolist()
    return {**expected_no_think(p_think, [r.difficulty for r in records]),
            "tag_mass": sum(mass) / len(mass) if mass else None}


def forced_mode_summaries(path: str, records: list, judge: Any, max_new_tokens: int, out: Path) -> dict[str, Any]:
    """The model's accuracy when made to think, and when made to answer directly (adaptive prompt).

    The first tag (<think> or <answer>) is appended to every prompt, so the model continues in
    that mode; this measures whether its own think traces help it, item for item.
    """
    import torch

    from audiothinker.eval.run import evaluate_policy, score_completions
    from audiothinker.models.base import PromptBatch
    from audiothinker.rollout import SamplingParams, build_engine
    from audiothinker.data.batching import prompt_batch

    policy = load_eval_model(path)
    engine = build_engine("hf", policy)
    params = SamplingParams(do_sample=False, max_new_tokens=max_new_tokens)
    summaries = {}
    for mode, tag_ids in first_tag_ids(policy.tokenizer).items():
        tag = FIRST_TAGS[mode]
        rows = []
        for start in range(0, len(records), 48):
            chunk = records[start : start + 48]
            b = prompt_batch(policy, chunk, "adaptive", None)
            col = torch.tensor([tag_ids] * len(b))  # [B, t]; prompts are left-padded, so the tag goes on the right
            mask = torch.cat([b.attention_mask, torch.ones_like(col)], 1)
            forced = PromptBatch(torch.cat([b.input_ids, col], 1), mask, b.audio, b.texts)
            with torch.no_grad():
                rollout = engine.generate(forced, 1, params)
            rows += score_completions(chunk, [tag + t for t in rollout.texts], rollout.truncated.tolist(), judge=judge)
        summaries[mode] = scored_summary(rows, records, judge, out / f"forced_{mode}_rows.jsonl")
    # The think prompt, no tag given: `grpo_cot`'s starting point. Its traces can differ from the adaptive
    # prompt's by several points either way (hard items: seed 43 89.7 against 97.8 %, seed 54 99.1 against 94.7 %).
    with torch.no_grad():
        rows = evaluate_policy(policy, policy.model, records, "think", batch_size=48, max_new_tokens=max_new_tokens,
                               judge=judge).rows
    summaries["think_prompt"] = scored_summary(rows, records, judge, out / "think_prompt_rows.jsonl")
    return summaries


COUPLING_ITEMS = 16
"""Held-out items per task of the decision-coupling diagnostic (`decision_coupling`)."""


def cosine_matrix(vectors: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{a: {b: cos(vectors[a], vectors[b])}} for 1-D tensors of one length (0.0 where either is all zeros)."""
    import torch

    names = list(vectors)
    unit = torch.stack([vectors[n].double() for n in names])  # [N, P]; float32 sums over ~1e5 weights are off by ~1e-5
    unit = unit / unit.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)  # a zero row stays zero
    gram = (unit @ unit.T).tolist()  # [N, N]
    return {a: {b: gram[i][j] for j, b in enumerate(names)} for i, a in enumerate(names)}


def decision_coupling(path: str, records: list, per_task: int = COUPLING_ITEMS) -> dict[str, Any]:
    """How much the model's think-or-answer choice is shared between questions, at its current weights.

    For each task, over its first `per_task` records (adaptive prompt): d = log p(<think> | prompt) -
    log p(<answer> | prompt), each tag teacher-forced as the completion's start, so d is the log-odds of the
    first-tag choice; its mean gives the think share sigmoid(d), and the gradient of the mean d over the
    trainable weights is the direction a policy-gradient step on that task's choice moves them. The cosine of
    two tasks' gradients says how far a step that raises one task's log-odds raises the other's: RL pushes
    easy questions toward direct answers and hard ones toward traces, and where those align the larger push
    wins for both. Returns {"items": {task: n used}, "think_share": {task: x}, "cosine": {task: {task: c}}}.
    """
    import torch

    from audiothinker.data.records import DIFFICULTIES

    policy = load_eval_model(path)
    params = [p for p in policy.model.parameters() if p.requires_grad]
    by_task: dict[str, list] = {}
    rank = {d: k for k, d in enumerate(DIFFICULTIES)}
    for r in sorted(records, key=lambda r: rank.get(r.difficulty, len(rank))):  # easy tasks first; stable
        if r.task is not None:
            by_task.setdefault(r.task, []).append(r)
    shares, grads = {}, {}
    for task, rows in by_task.items():
        with torch.enable_grad():  # one pass: each prompt once, both tags against it (G = 2)
            logp = first_tag_logprobs(policy, rows[:per_task], "adaptive")  # [B, 2]
            d = (logp[:, 0] - logp[:, 1]).mean()
            grad = torch.autograd.grad(d, params, allow_unused=True)
        shares[task] = float(torch.sigmoid(d.detach()))
        grads[task] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grad, params)])
    return {"items": {t: min(len(rows), per_task) for t, rows in by_task.items()}, "think_share": shares,
            "cosine": cosine_matrix(grads)}


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def evaluate_in_worker(path: str, records: list, prompt: str, judge_settings: tuple, max_new_tokens: int, out: Path,
                       progress: bool = True) -> dict[str, Any]:
    """`evaluate` with the judge built here from (backend, base_url, model): a stage of `Stages.run_parallel`
    gets its arguments pickled, and a live judge's HTTP client does not pickle."""
    return evaluate(path, records, prompt, build_judge(*judge_settings), max_new_tokens, out, progress)


def build_judge(backend: str, base_url: str | None, model: str | None) -> Any:
    """The judge of the evaluations' inconsistency rate and think quality (RL builds its own from the same settings)."""
    from audiothinker.config import JudgeConfig
    from audiothinker.judge.factory import build_judge as factory

    judge = factory(JudgeConfig(backend=backend, base_url=base_url, **({"model": model} if model else {})))
    judge.check()
    return judge


class Evaluations:
    """Every held-out evaluation of one demo run, each a stage; results are kept on the instance for the report."""

    def __init__(self, stages: Stages, out: Path, records: list, judge: Any, judge_settings: tuple,
                 max_new_tokens: int, key: dict):
        self.stages, self.out, self.records, self.judge = stages, out, records, judge
        self.judge_settings = judge_settings  # (backend, base_url, model) of `judge`, rebuilt in a worker process
        self.max_new_tokens = max_new_tokens
        self.key = {**key, "max_new_tokens": max_new_tokens}  # test data and judge
        self.summaries: dict[str, dict] = {}  # run name -> greedy summary
        self.forced: dict[str, dict] = {}
        self.coupling: dict[str, Any] = {}

    def _eval(self, name: str, path: str, prompt: str, model_key: dict) -> dict:
        d = self.out / name
        return self.stages.run(_eval_name(name, prompt), d, self._key(model_key, prompt), evaluate, path, self.records,
                               prompt, self.judge, self.max_new_tokens, d)

    def _key(self, model_key: dict, prompt: str) -> dict:
        return {**self.key, "model": model_key, "prompt": prompt, "figures": SUMMARY_FIGURES}

    def cold_start(self, path: str, model_key: dict) -> None:
        """The cold start with the adaptive prompt ("prompt only"), and forced into each mode."""
        self.summaries["cold_start"] = self._eval("cold_start", path, "adaptive", model_key)
        forced_dir = self.out / "forced"
        self.forced = self.stages.run("eval: cold start, forced modes", forced_dir,
                                      {**self.key, "model": model_key, "rows": FORCED_ROWS},
                                      forced_mode_summaries, path, self.records, self.judge, self.max_new_tokens,
                                      forced_dir)
        self.coupling = self.stages.run("diagnostic: cold start, decision coupling", self.out / "coupling",
                                        {**self.key, "model": model_key, "items": COUPLING_ITEMS}, decision_coupling,
                                        path, self.records)

    def presets(self, models: dict[str, tuple[str, dict]], jobs: int = 1) -> None:
        """Each preset with its own prompt; models: {preset: (path, model key)}, summaries kept in that order.
        `jobs` at a time, each in a forked process (`Stages.run_parallel`; 1: in turn, here): on two CPUs the
        five took 51 s side by side against 80 s in turn (`benchmarks/demo_evals.py`, seed 53). Workers inherit
        this process's audio features; where it has none yet (the cold start's evaluations were reused), the
        first evaluation runs here and prepares them, so the clips are not prepared once per worker."""
        from audiothinker.models import feature_cache

        order = longest_first(models)
        results = {}
        while order and (jobs <= 1 or not feature_cache.has_entries()):  # in this process, with its judge
            p = order.pop(0)
            results[p] = self._eval(p, models[p][0], PROMPTS[p], models[p][1])
        stage_jobs = [StageJob(_eval_name(p, PROMPTS[p]), self.out / p, self._key(models[p][1], PROMPTS[p]),
                               evaluate_in_worker, (models[p][0], self.records, PROMPTS[p], self.judge_settings,
                                                    self.max_new_tokens, self.out / p),
                               worker_kwargs={"progress": False}) for p in order]
        done = self.stages.run_parallel(stage_jobs, jobs) if stage_jobs else {}
        results.update({p: done[_eval_name(p, PROMPTS[p])] for p in order})
        self.summaries.update({p: results[p] for p in models})

    def paired(self, level: str = "hard") -> list[dict[str, Any]]:
        """The runs of each hard-accuracy target (`targets.PAIRED`), greedy rows paired item by item on `level`:
        [{a, b, level, items, only_a, only_b, p}] (`targets.paired_counts`, `targets.sign_test_p`)."""
        from audiothinker.demo.targets import PAIRED, paired_counts, sign_test_p

        rows = {run: read_rows(self.out / run) for run in dict.fromkeys(r for pair in PAIRED for r in pair)}  # once each
        out = []
        for a, b in PAIRED:
            counts = paired_counts(rows[a], rows[b], level)
            out.append({"a": a, "b": b, "level": level, **counts, "p": sign_test_p(counts["only_a"], counts["only_b"])})
        return out


def _eval_name(name: str, prompt: str) -> str:
    return f"eval: {name} ({prompt} prompt)"


def read_rows(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "rows.jsonl").read_text().splitlines() if line.strip()]
