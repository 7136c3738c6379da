"""Evaluation: the benchmarks (`benchmarks/`, one file each, one registry), official scoring
(`official`: pure matchers; `score`: files, tables, the `score` CLI), `run` (evaluate: the library)
and `cli` (the `eval` command)."""

from audiothinker.eval.official import (
    airbench_gt_letter,
    airbench_letter,
    airbench_match,
    airbench_option_text,
    mmar_match,
    mmau_match,
    word_set,
)

__all__ = [
    "airbench_gt_letter",
    "airbench_letter",
    "airbench_match",
    "airbench_option_text",
    "mmar_match",
    "mmau_match",
    "word_set",
]
