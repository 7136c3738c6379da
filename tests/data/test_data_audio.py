"""Audio loading: mono, resampling, cutting with counts, and errors naming the record and file."""

import logging

import numpy as np
import pytest
import soundfile as sf

from audiothinker.data import AudioQA, AudioStats, DataError, load_audio, load_record_audio


def _sine(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    wav = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return wav if channels == 1 else np.stack([wav, 0.5 * wav], axis=1)  # [T, C]


def test_stereo_file_is_averaged_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    stereo = _sine(16000, 0.5, channels=2)
    sf.write(path, stereo, 16000, subtype="FLOAT")
    wav = load_audio(str(path), 16000, stats=AudioStats())
    assert wav.dtype == np.float32 and wav.ndim == 1
    np.testing.assert_allclose(wav, stereo.mean(axis=1), atol=1e-6)


def test_resample_44k_to_16k_length(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, _sine(44100, 1.5), 44100)
    stats = AudioStats()
    wav = load_audio(str(path), 16000, stats=stats)
    assert wav.dtype == np.float32
    assert abs(len(wav) - 24000) <= 1
    assert stats.resampled == 1 and stats.trimmed == 0 and stats.loaded == 1


def test_array_source_with_rate_and_channels_first():
    stats = AudioStats()
    arr = _sine(8000, 1.0, channels=2).T  # [C, T], torchaudio layout
    wav = load_audio(arr, 16000, source_sr=8000, stats=stats)
    assert abs(len(wav) - 16000) <= 1 and stats.resampled == 1


def test_int16_array_is_scaled():
    wav = load_audio(np.array([0, 16384, -32768], dtype=np.int16), 16000, stats=AudioStats())
    np.testing.assert_allclose(wav, [0.0, 0.5, -1.0])


def test_long_clips_are_cut_counted_and_warned_once(tmp_path, caplog):
    path = tmp_path / "long.wav"
    sf.write(path, _sine(44100, 3.0), 44100)
    stats = AudioStats()
    with caplog.at_level(logging.WARNING, logger="audiothinker.data.audio"):
        for _ in range(3):
            wav = load_audio(str(path), 16000, max_seconds=2.0, stats=stats, what="record 'x' (long.wav)")
            assert len(wav) == 32000
        short = load_audio(_sine(16000, 1.0), 16000, max_seconds=2.0, stats=stats)
    assert len(short) == 16000
    assert stats.trimmed == 3 and stats.loaded == 4
    assert stats.trimmed_seconds == pytest.approx(3.0, abs=0.01)
    assert len([r for r in caplog.records if "longer than 2 s" in r.getMessage()]) == 1
    assert "3 clips longer than 2 s were cut" in stats.report()


@pytest.mark.parametrize(
    "source, message",
    [
        (np.zeros(0, dtype=np.float32), "audio is empty"),
        (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN"),
        (np.zeros((2, 2, 2), dtype=np.float32), "1-D or 2-D"),
    ],
)
def test_bad_arrays_raise_naming_the_record(source, message):
    with pytest.raises(DataError, match=message) as err:
        load_audio(source, 16000, what="record 'q7'", stats=AudioStats())
    assert "record 'q7'" in str(err.value)


def test_missing_unreadable_and_empty_files(tmp_path):
    with pytest.raises(DataError, match=r"record 'a' \(gone.wav\): audio file not found: .*gone.wav"):
        load_audio(str(tmp_path / "gone.wav"), 16000, what="record 'a' (gone.wav)")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio")
    with pytest.raises(DataError, match=r"record 'b'.*cannot read audio file .*junk.wav"):
        load_audio(str(junk), 16000, max_seconds=1.0, what="record 'b'")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(DataError, match=r"empty.wav: audio is empty"):
        load_audio(str(empty), 16000)


def test_load_record_audio_names_id_and_path(tmp_path):
    rec = AudioQA(id="r1", audio=str(tmp_path / "none.wav"), question="q?", choices=["a", "b"], answer="a")
    with pytest.raises(DataError, match=r"record 'r1' \(.*none.wav\): audio file not found"):
        load_record_audio(rec, 16000)
    rec.audio, rec.sampling_rate = _sine(8000, 0.5), 8000
    assert abs(len(load_record_audio(rec, 16000, stats=AudioStats())) - 8000) <= 1
