"""Evaluation as a library: run a policy over a benchmark, write the official prediction file, score, report.

    evaluate(EvalOptions(benchmark="mmau", data="mmau-test-mini.json", model="runs/x/final", out="runs/eval/x"))

is what `audiothinker eval` runs (`eval/cli.py`: its flags are the fields of `EvalOptions`).
Steps of `evaluate`, in order:
  1. load the records; list missing audio files and stop before any model work
     (--skip-missing evaluates the rest and counts the skips)
  2. resume: ids already in <out>/predictions.partial.jsonl are not generated again
  3. `evaluate_policy` in batches, greedy by default; each finished batch is appended to the
     partial file, so an interrupted run loses at most one batch
  4. write the prediction file in the benchmark's own format: its metadata record plus the
     <answer> content under the benchmark's key (`eval/benchmarks/`), and `raw_output`,
     `think_mode`, `format_ok`. Think text never goes under the official key: with no
     <answer>, the think block is dropped and only what is left is written (SPEC section 7)
  5. score: MMAU/MMAR/AIR-Bench with the official rules (`eval.score.score_records`), our
     `jsonl` schema with our matcher (`parsing.is_correct`); report.json, report.md, PNGs

`evaluate_policy` (a loaded policy over in-memory records) is also the trainer's periodic
evaluation and the demo's: one scorer, used by all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from audiothinker.data.records import AudioQA
from audiothinker.eval.benchmarks.base import BENCHMARKS, Benchmark
from audiothinker.eval.report import summarize, write_report
from audiothinker.judge.base import Judge
from audiothinker.judge.requests import ask_judge
from audiothinker.parsing import extract_answer, is_correct, parse_completion
from audiothinker.rollout.base import RolloutEngine, SamplingParams

ItemScorer = Callable[[AudioQA, str], "bool | None"]
"""(record, raw completion) -> correct, or None when the item leaves the denominator."""

PARTIAL = "predictions.partial.jsonl"
RUN_FILE = "eval_run.json"
SKIPPED = "skipped.jsonl"


# --------------------------------------------------------------------------- scoring one item


def match_scorer(record: AudioQA, raw_output: str) -> bool:
    """Our matcher (the RL accuracy reward's): valid shape and the answer names the right option."""
    return is_correct(parse_completion(raw_output), record.choices, record.answer)


def prediction_record(benchmark: str, record: AudioQA, raw_output: str) -> dict[str, Any]:
    """One record of the official prediction file: metadata + answer under the official key + extras."""
    bench = BENCHMARKS[benchmark]
    parsed = parse_completion(raw_output)
    if bench.official:
        base = dict(record.metadata["raw"])
    else:
        base = {
            "id": record.id, "audio": record.audio if isinstance(record.audio, str) else None,
            "question": record.question, "choices": record.choices, "answer": record.answer,
            "task": record.task, "category": record.category, "difficulty": record.difficulty,
        }
    answer = bench.prediction(extract_answer(raw_output), base)
    return {**base, bench.prediction_key: answer, "raw_output": raw_output, "think_mode": parsed.mode,
            "format_ok": parsed.valid}


def official_scorer(benchmark: str) -> ItemScorer:
    """Per-item verdict of the official scorer: `score_records` on the item's prediction record."""
    from audiothinker.eval.score import score_records

    def score(record: AudioQA, raw_output: str) -> bool | None:
        correct, n = score_records(benchmark, [prediction_record(benchmark, record, raw_output)])["total"]
        return None if n == 0 else bool(correct)

    return score


# --------------------------------------------------------------------------- evaluation (library)


class EvalResult(NamedTuple):
    summary: dict[str, Any]
    """`report.summarize(rows)`: accuracy, no_think_rate, format_rate, inconsistency_rate, by_difficulty, by_task, n, ..."""
    rows: list[dict[str, Any]]
    """One dict per item, in record order (fields: see `eval.report`)."""


def score_completions(
    records: Sequence[AudioQA],
    texts: Sequence[str],
    truncated: Sequence[bool] | None = None,
    *,
    score_item: ItemScorer = match_scorer,
    judge: Judge | None = None,
) -> list[dict[str, Any]]:
    """Rows for one completion per record; the judge's R_c on the well-formed think completions."""
    rows = []
    for i, (record, text) in enumerate(zip(records, texts, strict=True)):
        parsed = parse_completion(text)
        rows.append({
            "id": record.id, "task": record.task, "difficulty": record.difficulty, "category": record.category,
            "answer": record.answer, "raw_output": text, "prediction": extract_answer(text),
            "think_mode": parsed.mode, "format_ok": parsed.valid, "correct": score_item(record, text),
            "truncated": bool(truncated[i]) if truncated is not None else False, "consistency": None,
        })
    if judge is not None:
        verdicts = ask_judge(judge, records, [parse_completion(t) for t in texts], consistency=True, quality=False)
        for row, verdict in zip(rows, verdicts):
            if verdict is not None:
                row["consistency"] = verdict.consistency
    return rows


def _device(model: Any):
    try:
        return next(model.parameters()).device
    except StopIteration:
        return "cpu"


def evaluate_policy(
    policy: Any,
    model: Any,
    records: Sequence[AudioQA],
    prompt_kind: str,
    *,
    batch_size: int,
    max_new_tokens: int,
    judge: Judge | None = None,
    sampling: SamplingParams | None = None,
    score_item: ItemScorer = match_scorer,
    max_audio_seconds: float | None = None,
    on_batch: Callable[[list[dict[str, Any]]], None] | None = None,
    progress: bool = False,
    on_error: str = "raise",
    on_skip: Callable[[list[Any]], None] | None = None,
    engine: RolloutEngine | None = None,
) -> EvalResult:
    """Generate one completion per record with `model` (greedy unless `sampling` says otherwise) and score it.

    policy: the family adapter (prompts, audio features, generate); model: the module to
    generate with (the trainer passes its unwrapped training model). score_item defaults to
    our matcher; the `eval` command passes `official_scorer(benchmark)`. judge: asked for R_c
    of each well-formed think completion (the inconsistency rate); None skips it.
    on_batch(rows) runs after each batch (the `eval` command appends them to its partial file).
    on_error="skip": a record whose clip fails to load or whose prompt is too long gets no row;
    on_skip(skips) hears of it (`data.batching.Skip`s); "raise" stops with the error naming it.
    engine: a built rollout engine (the `eval --engine` choice); None = transformers generate.
    """
    from audiothinker.data.batching import prompt_batch
    from audiothinker.rollout import build_engine

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    params = dataclasses.replace(sampling or SamplingParams(do_sample=False), max_new_tokens=max_new_tokens)
    engine = engine or build_engine("hf", policy)
    engine.sync_weights(model)
    device = _device(model)
    rows: list[dict[str, Any]] = []
    with _progress(progress, len(records)) as advance:
        for start in range(0, len(records), batch_size):
            chunk = list(records[start : start + batch_size])
            if on_error == "skip":
                from audiothinker.data.batching import prompt_batch_skipping

                batch, used, skips = prompt_batch_skipping(policy, chunk, prompt_kind, max_audio_seconds, None, None)
                if on_skip is not None and skips:
                    on_skip(skips)
                advance(len(chunk) - len(used))
                chunk = used
                if not chunk:
                    continue
                batch = batch.to(device)
            else:
                batch = prompt_batch(policy, chunk, prompt_kind, max_audio_seconds).to(device)
            rollout = engine.generate(batch, 1, params)
            new = score_completions(chunk, rollout.texts, rollout.truncated.tolist(), score_item=score_item, judge=judge)
            rows.extend(new)
            if on_batch is not None:
                on_batch(new)
            advance(len(chunk))
    return EvalResult(summarize(rows), rows)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over items (a no-op when disabled); yields advance(n)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task("eval", total=total)
        yield lambda n: bar.advance(task, n)


# --------------------------------------------------------------------------- resume


def read_partial(path: Path) -> list[dict[str, Any]]:
    """Rows of a partial file; a line cut short by an interruption is dropped (its batch is redone)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row and "raw_output" in row:
            rows.append(row)
    return rows


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _identity(args: EvalOptions) -> dict[str, Any]:
    """What must match for a re-run to reuse finished items (--limit and --batch-size may change)."""
    model = args.model if args.model.startswith("tiny:") else os.path.abspath(args.model)
    return {
        "benchmark": args.benchmark, "data": os.path.abspath(args.data),
        "audio_root": os.path.abspath(args.audio_root) if args.audio_root else None, "model": model,
        "prompt": args.prompt, "max_new_tokens": args.max_new_tokens, "do_sample": args.do_sample,
        "temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k, "seed": args.seed,
        "repetition_penalty": args.repetition_penalty,
        "max_audio_seconds": args.max_audio_seconds, "judge_backend": _judge_backend(args),
    }


def _resume(out: Path, identity: dict[str, Any], restart: bool) -> list[dict[str, Any]]:
    """Finished rows to reuse; raises ValueError when --out holds a run with other settings."""
    run_file, partial = out / RUN_FILE, out / PARTIAL
    if restart:
        partial.unlink(missing_ok=True)
    if partial.is_file() and run_file.is_file():
        old = json.loads(run_file.read_text(encoding="utf-8"))
        diff = sorted(k for k in identity.keys() | old.keys() if identity.get(k) != old.get(k))
        if diff:
            listed = ", ".join(f"{k}: {old.get(k)!r} -> {identity.get(k)!r}" for k in diff)
            raise ValueError(f"{out} holds an evaluation with other settings ({listed}); "
                             "use another --out, or --restart to discard its predictions")
    rows = read_partial(partial)
    # Rewrite without a half-written last line, so appends start on a clean line.
    partial.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    run_file.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")
    return rows


# --------------------------------------------------------------------------- evaluate: files in, prediction file and report out


def _judge_backend(args: EvalOptions) -> str:
    """Explicit choice, else the rule judge for our schema (synthetic data; dropped in `_generate` when the records
    carry no facts) and none for real benchmarks."""
    if args.judge_backend:
        return args.judge_backend
    return "rule" if args.benchmark == "jsonl" else "none"


def build_eval_judge(args: EvalOptions) -> Any:
    backend = _judge_backend(args)
    if backend == "none":
        return None
    from audiothinker.config import JudgeConfig
    from audiothinker.judge.factory import build_judge

    cfg = JudgeConfig(backend=backend, base_url=args.judge_base_url, api_key_env=args.judge_api_key_env,
                      **({"model": args.judge_model} if args.judge_model else {}))
    judge = build_judge(cfg)
    judge.check()  # fail now, naming the server, rather than after the generation
    return judge


def _select(args: EvalOptions, records: list[AudioQA]) -> tuple[list[AudioQA], list[AudioQA]]:
    """(records to evaluate, records skipped for missing audio); raises MissingAudioError unless --skip-missing."""
    from audiothinker.data.loaders import missing_audio

    records = records[: args.limit] if args.limit else records
    missing = missing_audio(records)
    if missing and not args.skip_missing:
        raise MissingAudioError(missing, len(records), args.audio_root)
    gone = {r.id for r in missing}
    return [r for r in records if r.id not in gone], missing


class MissingAudioError(RuntimeError):
    def __init__(self, missing: list[AudioQA], total: int, audio_root: str | None, shown: int = 5):
        paths = "\n  ".join(str(r.audio) for r in missing[:shown])
        more = f"\n  ... and {len(missing) - shown} more" if len(missing) > shown else ""
        super().__init__(
            f"{len(missing)} of {total} audio files are missing (audio root: {audio_root or 'the data file directory'}):"
            f"\n  {paths}{more}\nDownload the benchmark audio (see its repository) and point --audio-root at it, "
            "or pass --skip-missing to evaluate only the items whose audio is present."
        )


class OtherRunError(ValueError):
    """--out holds the predictions of an evaluation with other settings."""


@dataclass
class EvalOptions:
    """What `evaluate` runs: one field per flag of `audiothinker eval` (meanings in its --help, `eval/cli.py`)."""

    benchmark: str
    data: str
    model: str
    out: str
    audio_root: str | None = None
    prompt: str = "adaptive"
    limit: int | None = None
    batch_size: int = 8
    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    seed: int = 42
    max_audio_seconds: float | None = None
    skip_missing: bool = False
    on_error: str = "raise"
    restart: bool = False
    judge_backend: str | None = None
    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str = "AUDIOTHINKER_JUDGE_API_KEY"
    engine: str = "hf"
    vllm_gpu_memory_utilization: float = 0.9
    vllm_max_model_length: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    models_cache: str = "runs/.models"


@dataclass
class EvalRun:
    """What `evaluate` wrote and found."""

    result: EvalResult
    """Summary and one row per evaluated record (resumed rows included)."""
    official: dict[str, Any] | None
    """The official scorer's counts (`eval.score.score_records`); None for our schema."""
    predictions: Path
    """The prediction file in the benchmark's format."""
    report: dict[str, Path]
    """`report.write_report`'s files (json, md, PNGs)."""
    title: str
    skipped: list[dict[str, Any]] = field(default_factory=list)
    """{"id", "reason"} of the records left out with on_error="skip" (also in <out>/skipped.jsonl)."""


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def evaluate(args: EvalOptions, *, log: Callable[[str], None] = _stderr, progress: bool = True) -> EvalRun:
    """Evaluate `args.model` on `args.benchmark` into `args.out` (resuming what it holds); see the module doc.

    log(line) hears what is skipped or resumed. Raises MissingAudioError (audio missing, no
    --skip-missing), OtherRunError (--out holds another run), DataError (nothing to evaluate).
    """
    from audiothinker.data.loaders import load_records

    bench = BENCHMARKS[args.benchmark]
    loaded = load_records(args.data, bench.format, audio_root=args.audio_root, on_error=args.on_error)
    if loaded.skipped:
        log(loaded.summary())
    if not loaded.records:  # an accuracy of 0.0 over nothing is not a result
        from audiothinker.data.records import DataError

        raise DataError(f"{args.data}: no records to evaluate" + (f" ({len(loaded.skipped)} skipped)" if loaded.skipped else ""))
    records, missing = _select(args, loaded.records)
    if missing:
        log(f"skipping {len(missing)} items whose audio is missing (--skip-missing)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        done = {r["id"]: r for r in _resume(out, _identity(args), args.restart)}
    except ValueError as e:  # other settings, or an unreadable eval_run.json
        raise OtherRunError(str(e)) from e
    records = _scan(args, records, out, log, progress)
    todo = [r for r in records if r.id not in done]
    if len(todo) < len(records):
        log(f"resuming from {out / PARTIAL}: {len(records) - len(todo)} of {len(records)} items done")

    generated = 0
    if todo:
        new = _generate(args, bench, todo, out / PARTIAL, progress)
        done.update((r["id"], r) for r in new)
        generated = len(new)

    skipped = [json.loads(x) for x in (out / SKIPPED).read_text().splitlines()] if (out / SKIPPED).exists() else []
    records = [r for r in records if r.id in done]  # the rest were skipped (--on-error skip), listed in skipped.jsonl
    if not records:
        from audiothinker.data.records import DataError

        raise DataError(f"{args.data}: no record left to evaluate ({len(missing)} with missing audio, "
                        f"{len({row['id'] for row in skipped})} skipped, listed in {out / SKIPPED})")
    rows = [done[r.id] for r in records]
    predictions = [prediction_record(args.benchmark, r, row["raw_output"]) for r, row in zip(records, rows)]
    filename = "predictions.json" if bench.json_list else "predictions.jsonl"
    pred_path = write_predictions(out / filename, predictions, bench.json_list)
    official = None
    if bench.official:
        from audiothinker.eval.score import score_records

        official = score_records(args.benchmark, predictions)
    summary = summarize(rows)
    run_info = {**_identity(args), "limit": args.limit, "batch_size": args.batch_size, "predictions": str(pred_path),
                "generated_this_run": generated, "skipped_missing_audio": len(missing),
                "skipped_bad_audio_or_prompt": len({row["id"] for row in skipped}),
                "scorer": "official" if bench.official else "audiothinker match (parsing.is_correct)"}
    model_name = args.model if args.model.startswith("tiny:") else "/".join(Path(args.model).parts[-2:])
    title = f"{args.benchmark}: {model_name} ({args.prompt})"
    paths = write_report(out, summary, rows, title, official=official, run=run_info)
    return EvalRun(EvalResult(summary, rows), official, pred_path, paths, title, skipped)


def _scan(args: EvalOptions, records: list[AudioQA], out: Path, log: Callable[[str], None], progress: bool) -> list[AudioQA]:
    """Decode every clip once before the model loads (cached in <out>/audio_scan.json): with
    --on-error raise a bad clip is an error naming the records; with skip it is left out and listed."""
    from audiothinker.data.records import DataError
    from audiothinker.data.scan import scan_audio

    (out / SKIPPED).unlink(missing_ok=True)  # rewritten by this run
    bad = scan_audio(records, args.max_audio_seconds, out / "audio_scan.json", progress=progress)
    if not bad:
        return records
    named = [r for r in records if id(r) in bad]
    if args.on_error == "raise":
        listed = "; ".join(bad[id(r)] for r in named[:5])
        raise DataError(f"{args.data}: {len(named)} records have unusable audio ({listed}"
                        f"{'; ...' if len(named) > 5 else ''}); fix them or pass --on-error skip")
    append_rows(out / SKIPPED, [{"id": r.id, "reason": bad[id(r)]} for r in named])
    log(f"skipping {len(named)} records whose audio is unusable (--on-error skip)")
    return [r for r in records if id(r) not in bad]


def _generate(args: EvalOptions, bench: Benchmark, todo: list[AudioQA], partial: Path, progress: bool) -> list[dict[str, Any]]:
    """Load the judge and the policy, then evaluate `todo`, appending each batch to `partial`."""
    import torch

    from audiothinker.config import ModelConfig
    from audiothinker.judge.rule import record_facts, require_facts
    from audiothinker.models.loading import load_policy

    torch.manual_seed(args.seed)
    judge = build_eval_judge(args)
    if _judge_backend(args) == "rule" and any(record_facts(r) is None for r in todo):
        if args.judge_backend == "rule":  # asked for explicitly on data it cannot judge: stop
            require_facts(todo, args.data)
        judge = None  # the default for jsonl that is not the synthetic set: no judge
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    policy = load_policy(ModelConfig(name_or_path=args.model, dtype=args.dtype), cache_dir=args.models_cache)
    if args.engine == "hf":
        policy.model.to(device)
    # else the engine holds its own copy on the device; this one stays in RAM as the weights' source
    policy.model.eval()
    sampling = SamplingParams(
        temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, do_sample=args.do_sample, seed=args.seed,
        repetition_penalty=args.repetition_penalty,
    )
    engine = _eval_engine(args, policy)
    try:
        result = evaluate_policy(
            policy, policy.model, todo, args.prompt, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
            judge=judge, sampling=sampling, max_audio_seconds=args.max_audio_seconds,
            score_item=official_scorer(args.benchmark) if bench.official else match_scorer,
            on_batch=lambda rows: append_rows(partial, rows), progress=progress, engine=engine, on_error=args.on_error,
            on_skip=lambda skips: append_rows(
                partial.parent / SKIPPED, [{"id": s.record.id, "reason": s.reason} for s in skips]
            ),
        )
    finally:
        engine.close()
        if judge is not None:
            judge.close()
    return result.rows


def _eval_engine(args: EvalOptions, policy: Any) -> RolloutEngine:
    """The `--engine` rollout engine over the loaded policy (vLLM: weights synced from it, no second read)."""
    from audiothinker.rollout import EngineOptions, build_engine

    seconds = args.max_audio_seconds or policy.max_audio_seconds
    audio_tokens = int(25 * seconds) + 2 if seconds != float("inf") else 0  # 25 audio tokens/s; text policies: none
    options = EngineOptions(
        name_or_path=policy.name_or_path, dtype=args.dtype, seed=args.seed,
        max_model_len=args.vllm_max_model_length or 1024 + audio_tokens + args.max_new_tokens,
        max_num_seqs=args.batch_size, gpu_memory_utilization=args.vllm_gpu_memory_utilization, enable_sleep_mode=False,
    )
    return build_engine(args.engine, policy, options)


def write_predictions(path: Path, records: list[dict[str, Any]], json_list: bool) -> Path:
    """The official prediction file, written to a temp name and renamed (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    if json_list:
        tmp.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    os.replace(tmp, path)
    return path
