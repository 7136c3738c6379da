"""The one record type for audio multiple-choice QA, and the error every loader raises."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DIFFICULTIES = ("easy", "medium", "hard")


class DataError(ValueError):
    """Bad input data; the message names the file and line or the record id."""


@dataclass
class AudioQA:
    """One audio multiple-choice question.

    `audio` is either a path (str) or a mono float32 waveform (np.ndarray) at `sampling_rate`.
    `answer` is the text of the correct option and must be one of `choices`.
    """

    id: str
    audio: str | np.ndarray
    question: str
    choices: list[str]
    answer: str
    sampling_rate: int | None = None
    task: str | None = None
    category: str | None = None
    difficulty: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def validate(self, where: str = "") -> "AudioQA":
        """Raise DataError naming `where` (file:line) and the id when the record is unusable."""
        loc = f"{where}: " if where else ""
        tag = f"record {self.id!r}"
        if not self.choices or len(self.choices) < 2:
            raise DataError(f"{loc}{tag} needs at least two choices, got {self.choices!r}")
        if any(not isinstance(c, str) or not c.strip() for c in self.choices):
            raise DataError(f"{loc}{tag} has an empty or non-text choice: {self.choices!r}")
        if self.answer not in self.choices:
            raise DataError(f"{loc}{tag} answer {self.answer!r} is not among the choices {self.choices!r}")
        if not isinstance(self.question, str) or not self.question.strip():
            raise DataError(f"{loc}{tag} has an empty question")
        if self.difficulty is not None and self.difficulty not in DIFFICULTIES:
            raise DataError(f"{loc}{tag} difficulty {self.difficulty!r} is not one of {DIFFICULTIES}")
        if isinstance(self.audio, np.ndarray):
            check_waveform(self.audio, f"{loc}{tag}")
        elif not isinstance(self.audio, str) or not self.audio:
            raise DataError(f"{loc}{tag} has no audio path")
        return self

    @property
    def answer_index(self) -> int:
        return self.choices.index(self.answer)


def check_waveform(wav: np.ndarray, what: str) -> None:
    """Reject empty, non-finite or multi-dimensional waveforms with a message naming `what`."""
    if wav.ndim != 1:
        raise DataError(f"{what}: audio must be mono (1-D), got shape {wav.shape}")
    if wav.size == 0:
        raise DataError(f"{what}: audio is empty")
    if not np.isfinite(wav).all():
        raise DataError(f"{what}: audio contains NaN or infinite samples")


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
