"""MMAR (github.com/ddlBoJack/MMAR): metadata, `answer_prediction` predictions, code/evaluation.py's scoring."""

from __future__ import annotations

from typing import Any

from audiothinker.data.loaders import Source, option_texts, optional_text, required, text_of
from audiothinker.data.records import AudioQA
from audiothinker.eval.benchmarks.base import register_benchmark
from audiothinker.eval.official import mmar_match
from audiothinker.eval.score import ChoiceBenchmark


def parse_mmar(raw: dict[str, Any], source: Source) -> AudioQA:
    """MMAR (JSON list or JSONL): audio_path; modality (7 kinds) kept as `task`; no difficulty."""
    modality = optional_text(raw, "modality")
    return AudioQA(
        id=text_of(required(raw, "id"), "id"),
        audio=source.resolve(text_of(required(raw, "audio_path"), "audio_path")),
        question=text_of(required(raw, "question"), "question"),
        choices=option_texts(required(raw, "choices"), "choices", drop_empty=True),
        answer=text_of(required(raw, "answer"), "answer"),
        task=modality,
        category=optional_text(raw, "category"),
        metadata={
            "modality": modality,
            "sub_category": optional_text(raw, "sub-category"),
            "language": optional_text(raw, "language"),
            "raw": raw,
        },
    )


MMAR = register_benchmark(ChoiceBenchmark(
    name="mmar",
    format="mmar",
    parse=parse_mmar,
    prediction_key="answer_prediction",
    json_list=True,
    groups=(
        (
            "modality",
            (
                "sound", "music", "speech", "mix-sound-music", "mix-sound-speech",
                "mix-music-speech", "mix-sound-music-speech",
            ),
        ),
        ("category", ("Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer")),
    ),
    match=mmar_match,
))
