"""Audio I/O: read a file or take an array, make it mono float32 at the target rate, cut long clips.

Every failure is a `DataError` naming the record and file. Cut and resampled clips are
counted in an `AudioStats` (the module-level `AUDIO_STATS` unless one is passed): the first
cut logs one warning, and the trainer reports the total with `stats.report()` at the end.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from audiothinker.data.records import AudioQA, DataError, check_waveform

log = logging.getLogger(__name__)


@dataclass
class AudioStats:
    """Counters of what `load_audio` changed; one per run, reported at the end."""

    loaded: int = 0
    """Clips returned."""
    resampled: int = 0
    """Clips whose rate differed from the target rate."""
    trimmed: int = 0
    """Clips longer than max_seconds, cut to it."""
    trimmed_seconds: float = 0.0
    """Audio dropped by the cuts, in seconds."""
    max_seconds: float | None = None
    """The limit of the last cut (for the message)."""
    warned: bool = False
    """Whether the one-time warning about cuts was logged."""

    def note_trim(self, seconds_cut: float, max_seconds: float, what: str) -> None:
        self.trimmed += 1
        self.trimmed_seconds += seconds_cut
        self.max_seconds = max_seconds
        if not self.warned:
            self.warned = True
            log.warning(
                "%s: longer than %g s, cut (further cuts are counted, not logged; "
                "the total is reported at the end)", what or "audio", max_seconds
            )

    def report(self) -> str:
        """One line for the end of a run, e.g. '37 clips longer than 30 s were cut (412.0 s dropped)'."""
        parts = [f"{self.loaded} clips loaded"]
        if self.trimmed:
            parts.append(
                f"{self.trimmed} clips longer than {self.max_seconds:g} s were cut "
                f"({self.trimmed_seconds:.1f} s dropped)"
            )
        if self.resampled:
            parts.append(f"{self.resampled} resampled")
        return "; ".join(parts)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


AUDIO_STATS = AudioStats()
"""The default counter, shared by every `load_audio` call that passes none."""


def _to_mono_float32(wav: np.ndarray, what: str, channels_last: bool) -> np.ndarray:
    """Average channels; integer PCM scaled to [-1, 1)."""
    if np.issubdtype(wav.dtype, np.integer):
        wav = wav.astype(np.float32) / float(np.iinfo(wav.dtype).max + 1)
    elif not np.issubdtype(wav.dtype, np.floating):
        raise DataError(f"{what}: audio array has dtype {wav.dtype}, expected float or integer samples")
    if wav.ndim == 2:
        # soundfile gives [T, C]; an array may also be torchaudio's [C, T]: channels are the short axis.
        if wav.size == 0:
            wav = wav.reshape(0)
        else:
            wav = wav.mean(axis=1 if channels_last or wav.shape[1] <= wav.shape[0] else 0)
    return np.ascontiguousarray(wav, dtype=np.float32)


def _read_file(path: str, max_seconds: float | None, what: str) -> tuple[np.ndarray, int, int]:
    """(samples [T, C], rate, frames in the whole file); long files are not decoded past the cut."""
    if not os.path.isfile(path):
        raise DataError(f"{what}: audio file not found: {path}")
    try:
        info = sf.info(path)
        frames = info.frames
        if max_seconds is not None:
            frames = min(frames, int(np.ceil(max_seconds * info.samplerate)))
        wav, sr = sf.read(path, frames=frames, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as e:
        raise DataError(f"{what}: cannot read audio file {path}: {e}") from e
    return wav, int(sr), int(info.frames)


def load_audio(
    source: str | np.ndarray,
    target_sr: int,
    *,
    source_sr: int | None = None,
    max_seconds: float | None = None,
    what: str = "",
    stats: AudioStats | None = None,
) -> np.ndarray:
    """A mono float32 waveform [T] at `target_sr`, at most `max_seconds` long.

    source: a file path (any format libsndfile reads) or an array ([T], [T, C] or [C, T]).
    source_sr: the array's rate; None means it is already at `target_sr` (ignored for files).
    what: names the record and file in every error (defaults to the path).
    stats: counter of resampled and cut clips; `AUDIO_STATS` when None.
    """
    stats = AUDIO_STATS if stats is None else stats
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        what = what or path
        raw, sr, total_frames = _read_file(path, max_seconds, what)
        wav = _to_mono_float32(raw, what, channels_last=True)  # [T]
    elif isinstance(source, np.ndarray):
        what = what or "audio array"
        if source.ndim not in (1, 2):
            raise DataError(f"{what}: audio must be 1-D or 2-D (samples, channels), got shape {source.shape}")
        sr = int(source_sr or target_sr)
        wav = _to_mono_float32(source, what, channels_last=False)  # [T]
        total_frames = len(wav)
    else:
        raise DataError(f"{what or 'audio'}: expected a path or a numpy array, got {type(source).__name__}")
    check_waveform(wav, what)

    if max_seconds is not None and total_frames > max_seconds * sr:
        wav = wav[: int(np.ceil(max_seconds * sr))]
        stats.note_trim((total_frames - len(wav)) / sr, max_seconds, what)
    if sr != target_sr:
        wav = soxr.resample(wav, sr, target_sr, quality="HQ").astype(np.float32, copy=False)  # [T']
        stats.resampled += 1
    if max_seconds is not None:
        wav = wav[: int(max_seconds * target_sr)]  # resampling can round up by a sample
    check_waveform(wav, what)
    stats.loaded += 1
    return wav


def load_record_audio(
    record: AudioQA, target_sr: int, *, max_seconds: float | None = None, stats: AudioStats | None = None
) -> np.ndarray:
    """The record's waveform (from its path or its in-memory array), errors naming its id and file."""
    if isinstance(record.audio, np.ndarray):
        return load_audio(
            record.audio, target_sr, source_sr=record.sampling_rate, max_seconds=max_seconds,
            what=f"record {record.id!r} (in-memory audio)", stats=stats,
        )
    return load_audio(
        record.audio, target_sr, max_seconds=max_seconds, what=f"record {record.id!r} ({record.audio})", stats=stats
    )
