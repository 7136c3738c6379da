"""Benchmarks, one module each (mmau, mmar, airbench; jsonl: our schema), in one registry (`base`).

A new benchmark is one new module here registering one object with `register_benchmark`
(its record parser, prediction key, official-compatible scoring); `score`, `eval` and
config's `data.format` list it from then on. The modules are imported on first registry use.
"""

from audiothinker.eval.benchmarks.base import (
    BENCHMARKS,
    Benchmark,
    benchmark_names,
    import_benchmarks,
    register_benchmark,
)

__all__ = ["BENCHMARKS", "Benchmark", "benchmark_names", "import_benchmarks", "register_benchmark"]
