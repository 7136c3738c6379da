"""The benchmark registry: a benchmark is one module of this package registering one object.

The object holds everything `score` and `eval` need to know of it: the parser of one metadata
record (registered as the data format `format`, so `data.format`/`eval.format` accept it too),
the key its official prediction file answers under, and its official-compatible scoring:

    MMAU = register_benchmark(ChoiceBenchmark(name="mmau", format="mmau", prediction_key="model_output", ...))

`score --benchmark`, `eval --benchmark`, the eval library and config's `data.format` read the
registries; each imports every module of this package on first use, so a new benchmark is one
new file here and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from audiothinker.data.loaders import FORMATS, RecordParser
from audiothinker.plugins import Registry, import_submodules

Tally = list[int]  # [correct, n]
Located = tuple[str, dict[str, Any]]  # (where: "file:line 3 (id=...)", record)
Reader = Callable[[str], str]  # what the official rule sees of a prediction string


def as_given(prediction: str) -> str:
    return prediction


class Benchmark(Protocol):
    name: str
    """The `--benchmark` name."""
    format: str
    """`data.loaders` format its metadata file is read with."""
    parse: RecordParser | None
    """Parser of one metadata record, registered as format `format`; None: `format` is a generic one."""
    prediction_key: str
    """Field of the prediction file holding the model's answer."""
    json_list: bool
    """The prediction file is a JSON list (else JSONL)."""
    official: bool
    """Scored by `score` (the official rules); False: `eval` scores it with our matcher (`parsing.is_correct`)."""

    def prediction(self, answer: str, raw: dict[str, Any]) -> str:
        """What `eval` writes under `prediction_key` for a completion whose <answer> content is `answer`
        (`raw`: the record's metadata)."""
        ...

    def score(self, records: Sequence[Located], strict: bool = False, read: Reader = as_given) -> dict[str, Any]:
        """{"total": [correct, n], <group>: {name: [correct, n]}, ..., "no_prediction": count}"""
        ...


# The paper's benchmarks, in its table order (listings and messages keep it); any other follows by name.
_PAPER_ORDER = ("mmau", "mmar", "airbench")


def _paper_first(name: str) -> int:
    return _PAPER_ORDER.index(name) if name in _PAPER_ORDER else len(_PAPER_ORDER)


def import_benchmarks() -> None:
    """Import every module of this package (each registers its benchmark), the paper's three first."""
    import_submodules("audiothinker.eval.benchmarks", order=_paper_first, skip=("base",))


BENCHMARKS: Registry[Benchmark] = Registry("benchmark", plugins=import_benchmarks)
"""Registered benchmarks: name -> benchmark, in registration order."""

B = TypeVar("B", bound=Benchmark)


def register_benchmark(benchmark: B) -> B:
    """Make `benchmark` a `--benchmark` choice of `score` (if official) and `eval`, and its parser a data format."""
    if BENCHMARKS.get(benchmark.name, benchmark) is not benchmark:
        raise ValueError(f"benchmark {benchmark.name!r} is registered twice")
    if benchmark.parse is not None:
        if FORMATS.get(benchmark.format, benchmark.parse) is not benchmark.parse:
            raise ValueError(f"data format {benchmark.format!r} is registered twice")
        FORMATS[benchmark.format] = benchmark.parse
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def benchmark_names(official: bool = False) -> list[str]:
    """Registered names, the paper's first, then in registration order; official=True: only those `score` scores."""
    return sorted((name for name, b in BENCHMARKS.items() if b.official or not official), key=_paper_first)
