"""The demo's sizes (`DemoPlan`), its presets and their prompts, and the stage runner that reuses finished stages."""

from __future__ import annotations

import json
import shutil
import time
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
"""Shares of flawed (one false fact) and inconsistent (another conclusion) cold-start traces: R_t and R_c
have something to fix, as in real models' traces."""


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
    think_fraction: float = 0.65
    """Cold start: chance of a think target under the adaptive prompt, the same for every item (so the
    prompt-only model leans to thinking everywhere, flat across difficulties)."""


PLANS: dict[str, DemoPlan] = {
    "full": DemoPlan(train_items=1600, test_items=240, sft_steps=500, rl_steps=40),
    "quick": DemoPlan(train_items=320, test_items=48, sft_steps=60, rl_steps=4),
    "smoke": DemoPlan(train_items=48, test_items=12, sft_steps=2, rl_steps=1, hidden=32, layers=1, rl_batch=4,
                      rl_generations=2),
}


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
