"""The demo's sizes (`DemoPlan`), its presets and their prompts, and the stage runner that reuses finished stages."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiothinker.rewards.core import PRESETS as REWARD_PRESETS

RECIPES = Path(__file__).resolve().parents[3] / "recipes" / "demo"
"""The demo's configs (a source checkout's recipes/demo); `--recipes` points elsewhere."""
PRESETS = ("grpo", "grpo_cot", "atar", "atar_cr", "atar_cr_tr")
"""The paper's Table 1 rows, each trained from the same cold start."""
PROMPTS = {p: REWARD_PRESETS[p].prompt for p in PRESETS}
"""Each preset's training prompt (SPEC section 3: no_think, think, adaptive x3); its evaluation uses it too."""
TRACE_SHARES = (0.15, 0.15)
"""Shares of flawed (misheard tones, right conclusion) and inconsistent (true facts, then a conclusion naming
another option than the answer) cold-start traces: R_t and R_c have something to fix, as in real models'
traces."""


THINK_FRACTIONS: dict[str, tuple[float, float]] = {"easy": (0.25, 0.75), "medium": (0.25, 0.75), "hard": (0.5, 0.5)}
"""The full plan's cold-start think chances per difficulty (`DemoPlan.think_fractions`). Easy and medium: one
task at 0.25 and the other at 0.75, so the prompt-only model's choice depends on the question, as a real
model's does (one chance for every item was measured to leave RL no question to build on: the choice fell to
"no think" on every task alike). Every difficulty's mean, one half, is where RL's batch think rate lambda
starts, and there ATAR's two gammas are equal (with 0.4 / 0.9, lambda 0.65-0.75 at the start, the hard task at
0.4 followed the easy and medium ones to direct answers at five of eight seeds). Hard: both tasks at one half.
With 0.25 / 0.75 there too, the hard task at 0.25 was where the demo missed most: RL has to carry its choice from
0.25 to thinking while the easy and medium questions, whose first-tag gradients lie close to it (cosine
0.6-0.9), are pushed the other way, and the cold start trains its direct answers on 59 % of its presentations
(the direct path learned the parity at some seeds, 66-73 %) and its traces on 41 %. At one half, 43 % and 57 %
(docs/demo.md, section "Both hard tasks at one half")."""


