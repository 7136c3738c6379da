"""`jsonl`: our schema (e.g. the synthetic set) as an `eval` benchmark. No official script: `eval`
scores it with our matcher (`parsing.is_correct`, the RL accuracy reward's) and `score` does not list it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from audiothinker.data.loaders import RecordParser
from audiothinker.eval.benchmarks.base import Located, Reader, as_given, register_benchmark


@dataclass(frozen=True)
class OurSchema:
    name: str = "jsonl"
    prediction_key: str = "prediction"
    format: str = "jsonl"
    parse: RecordParser | None = None  # the generic `jsonl` format of data.loaders
    json_list: bool = False
    official = False

    def prediction(self, answer: str, raw: dict[str, Any]) -> str:
        return answer

    def score(self, records: Sequence[Located], strict: bool = False, read: Reader = as_given) -> dict[str, Any]:
        raise NotImplementedError("jsonl has no official scorer; `eval` scores it with parsing.is_correct")


JSONL = register_benchmark(OurSchema())
