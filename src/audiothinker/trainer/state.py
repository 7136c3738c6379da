"""Training state that checkpoints carry besides weights/optimizer/RNG: step and data position."""

from __future__ import annotations

import random


class PromptSampler:
    """Seeded, epoch-shuffled stream of record indices; its position is checkpointed.

    Every process holds the same permutation and takes its own slice of each global batch, so
    the data order depends on (seed, step) only and a resumed run sees the same prompts.
    """

    def __init__(self, size: int, seed: int, shuffle: bool = True):
        if size <= 0:
            raise ValueError("the training set is empty")
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.step = 0  # completed training steps
        self.cursor = 0  # position in the infinite index stream
        self._order: tuple[int, list[int]] | None = None  # (epoch, its permutation), built once per epoch

    def _epoch_order(self, epoch: int) -> list[int]:
        if self._order is None or self._order[0] != epoch:
            order = list(range(self.size))
            if self.shuffle:
                random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            self._order = (epoch, order)
        return self._order[1]

    def _index(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        return self._epoch_order(epoch)[offset]

    def take(self, global_batch: int, rank: int, world: int) -> list[int]:
        """Indices of this process's share of the next global batch (advances the cursor)."""
        per_rank = global_batch // world
        start = self.cursor + rank * per_rank
        idx = [self._index(p) for p in range(start, start + per_rank)]
        self.cursor += global_batch
        return idx

    def state_dict(self) -> dict:
        return {"step": self.step, "cursor": self.cursor, "size": self.size, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size or state["seed"] != self.seed:
            raise ValueError(
                f"checkpoint was made with {state['size']} records and seed {state['seed']}, "
                f"this run has {self.size} records and seed {self.seed}"
            )
        self.step, self.cursor = int(state["step"]), int(state["cursor"])