def longest_first(presets) -> list[str]:
    """Presets in the order their side-by-side stages start: `grpo` (short direct answers, the quickest RL
    run and evaluation) last, so a worker is not left with a long one at the end."""
    return sorted(presets, key=lambda p: p == "grpo")


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of one demo run; everything else is in recipes/demo/*.yaml."""

    train_items: int
    """Synthetic training items (cold start and RL draw from the same set)."""
    test_items: int
    """Held-out items (test split, another seed) for every evaluation. The hard-accuracy targets compare
    policies a few points apart: with 240 items (80 hard, one item 1.25 points), atar_cr_tr - grpo_cot on hard
    items read 3.7 points (RMS; up to 6.3) off the same models' value on 1600 fresh hard items, over ten runs
    (-1.3 against +3.4 at seed 49); with the full plan's 960 (320 hard), 2.7 points over six."""
    sft_steps: int
    """Cold-start optimizer steps."""
    rl_steps: int
    """GRPO steps per preset (T of the ATAR schedule)."""
    sft_fix_steps: int = 0
    """Cold-start steps after `sft_steps` with the flawed traces replaced by the correct ones (the inconsistent
    ones stay): flawed traces teach misheard tones (measured on an earlier generator: per-tone pitch in hard
    traces 74 % -> 94 % after 400 such steps). The full plan's 1000 are for the later tones of hard traces: at
    seed 44, 800 such steps left its loudness traces right on 70 % of parity_loud items; 1200 took seed 42's
    full demo to 15.2 min, over its 15-minute budget."""
    rl_eval_steps: int = 0
    """Evaluate on the held-out split every N RL steps (the held-out curve); 0 = only the final evaluation."""
    rl_eval_items: int = 48
    """Held-out items of those periodic evaluations."""
    hidden: int = 64
    """Width of the tiny model (language model and audio encoder; heads are 32 wide)."""
    layers: int = 2
    """Language-model layers."""
    audio_layers: int = 0
    """Audio-encoder transformer layers on top of its conv front end (frozen at their random init and cached,
    see recipes/demo/sft.yaml); 0 keeps the front end's frame-local features as they are."""
    rl_batch: int = 16
    """Prompts per RL step (x rollout.num_generations completions)."""
    rl_generations: int = 8
    """Completions per prompt (G)."""
    max_new_tokens: int | None = None
    """Completion limit of RL and evaluation; None: recipes/demo/rl.yaml's (room for the longest trace)."""
    think_fractions: Mapping[str, tuple[float, float]] = dataclasses.field(
        default_factory=lambda: dict(THINK_FRACTIONS))
    """Cold start: chances of a think target under the adaptive prompt, per difficulty. Within a difficulty one
    task, drawn by the seed, gets the first and the other the second (`task_think_fractions`). Every difficulty
    has the mean one half, so the prompt-only model's no-think rate is flat across difficulties; see
    `THINK_FRACTIONS` for why the hard tasks both get one half."""
    prompt_shares: tuple[float, float, float] = (0.65, 0.25, 0.10)
    """Cold start: shares of the adaptive, think and no-think prompts among its micro-batches (`SFTOptions`).
    The forced prompts' targets count toward each task's shape too: with these shares a task at 0.25 gets a
    direct target on 59 % of its draws, one at 0.5 on 43 %, one at 0.75 on 26 %."""
    sft_loss_tokens: float | None = None
    """Cold start: `SFTOptions.loss_tokens` (None: the mean over each micro-batch's target tokens)."""


PLANS: dict[str, DemoPlan] = {
    "full": DemoPlan(train_items=1600, test_items=960, sft_steps=1200, rl_steps=80, sft_fix_steps=1000, rl_batch=12),
    "quick": DemoPlan(train_items=160, test_items=36, sft_steps=40, rl_steps=3, rl_batch=8, rl_generations=4),
    "smoke": DemoPlan(train_items=24, test_items=12, sft_steps=2, rl_steps=1, hidden=32, layers=1, rl_batch=4,
                      rl_generations=2, max_new_tokens=24),
}


def task_think_fractions(seed: int, fractions: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """{task: think chance}: within each difficulty the tasks in a seeded order get that difficulty's fractions
    in turn (`fractions[difficulty]`), so which task thinks more is chance, not the task."""
    import random

    from audiothinker.data.synthetic import TASKS

    rng = random.Random(f"think-fractions/{seed}")
    out = {}
    for level, tasks in TASKS.items():
        names = sorted(t.name for t in tasks)
        rng.shuffle(names)
        chances = fractions[level]
        out.update({name: chances[k % len(chances)] for k, name in enumerate(names)})
    return out


REUSED = " (reused: its first run's time)"
"""Suffix of a reused stage's name in `Stages.timings`, whose seconds are those of the run that made it."""


def reused_seconds(timings: dict[str, float]) -> float:
    """Seconds the reused stages of `Stages.timings` took when they ran."""
    return sum(v for k, v in timings.items() if k.endswith(REUSED))


class Stages:
    """Runs named stages in order; a finished stage is reused when its key is the one it was made with.

    A stage's key holds everything its output depends on: its own settings and the keys of the stages
    it reads from (`key(...)` chains them), so a change of, say, the RL steps reruns RL and its
    evaluations but reuses the data, the model and the cold start.

    root: the directory the stages' outputs lie under. A stamp records it, and paths under it in a reused result
    are moved to the present root, so a finished run copied or moved elsewhere reads its own files.
    """

    def __init__(self, console: Any, root: Path | None = None):
        self.console = console
        self.root = root
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()

    def run(self, name: str, directory: Path, key: dict[str, Any], fn, *args, **kwargs) -> Any:
        key = json.loads(json.dumps(key, default=str))  # as it reads back from the stamp
        saved = self._reuse(name, directory, key)
        if saved is not None:
            return saved["result"]
        return self._run_here(name, directory, key, fn, args, kwargs)

    def _run_here(self, name: str, directory: Path, key: Any, fn, args: tuple, kwargs: dict) -> Any:
        self._begin(name, directory)
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        return self._done(name, directory, key, result, time.perf_counter() - t0)

    def run_parallel(self, jobs: list[StageJob], workers: int) -> dict[str, Any]:
        """Stages that read nothing from one another, up to `workers` at a time, each in a forked process with
        cpus // workers torch threads; {name: result}. A fork inherits this process's memos (the audio feature
        caches the cold start filled). With workers <= 1, one stage to run, or off Linux (macOS and Windows
        do not fork safely), they run here in turn.
        A job's `progress` (file, total) is shown as a bar: the file's line count of `total`."""
        results: dict[str, Any] = {}
        pending = []
        for job in jobs:
            key = json.loads(json.dumps(job.key, default=str))
            saved = self._reuse(job.name, job.directory, key)
            if saved is not None:
                results[job.name] = saved["result"]
            else:
                pending.append(dataclasses.replace(job, key=key))
        workers = min(workers, len(pending))
        if workers <= 1 or not sys.platform.startswith("linux"):  # fork after torch is safe on Linux only
            for job in pending:
                results[job.name] = self._run_here(job.name, job.directory, job.key, job.fn, job.args, {})
            return results
        import multiprocessing

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        for job in pending:
            self._begin(job.name, job.directory, announce=False)
        elapsed = time.perf_counter() - self.start
        self.console.rule(f"[bold]{len(pending)} stages side by side[/]  ({workers} at a time; "
                          f"demo time {elapsed / 60:.1f} min)")
        threads = max(1, available_cpus() // workers)
        bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=self.console)
        tasks = {j.name: bars.add_task(j.name, total=j.progress[1] if j.progress else 1) for j in pending}
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_threads, initargs=(threads,))
        try:  # the workers fork here, before the bars' refresh thread starts
            running = {j.name: (j, pool.apply_async(_timed, (j.fn, *j.args), j.worker_kwargs)) for j in pending}
            with bars:
                while running:
                    time.sleep(0.5)
                    for name, (job, res) in list(running.items()):
                        if job.progress and job.progress[0].is_file():
                            bars.update(tasks[name], completed=sum(1 for _ in job.progress[0].open()))
                        if res.ready():
                            del running[name]
                            result, seconds = res.get()  # a stage's error is raised here, with its own type
                            bars.update(tasks[name], completed=job.progress[1] if job.progress else 1)
                            results[name] = self._done(name, job.directory, job.key, result, seconds)
            pool.close()
        finally:
            pool.terminate()  # after an error (or Ctrl-C) the other stages stop at once
            pool.join()
        return results

    def _reuse(self, name: str, directory: Path, key: Any) -> dict[str, Any] | None:
        """The stamp of a finished stage made with `key` (its time recorded as reused), else None."""
        stamp = directory / "demo_stage.json"
        if stamp.is_file():
            saved = json.loads(stamp.read_text())
            if saved.get("key") == key:
                self.console.print(f"[dim]reusing {name} ({directory})[/]")
                self.timings[f"{name}{REUSED}"] = saved.get("seconds", 0.0)
                if saved.get("root") is not None and self.root is not None:
                    saved["result"] = rebase(saved["result"], saved["root"], str(self.root))
                return saved
        return None

    def _begin(self, name: str, directory: Path, announce: bool = True) -> None:
        if directory.exists():
            shutil.rmtree(directory)  # a half-done stage (or another setting's) must not leak into this one
        directory.mkdir(parents=True)
        if announce:
            elapsed = time.perf_counter() - self.start
            self.console.rule(f"[bold]{name}[/]  (demo time {elapsed / 60:.1f} min)")

    def _done(self, name: str, directory: Path, key: Any, result: Any, seconds: float) -> Any:
        self.timings[name] = seconds
        (directory / "demo_stage.json").write_text(
            json.dumps({"key": key, "result": result, "seconds": seconds,
                        "root": None if self.root is None else str(self.root)}, default=str))
        return result


def rebase(value: Any, old: str, new: str) -> Any:
    """`value` (JSON data) with every string that is `old` or a path under it moved to the same place under `new`."""
    if isinstance(value, str):
        old, new = old.rstrip(os.sep), new.rstrip(os.sep)
        return new + value[len(old):] if value == old or value.startswith(old + os.sep) else value
    if isinstance(value, list):
        return [rebase(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: rebase(v, old, new) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class StageJob:
    """One stage for `Stages.run_parallel`: `fn(*args)` must be picklable by reference (a module-level function)."""

    name: str
    directory: Path
    key: Any
    fn: Callable[..., Any]
    args: tuple = ()
    progress: tuple[Path, int] | None = None
    """(file, total): the stage's progress is the file's line count (e.g. an RL run's metrics.jsonl, one line a step)."""
    worker_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments of `fn` when it runs in a worker process (e.g. no progress bar of its own: the bar is
    drawn by the parent from `progress`)."""


def available_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells it, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _worker_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0
