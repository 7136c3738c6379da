"""Read a data file into `AudioQA` records: our JSONL schema, AVQA (R1-AQA form) and the benchmarks.

One small parser per format turns one raw dict into one record; `load_records` does the rest
(JSON list or JSONL detection, file:line locations, duplicate ids, raise-or-skip). A new format
is one function under `@register_format("name")`. The benchmarks' parsers (mmau, mmar, airbench)
live with their benchmark in `eval/benchmarks/` and register there; `FORMATS` imports those
modules on first use, so every name is listed without importing them at start-up.

Every bad record is a `DataError` naming the file and line (JSONL) or the record index and id
(JSON list). With on_error="skip" it is left out and listed in `LoadResult.skipped` instead.
Audio files are not opened here (benchmarks are often loaded before their audio is downloaded);
`missing_audio(records)` tells a caller which are absent.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from audiothinker.data.records import AudioQA, DataError, is_missing
from audiothinker.plugins import Registry, UnknownNameError  # noqa: F401  (UnknownNameError: re-exported)


@dataclass(frozen=True)
class Source:
    """Where a raw record came from, handed to the format's parser."""

    position: int
    """0-based record index in the file (blank JSONL lines not counted)."""
    audio_root: Path
    """Directory that relative audio paths resolve against."""

    def resolve(self, path: str) -> str:
        p = Path(os.path.expanduser(path))
        return os.path.normpath(p if p.is_absolute() else self.audio_root / p)


def _benchmark_formats() -> None:
    from audiothinker.eval.benchmarks.base import import_benchmarks

    import_benchmarks()


RecordParser = Callable[[dict[str, Any], Source], AudioQA]
FORMATS: Registry[RecordParser] = Registry("data format", plugins=_benchmark_formats)
"""Registered formats: name -> parser of one raw record (the benchmarks' are registered in eval/benchmarks/)."""


def register_format(name: str) -> Callable[[RecordParser], RecordParser]:
    def deco(fn: RecordParser) -> RecordParser:
        FORMATS[name] = fn
        return fn

    return deco


@dataclass
class LoadResult:
    """The records of one file and the bad ones left out (only with on_error="skip")."""

    records: list[AudioQA]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(where, reason) for each record left out."""
    path: str = ""
    format: str = ""

    def __len__(self) -> int:
        return len(self.records)

    def summary(self, max_listed: int = 5) -> str:
        head = f"{self.path} ({self.format}): {len(self.records)} records"
        if not self.skipped:
            return head
        listed = "; ".join(f"{where}: {_shorten(reason)}" for where, reason in self.skipped[:max_listed])
        more = f"; ... {len(self.skipped) - max_listed} more" if len(self.skipped) > max_listed else ""
        return f"{head}, {len(self.skipped)} skipped ({listed}{more})"


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- field helpers (the benchmark parsers use them too)


def required(raw: dict[str, Any], name: str) -> Any:
    if name not in raw or is_missing(raw[name]):
        raise DataError(f"missing field {name!r}")
    return raw[name]


def text_of(value: Any, name: str) -> str:
    """Benchmarks store a few numbers as numbers; anything else that is not text is an error."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise DataError(f"field {name!r} must be text, got {type(value).__name__}")
    return str(value).strip()


def option_texts(value: Any, name: str, drop_empty: bool) -> list[str]:
    if not isinstance(value, list):
        raise DataError(f"field {name!r} must be a list of options, got {type(value).__name__}")
    out = [text_of(c, name) for c in value]
    # MMAR has a few option lists padded with "": no option, so not shown to the model.
    return [c for c in out if c] if drop_empty else out


def optional_text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if is_missing(value):
        return None
    if isinstance(value, list):  # MMAU v1 has a few categories as one-element lists
        return ", ".join(text_of(v, name) for v in value) or None
    return text_of(value, name) or None


def record_id(raw: dict[str, Any], key: str, source: Source, prefix: str) -> str:
    value = raw.get(key)
    if is_missing(value) or value == "":
        return f"{prefix}-{source.position}"
    return text_of(value, key)


# --------------------------------------------------------------------------- formats


_GENERIC_FIELDS = frozenset(
    ("id", "audio", "question", "choices", "answer", "task", "category", "difficulty", "sampling_rate", "metadata")
)


