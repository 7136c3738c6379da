"""`audiothinker eval`: run a policy over a benchmark, write the official prediction file, score, report.

    audiothinker eval --benchmark mmau --data mmau-test-mini.json --audio-root DIR \
        --model runs/x/final --prompt adaptive --out runs/eval/x [--limit N] [--batch-size 8]

Steps, in order:
  1. load the records; list missing audio files and stop before any model work
     (--skip-missing evaluates the rest and counts the skips)
  2. resume: ids already in <out>/predictions.partial.jsonl are not generated again
  3. `evaluate_policy` in batches, greedy by default; each finished batch is appended to the
     partial file, so an interrupted run loses at most one batch
  4. write the prediction file in the benchmark's own format: its metadata record plus the
     <answer> content under the official key (`BENCHMARK_IO`), and `raw_output`,
     `think_mode`, `format_ok`. Think text never goes under the official key: with no
     <answer>, the think block is dropped and only what is left is written (SPEC section 7)
  5. score: MMAU/MMAR/AIR-Bench with the official rules (`eval.score.score_records`), our
     `jsonl` schema with our matcher (`parsing.is_correct`); report.json, report.md, PNGs

`evaluate_policy` is also the trainer's periodic evaluation: one scorer, used by both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from audiothinker.data.records import AudioQA
from audiothinker.eval.report import summarize, write_report
from audiothinker.judge.base import Judge, JudgeRequest
from audiothinker.parsing import extract_answer, is_correct, match_option, parse_completion
from audiothinker.rollout.base import RolloutEngine, SamplingParams

ItemScorer = Callable[[AudioQA, str], "bool | None"]
"""(record, raw completion) -> correct, or None when the item leaves the denominator."""

PARTIAL = "predictions.partial.jsonl"
RUN_FILE = "eval_run.json"
SKIPPED = "skipped.jsonl"


@dataclass(frozen=True)
class BenchmarkIO:
    """How one benchmark is read, written and scored."""

    loader: str
    """`data.loaders` format of the metadata file."""
    prediction_key: str
    """Field of the official prediction file holding the model's answer."""
    json_list: bool
    """Prediction file is a JSON list (else JSONL)."""
    official: bool
    """Scored by `eval.score` (the official rules); else by our matcher."""

    @property
    def filename(self) -> str:
        return "predictions.json" if self.json_list else "predictions.jsonl"


BENCHMARK_IO: dict[str, BenchmarkIO] = {
    "mmau": BenchmarkIO("mmau", "model_output", json_list=True, official=True),
    "mmar": BenchmarkIO("mmar", "answer_prediction", json_list=True, official=True),
    "airbench": BenchmarkIO("airbench", "response", json_list=False, official=True),
    "jsonl": BenchmarkIO("jsonl", "prediction", json_list=False, official=False),
}


# --------------------------------------------------------------------------- scoring one item


def match_scorer(record: AudioQA, raw_output: str) -> bool:
    """Our matcher (the RL accuracy reward's): valid shape and the answer names the right option."""
    return is_correct(parse_completion(raw_output), record.choices, record.answer)


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


