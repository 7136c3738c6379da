"""Data: the `AudioQA` record, loaders per format, audio I/O and the synthetic task set."""

from audiothinker.data.audio import AUDIO_STATS, AudioStats, load_audio, load_record_audio
from audiothinker.data.loaders import FORMATS, LoadResult, Registry, load_records, missing_audio, register_format
from audiothinker.data.records import DIFFICULTIES, AudioQA, DataError, check_waveform
from audiothinker.data.synthetic import generate_items, split_seed, write_synthetic

__all__ = [
    "AUDIO_STATS",
    "DIFFICULTIES",
    "FORMATS",
    "AudioQA",
    "AudioStats",
    "DataError",
    "LoadResult",
    "Registry",
    "check_waveform",
    "generate_items",
    "load_audio",
    "load_record_audio",
    "load_records",
    "missing_audio",
    "register_format",
    "split_seed",
    "write_synthetic",
]
