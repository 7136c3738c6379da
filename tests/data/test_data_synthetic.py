"""The synthetic set: deterministic, balanced, short clips, and traces that end on the answer."""

import collections
import hashlib

import numpy as np
import pytest
import soundfile as sf

from audiothinker.data import load_records, split_seed, write_synthetic
from audiothinker.data.synthetic import HIGH_HZ, LOW_HZ, MAX_SECONDS, SAMPLE_RATE, TASKS, generate_items
from audiothinker.judge.rule import last_option_named

N = 144  # a multiple of every cycle (3 difficulties x 2 tasks x 2 or 3 answers)


@pytest.fixture(scope="module")
def items():
    return generate_items(N, seed=7)


def test_same_seed_same_items_other_seed_differs(items):
    again = generate_items(N, seed=7)
    assert all(np.array_equal(a.audio, b.audio) and a.metadata == b.metadata for a, b in zip(items, again))
    other = generate_items(N, seed=8)
    assert sum(np.array_equal(a.audio, b.audio) for a, b in zip(items, other)) == 0
    prefix = generate_items(10, seed=7)  # item i depends on (seed, i) only
    assert all(np.array_equal(a.audio, b.audio) for a, b in zip(items, prefix))


def test_records_are_valid_short_and_16k(items):
    for it in items:
        it.validate()
        assert it.sampling_rate == SAMPLE_RATE and it.audio.dtype == np.float32
        assert len(it.audio) <= MAX_SECONDS * SAMPLE_RATE
        assert np.abs(it.audio).max() < 1.0


def test_balanced_across_difficulties_tasks_and_answers(items):
    assert collections.Counter(it.difficulty for it in items) == {"easy": 48, "medium": 48, "hard": 48}
    by_task = collections.defaultdict(collections.Counter)
    for it in items:
        by_task[it.task][it.answer] += 1
    assert set(by_task) == {t.name for ts in TASKS.values() for t in ts}
    for task, counts in by_task.items():
        assert len(set(counts.values())) == 1, (task, counts)  # one fixed answer scores chance
    odd = collections.Counter((it.task, it.answer) for it in generate_items(31, seed=1))
    for ts in TASKS.values():
        for t in ts:
            counts = [odd[(t.name, c)] for c in t.choices]
            assert max(counts) - min(counts) <= 1


def test_reasoning_ends_naming_the_answer_and_matches_facts(items):
    for it in items:
        text = it.metadata["reasoning"]
        assert text.endswith(f"So the answer is {it.answer}.")
        assert last_option_named(text, tuple(it.choices)) == it.answer_index
    for it in items:
        facts = it.metadata["facts"]
        if it.task == "majority":
            assert (facts["high"] > facts["low"]) == (it.answer == "more high") and facts["high"] != facts["low"]
            assert facts["high"] + facts["low"] == len(facts["sequence"]) in range(3, 7)
        if it.task == "loudest_pitch":
            loudest = facts["loudest"] - 1
            assert facts["pitches"][loudest] == it.answer and facts["levels"][loudest] == "loud"
        if it.task == "count":
            assert ["two", "three", "four"][facts["beeps"] - 2] == it.answer


def _band(wav: np.ndarray) -> str:
    """'high' or 'low' from the strongest frequency of a stretch of signal."""
    spectrum = np.abs(np.fft.rfft(wav))
    freq = np.fft.rfftfreq(len(wav), 1 / SAMPLE_RATE)[spectrum.argmax()]
    return "high" if HIGH_HZ[0] <= freq <= HIGH_HZ[1] else "low" if LOW_HZ[0] <= freq <= LOW_HZ[1] else "?"


def _bursts(wav: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(start, end) of the stretches whose 10 ms envelope is above threshold."""
    frames = np.abs(wav[: len(wav) // 160 * 160]).reshape(-1, 160).max(axis=1)
    on = np.concatenate([[0], (frames > threshold).astype(int), [0]])
    edges = np.flatnonzero(np.diff(on))
    return [(a * 160, b * 160) for a, b in zip(edges[::2], edges[1::2])]


def test_audio_encodes_the_answer(items):
    """Simple signal analysis recovers the ground truth, so the labels are about the audio."""
    for it in items:
        if it.task == "pitch":
            assert _band(it.audio) == it.answer
        elif it.task == "count":
            assert len(_bursts(it.audio, 0.1)) == it.metadata["facts"]["beeps"]
        elif it.task == "loudest_pitch":
            a, b = _bursts(it.audio, 0.5)[0]  # only the loud tone passes this threshold
            assert _band(it.audio[a:b]) == it.answer
        elif it.task == "majority":
            seq = [_band(it.audio[a:b]) for a, b in _bursts(it.audio, 0.1)]
            assert seq == it.metadata["facts"]["sequence"]


def test_write_is_deterministic_idempotent_and_reads_back(tmp_path):
    path = write_synthetic(tmp_path / "a", 24, seed=3)
    again = write_synthetic(tmp_path / "b", 24, seed=3)
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(path) == digest(again)
    assert digest(path.parent / "train" / "syn-3-00005.wav") == digest(again.parent / "train" / "syn-3-00005.wav")
    before = path.stat().st_mtime_ns
    assert write_synthetic(tmp_path / "a", 24, seed=3) == path and path.stat().st_mtime_ns == before
    recs = load_records(path, "jsonl").records
    mem = generate_items(24, seed=3)
    assert [r.id for r in recs] == [m.id for m in mem]
    for r, m in zip(recs[:5], mem[:5]):
        wav, sr = sf.read(r.audio, dtype="float32")
        assert sr == SAMPLE_RATE and np.allclose(wav, m.audio, atol=1e-4)
        assert r.metadata == m.metadata and r.answer == m.answer and r.difficulty == m.difficulty
    write_synthetic(tmp_path / "a", 10, seed=3)  # a smaller set removes the stale clips
    assert len(list((tmp_path / "a" / "train").glob("*.wav"))) == 10


def test_test_split_uses_another_seed(tmp_path):
    train = load_records(write_synthetic(tmp_path, 6, seed=0, split="train"), "jsonl").records
    test = load_records(write_synthetic(tmp_path, 6, seed=0, split="test"), "jsonl").records
    assert split_seed(0, "test") == 1_000_003 and test[0].id == "syn-1000003-00000"
    assert not {r.id for r in train} & {r.id for r in test}
    with pytest.raises(ValueError, match="valid"):
        split_seed(0, "dev")