@register_format("jsonl")
def parse_generic(raw: dict[str, Any], source: Source) -> AudioQA:
    """Our schema: id, audio (path), question, choices, answer (option text), and optionally
    task, category, difficulty, sampling_rate, metadata (a dict). Other keys go to metadata."""
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DataError(f"field 'metadata' must be an object, got {type(metadata).__name__}")
    metadata = {**{k: v for k, v in raw.items() if k not in _GENERIC_FIELDS}, **metadata}
    rate = raw.get("sampling_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0):
        raise DataError(f"field 'sampling_rate' must be a positive integer, got {rate!r}")
    return AudioQA(
        id=text_of(required(raw, "id"), "id"),
        audio=source.resolve(text_of(required(raw, "audio"), "audio")),
        question=text_of(required(raw, "question"), "question"),
        choices=option_texts(required(raw, "choices"), "choices", drop_empty=False),
        answer=text_of(required(raw, "answer"), "answer"),
        sampling_rate=rate,
        task=optional_text(raw, "task"),
        category=optional_text(raw, "category"),
        difficulty=optional_text(raw, "difficulty"),
        metadata=metadata,
    )


# "synthetic" files are written by data.synthetic.write_synthetic in our schema.
FORMATS["synthetic"] = parse_generic

_VIDEO = re.compile("video", re.IGNORECASE)


def video_to_audio(question: str) -> str:
    """R1-AQA's AVQA rewrite, keeping the case: video -> audio, Video -> Audio, VIDEO -> AUDIO."""

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        if word.isupper():
            return "AUDIO"
        return "Audio" if word[0].isupper() else "audio"

    return _VIDEO.sub(swap, question)


@register_format("avqa")
def parse_avqa(raw: dict[str, Any], source: Source) -> AudioQA:
    """R1-AQA's AVQA lines: question_text, multi_choice, answer (index into multi_choice), audio_path."""
    choices = option_texts(required(raw, "multi_choice"), "multi_choice", drop_empty=False)
    index = required(raw, "answer")
    if isinstance(index, bool) or not isinstance(index, int):
        raise DataError(f"field 'answer' must be an index into multi_choice, got {index!r}")
    if not 0 <= index < len(choices):
        raise DataError(f"answer index {index} is out of range for {len(choices)} choices {choices!r}")
    metadata = {k: raw[k] for k in ("video_name", "video_id", "question_relation", "question_type") if k in raw}
    return AudioQA(
        id=record_id(raw, "id", source, "avqa"),
        audio=source.resolve(text_of(required(raw, "audio_path"), "audio_path")),
        question=video_to_audio(text_of(required(raw, "question_text"), "question_text")),
        choices=choices,
        answer=choices[index],
        task=optional_text(raw, "question_type"),
        metadata={**metadata, "raw": raw},
    )


# --------------------------------------------------------------------------- reading


def _raw_records(path: Path) -> list[tuple[str, Any]]:
    """[(where, parsed JSON or the DataError of a malformed line)] from a JSON list or JSONL file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"{path}: cannot read data file: {e}") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text: {e}") from e
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: malformed JSON: {e.msg}") from e
        return [(_json_where(path, i, item), item) for i, item in enumerate(items)]
    out: list[tuple[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            out.append((where, json.loads(line)))
        except json.JSONDecodeError as e:
            out.append((where, DataError(f"malformed JSON line: {e.msg} (column {e.colno})")))
    return out


def _json_where(path: Path, index: int, item: Any) -> str:
    rid = next((item[k] for k in ("id", "uniq_id") if isinstance(item, dict) and k in item), None)
    return f"{path} record {index}" + (f" (id {rid!r})" if rid is not None else "")


def load_records(
    path: str | os.PathLike[str],
    format: str,
    *,
    audio_root: str | os.PathLike[str] | None = None,
    on_error: str = "raise",
) -> LoadResult:
    """Read every record of `path` in `format` (one of FORMATS; JSON list or JSONL for all).

    audio_root: where relative audio paths resolve (default: the data file's directory).
    on_error: "raise" stops at the first bad record; "skip" leaves it out and lists it in `skipped`.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown data format {format!r}; valid: {sorted(FORMATS)}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    parse = FORMATS[format]
    root = Path(audio_root) if audio_root is not None else path.parent
    result = LoadResult(records=[], path=str(path), format=format)
    first_seen: dict[str, str] = {}
    for position, (where, item) in enumerate(_raw_records(path)):
        try:
            if isinstance(item, DataError):
                raise item
            if not isinstance(item, dict):
                raise DataError(f"a record must be a JSON object, got {type(item).__name__}")
            record = parse(item, Source(position, root)).validate()
            if not record.id:
                raise DataError("empty id")
            if record.id in first_seen:
                raise DataError(f"duplicate id {record.id!r} (first at {first_seen[record.id]})")
        except DataError as e:
            if on_error == "raise":
                raise DataError(f"{where}: {e}") from e
            result.skipped.append((where, str(e)))
            continue
        first_seen[record.id] = where
        result.records.append(record)
    return result


def missing_audio(records: list[AudioQA]) -> list[AudioQA]:
    """Records whose audio is a path to no file (in-memory waveforms are never missing)."""
    return [r for r in records if not isinstance(r.audio, np.ndarray) and not os.path.isfile(r.audio)]
