"""MMAU (github.com/Sakshi113/MMAU): test-mini/test metadata, `model_output` predictions, evaluation.py's scoring."""

from __future__ import annotations

from typing import Any

from audiothinker.data.loaders import Source, option_texts, optional_text, required, text_of
from audiothinker.data.records import AudioQA
from audiothinker.eval.benchmarks.base import register_benchmark
from audiothinker.eval.official import mmau_match
from audiothinker.eval.score import ChoiceBenchmark


def parse_mmau(raw: dict[str, Any], source: Source) -> AudioQA:
    """MMAU test-mini/test: audio_id relative to the audio root; task sound|music|speech."""
    return AudioQA(
        id=text_of(required(raw, "id"), "id"),
        audio=source.resolve(text_of(required(raw, "audio_id"), "audio_id")),
        question=text_of(required(raw, "question"), "question"),
        choices=option_texts(required(raw, "choices"), "choices", drop_empty=True),
        answer=text_of(required(raw, "answer"), "answer"),
        task=optional_text(raw, "task"),
        category=optional_text(raw, "category"),
        difficulty=optional_text(raw, "difficulty"),
        metadata={
            "sub_category": optional_text(raw, "sub-category"),
            "dataset": optional_text(raw, "dataset"),
            "split": optional_text(raw, "split"),
            "raw": raw,
        },
    )


MMAU = register_benchmark(ChoiceBenchmark(
    name="mmau",
    format="mmau",
    parse=parse_mmau,
    prediction_key="model_output",
    json_list=True,
    groups=(("task", ("sound", "music", "speech")), ("difficulty", ("easy", "hard", "medium"))),
    match=mmau_match,
))
