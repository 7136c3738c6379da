"""`Memo`: a least-recently-used memo bounded by a budget of sizes (bytes, or entries), shared by the audio
front end's memos (`models.feature_cache`, sized in bytes) and the LLM judge's score cache (`judge.scoring`,
one per entry)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


def one(_: Any) -> int:
    """Every entry counts 1: a budget of entries."""
    return 1


class Memo:
    """Entries by key, least recently used first, holding at most `budget` (the sum of `size` over the values):
    past it, the least recently used go first. A value larger than the whole budget is not kept."""

    def __init__(self, budget: int, size: Callable[[Any], int] = one):
        self.budget, self.size = budget, size
        self.entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.held = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries

    def get(self, key: Hashable) -> Any:
        """The value (now the most recently used), or None."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        self.entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        old = self.entries.pop(key, None)
        if old is not None:
            self.held -= old[1]
        size = self.size(value)
        if size <= self.budget:
            self.entries[key] = (value, size)
            self.held += size
        self._evict()

    def shrink(self, budget: int) -> None:
        """Set the budget, dropping the least recently used entries past it."""
        self.budget = budget
        self._evict()

    def _evict(self) -> None:
        while self.held > self.budget:
            _, (_, size) = self.entries.popitem(last=False)
            self.held -= size
            self.evicted += 1

    def clear(self) -> None:
        self.entries.clear()
        self.held = 0