def prediction_record(benchmark: str, record: AudioQA, raw_output: str) -> dict[str, Any]:
    """One record of the official prediction file: metadata + answer under the official key + extras."""
    io = BENCHMARK_IO[benchmark]
    parsed = parse_completion(raw_output)
    answer = extract_answer(raw_output)
    if io.official:
        base = dict(record.metadata["raw"])
        if benchmark == "airbench":
            answer = airbench_response(answer, base)
    else:
        base = {
            "id": record.id, "audio": record.audio if isinstance(record.audio, str) else None,
            "question": record.question, "choices": record.choices, "answer": record.answer,
            "task": record.task, "category": record.category, "difficulty": record.difficulty,
        }
    return {**base, io.prediction_key: answer, "raw_output": raw_output, "think_mode": parsed.mode,
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
        parsed_all = [parse_completion(t) for t in texts]
        idx = [i for i, p in enumerate(parsed_all) if p.valid and p.thinks and p.think]
        requests = [
            JudgeRequest(records[i].question, tuple(records[i].choices), parsed_all[i].think or "", parsed_all[i].answer or "")
            for i in idx
        ]
        verdicts = judge.judge(requests, consistency=True, quality=False) if requests else []
        for i, verdict in zip(idx, verdicts):
            rows[i]["consistency"] = verdict.consistency
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


def _identity(args: argparse.Namespace) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- the command


def _judge_backend(args: argparse.Namespace) -> str:
    """Explicit choice, else the rule judge for our schema (synthetic data; dropped in `_generate` when the records
    carry no facts) and none for real benchmarks."""
    if args.judge_backend:
        return args.judge_backend
    return "rule" if args.benchmark == "jsonl" else "none"


def build_eval_judge(args: argparse.Namespace) -> Any:
    backend = _judge_backend(args)
    if backend == "none":
        return None
    if backend == "rule":
        from audiothinker.judge.rule import RuleJudge

        return RuleJudge()
    from audiothinker.config import JudgeConfig
    from audiothinker.judge.factory import build_judge

    cfg = JudgeConfig(backend=backend, base_url=args.judge_base_url, api_key_env=args.judge_api_key_env,
                      **({"model": args.judge_model} if args.judge_model else {}))
    judge = build_judge(cfg)
    if hasattr(judge, "check"):
        judge.check()  # fail now, naming the server, rather than after the generation
    return judge


def _select(args: argparse.Namespace, records: list[AudioQA]) -> tuple[list[AudioQA], list[AudioQA]]:
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


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0, or 1 when audio is missing or --out holds another run's predictions."""
    from rich.console import Console

    from audiothinker.data.loaders import load_records

    console = Console(stderr=True)
    io = BENCHMARK_IO[args.benchmark]
    loaded = load_records(args.data, io.loader, audio_root=args.audio_root, on_error=args.on_error)
    if loaded.skipped:
        console.print(loaded.summary(), markup=False)
    if not loaded.records:  # an accuracy of 0.0 over nothing is not a result
        from audiothinker.data.records import DataError

        raise DataError(f"{args.data}: no records to evaluate" + (f" ({len(loaded.skipped)} skipped)" if loaded.skipped else ""))
    try:
        records, missing = _select(args, loaded.records)
    except MissingAudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if missing:
        console.print(f"skipping {len(missing)} items whose audio is missing (--skip-missing)", markup=False)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        done = {r["id"]: r for r in _resume(out, _identity(args), args.restart)}
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    records = _scan(args, records, out, console)
    todo = [r for r in records if r.id not in done]
    if len(todo) < len(records):
        console.print(f"resuming from {out / PARTIAL}: {len(records) - len(todo)} of {len(records)} items done", markup=False)

    generated = 0
    if todo:
        new = _generate(args, io, todo, out / PARTIAL)
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
    pred_path = write_predictions(out / io.filename, predictions, io.json_list)
    official = None
    if io.official:
        from audiothinker.eval.score import score_records

        official = score_records(args.benchmark, predictions)
    summary = summarize(rows)
    run_info = {**_identity(args), "limit": args.limit, "batch_size": args.batch_size, "predictions": str(pred_path),
                "generated_this_run": generated, "skipped_missing_audio": len(missing),
                "skipped_bad_audio_or_prompt": len({row["id"] for row in skipped}),
                "scorer": "official" if io.official else "audiothinker match (parsing.is_correct)"}
    model_name = args.model if args.model.startswith("tiny:") else "/".join(Path(args.model).parts[-2:])
    title = f"{args.benchmark}: {model_name} ({args.prompt})"
    paths = write_report(out, summary, rows, title, official=official, run=run_info)
    _print_summary(Console(), summary, official, title)
    print(f"predictions: {pred_path}\nreport: {paths['md']}")
    if skipped:
        listed = "; ".join(f"{row['id']!r}: {row['reason']}" for row in skipped[:5])
        print(f"warning: {len({row['id'] for row in skipped})} records skipped, not in the predictions ({listed}"
              f"{'; ...' if len(skipped) > 5 else ''}); all listed in {out / SKIPPED}", file=sys.stderr)
    return 0


def _scan(args: argparse.Namespace, records: list[AudioQA], out: Path, console: Any) -> list[AudioQA]:
    """Decode every clip once before the model loads (cached in <out>/audio_scan.json): with
    --on-error raise a bad clip is an error naming the records; with skip it is left out and listed."""
    from audiothinker.data.records import DataError
    from audiothinker.data.scan import scan_audio

    (out / SKIPPED).unlink(missing_ok=True)  # rewritten by this run
    bad = scan_audio(records, args.max_audio_seconds, out / "audio_scan.json", progress=True)
    if not bad:
        return records
    named = [r for r in records if id(r) in bad]
    if args.on_error == "raise":
        listed = "; ".join(bad[id(r)] for r in named[:5])
        raise DataError(f"{args.data}: {len(named)} records have unusable audio ({listed}"
                        f"{'; ...' if len(named) > 5 else ''}); fix them or pass --on-error skip")
    append_rows(out / SKIPPED, [{"id": r.id, "reason": bad[id(r)]} for r in named])
    console.print(f"skipping {len(named)} records whose audio is unusable (--on-error skip)", markup=False)
    return [r for r in records if id(r) not in bad]


def _generate(args: argparse.Namespace, io: BenchmarkIO, todo: list[AudioQA], partial: Path) -> list[dict[str, Any]]:
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
            score_item=official_scorer(args.benchmark) if io.official else match_scorer,
            on_batch=lambda rows: append_rows(partial, rows), progress=True, engine=engine, on_error=args.on_error,
            on_skip=lambda skips: append_rows(
                partial.parent / SKIPPED, [{"id": s.record.id, "reason": s.reason} for s in skips]
            ),
        )
    finally:
        engine.close()
        if judge is not None and hasattr(judge, "close"):
            judge.close()
    return result.rows


