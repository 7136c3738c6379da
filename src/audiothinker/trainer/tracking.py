"""Metric sinks: a JSONL file of our own plus accelerate's trackers (TensorBoard, wandb, trackio)."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


class JsonlWriter:
    """Appends one JSON object per line; only the main process writes."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int) -> int:
        """Drop rows logged after `step` (a resumed run redoes them); returns how many were dropped."""
        if not self.enabled or not self.path.exists():
            return 0
        lines = self.path.read_text().splitlines(keepends=True)
        keep = []
        for line in lines:
            try:
                row_step = json.loads(line).get("step", 0)
            except (ValueError, AttributeError):
                continue  # a line cut short by a kill mid-write
            if isinstance(row_step, (int, float)) and row_step <= step:
                keep.append(line if line.endswith("\n") else line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(keep))
        tmp.replace(self.path)
        return len(lines) - len(keep)

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


class PhaseTimer:
    """Wall time per phase of a step (`with timer("rollout"): ...`), reported as timing/<phase>."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.times[f"timing/{name}"] = self.times.get(f"timing/{name}", 0.0) + time.perf_counter() - start

    def pop(self) -> dict[str, float]:
        out, self.times = self.times, {}
        return out


def mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    m = sum(values) / len(values)
    var = sum((v - m) ** 2 for v in values) / max(len(values) - 1, 1)
    return m, var**0.5
