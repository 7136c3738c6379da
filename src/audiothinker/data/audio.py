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
    silent: int = 0
    """Clips whose samples are all (near) zero: they train, but carry no sound."""
    near_empty: int = 0
    """Clips shorter than NEAR_EMPTY_SECONDS."""
    warned_silent: bool = False
    """Whether the one-time warning about silent or near-empty clips was logged."""

    def note_content(self, wav: np.ndarray, sr: int, what: str) -> None:
        """Count silent (peak below SILENT_PEAK) and near-empty clips; the first one is logged."""
        silent, short = is_silent(wav), len(wav) < NEAR_EMPTY_SECONDS * sr
        self.silent += silent
        self.near_empty += short
        if (silent or short) and not self.warned_silent:
            self.warned_silent = True
            kind = "silent (all samples near zero)" if silent else f"near-empty ({len(wav) / sr:.3f} s)"
            log.warning("%s: %s; further ones are counted, not logged (total reported at the end)", what or "audio", kind)

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
        if self.silent:
            parts.append(f"{self.silent} silent (all samples near zero)")
        if self.near_empty:
            parts.append(f"{self.near_empty} near-empty (< {NEAR_EMPTY_SECONDS:g} s)")
        return "; ".join(parts)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


SILENT_PEAK = 1e-6
"""A clip whose absolute peak is below this is silent (float samples in [-1, 1])."""
NEAR_EMPTY_SECONDS = 0.1
"""A clip shorter than this is near-empty (a few audio frames at most for the encoders)."""


def is_silent(wav: np.ndarray) -> bool:
    return wav.size == 0 or float(np.max(np.abs(wav))) < SILENT_PEAK


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
    if max_seconds is not None and not max_seconds > 0:  # a bad limit, not "audio is empty"
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
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
    stats.note_content(wav, target_sr, what)
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