def _eval_engine(args: argparse.Namespace, policy: Any) -> RolloutEngine:
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


def _print_summary(console: Any, summary: dict[str, Any], official: dict[str, Any] | None, title: str) -> None:
    from rich.table import Table
    from rich.text import Text

    if official is not None:
        from audiothinker.eval.score import result_table

        console.print(result_table(official, title=f"{title}: official scoring"))
    table = Table(title=title)
    for col in ("group", "name", "n", "accuracy %", "no-think %", "untagged %", "format %", "inconsistency %"):
        table.add_column(col, justify="left" if col in ("group", "name") else "right")

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.2f}"

    for group in ("by_difficulty", "by_task"):
        for name, g in summary[group].items():
            table.add_row(group[3:], Text(name), str(g["n"]), pct(g["accuracy"]), pct(g["no_think_rate"]),
                          pct(g["untagged_rate"]), pct(g["format_rate"]), pct(g["inconsistency_rate"]))
        table.add_section()
    s = summary
    table.add_row("all", "", str(s["n"]), pct(s["accuracy"]), pct(s["no_think_rate"]), pct(s["untagged_rate"]),
                  pct(s["format_rate"]), pct(s["inconsistency_rate"]))
    console.print(table)


def _ranged(cast: Callable[[str], Any], ok: Callable[[Any], bool], meaning: str) -> Callable[[str], Any]:
    """An argparse type: `cast` the text, then reject values outside `ok` with "must be <meaning>"."""
    def parse(text: str) -> Any:
        value = cast(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {text}")
        return value
    return parse


_positive_number = _ranged(float, lambda v: v > 0, "> 0")
_unit_interval = _ranged(float, lambda v: 0 < v <= 1, "in (0, 1]")
_non_negative = _ranged(int, lambda v: v >= 0, ">= 0")
_positive_float = _ranged(float, lambda v: 0 < v < float("inf"), "a positive number of seconds")
_positive = _ranged(int, lambda v: v >= 1, "a positive integer")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `eval` on the main CLI's subparsers."""
    p = subparsers.add_parser(
        "eval", help="evaluate a policy on a benchmark: predictions, official score, report",
        description="Generate answers with a policy, write the benchmark's official prediction file, "
        "score it and write report.json/report.md/PNGs. Re-running with the same --out resumes.",
    )
    p.add_argument("--benchmark", required=True, choices=sorted(BENCHMARK_IO),
                   help="data and prediction format; mmau/mmar/airbench are scored by the official rules, "
                   "jsonl (our schema, e.g. the synthetic set) by our matcher")
    p.add_argument("--data", required=True, help="metadata file (JSON list or JSONL)")
    p.add_argument("--audio-root", default=None, help="directory relative audio paths resolve against (default: the data file's)")
    p.add_argument("--model", required=True, help="checkpoint path, hub id, or tiny:qwen2_audio")
    p.add_argument("--prompt", default="adaptive", choices=("adaptive", "think", "no_think"), help="prompt kind (SPEC section 2)")
    p.add_argument("--out", required=True, help="output directory (predictions, report; resumed when re-run)")
    p.add_argument("--limit", type=_positive, default=None, help="evaluate only the first N records")
    p.add_argument("--batch-size", type=_positive, default=8, help="prompts per generate call")
    p.add_argument("--max-new-tokens", type=_positive, default=256, help="completion limit (paper: 256)")
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=_positive_number, default=1.0, help="sampling temperature (with --do-sample)")
    p.add_argument("--top-p", type=_unit_interval, default=1.0, help="nucleus sampling (with --do-sample)")
    p.add_argument("--top-k", type=_non_negative, default=0, help="top-k sampling, 0 = off (with --do-sample)")
    p.add_argument("--repetition-penalty", type=_positive_number, default=1.0, help="repetition penalty, 1.0 = off (TRL's name)")
    p.add_argument("--seed", type=int, default=42, help="torch seed (matters only with --do-sample)")
    p.add_argument("--max-audio-seconds", type=_positive_float, default=None, help="cut clips longer than this (default: the model's window)")
    p.add_argument("--skip-missing", action="store_true", help="evaluate the items whose audio exists; count the others")
    p.add_argument("--on-error", default="raise", choices=("raise", "skip"),
                   help="bad records (metadata, unusable clips, over-long prompts): stop, or skip and list them (skipped.jsonl)")
    p.add_argument("--restart", action="store_true", help="discard predictions already in --out instead of resuming")
    p.add_argument("--judge-backend", default=None, choices=("none", "rule", "openai", "local"),
                   help="judge for the think/answer inconsistency rate (default: rule for jsonl, none for benchmarks)")
    p.add_argument("--judge-base-url", default=None, help="openai judge: server URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--judge-model", default=None, help="judge model name (openai) or path (local); default Qwen/Qwen3-8B-Base")
    p.add_argument("--judge-api-key-env", default="AUDIOTHINKER_JUDGE_API_KEY", help="env var holding the judge API key")
    from audiothinker.rollout import engine_names

    p.add_argument("--engine", default="hf", choices=engine_names(), help="rollout engine: hf (transformers generate) | vllm")
    p.add_argument("--vllm-gpu-memory-utilization", type=float, default=0.9, help="vllm engine: share of GPU memory")
    p.add_argument("--vllm-max-model-length", type=_positive, default=None,
                   help="vllm engine: prompt + completion tokens (default: 1024 + 25 audio tokens/s + --max-new-tokens)")
    p.add_argument("--device", default="auto", help="auto (cuda if available) | cpu | cuda | cuda:N")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"), help="parameter dtype")
    p.add_argument("--models-cache", default="runs/.models", help="where tiny:* models are built")
    p.set_defaults(func=run)
    return p
