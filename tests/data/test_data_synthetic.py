"""The synthetic set: deterministic, balanced, short clips, and traces that end on the answer."""

import collections
import hashlib

import numpy as np
import pytest
import soundfile as sf

from audiothinker.data import load_records, split_seed, write_synthetic
from audiothinker.data.synthetic import (
    HIGH_HZ, LOW_HZ, MAX_SECONDS, NUMBERS, SAMPLE_RATE, SLOT_START, SLOT_STEP, TASKS, TONE_SECONDS, Tone, generate_items,
    misheard,
    trace_text,
)
from audiothinker.judge.base import JudgeRequest
from audiothinker.judge.rule import last_option_named, record_facts, rule_consistency, rule_quality

N = 144  # a multiple of every cycle (3 difficulties x 2 tasks x 2 answers)


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


def test_reasoning_ends_naming_the_answer_and_facts_determine_it(items):
    for it in items:
        text = it.metadata["reasoning"]
        assert it.metadata["trace"] == "correct" and text == it.metadata["reasoning_clean"]
        assert text.endswith(f"So the answer is {it.answer}.")
        assert last_option_named(text, tuple(it.choices)) == it.answer_index
        facts = it.metadata["facts"]
        values = [v for _, v in facts]
        if it.task in ("pitch", "loudness"):
            assert values == [it.answer]
        elif it.task == "same_pitch":
            assert (values[0] == values[1]) == (it.answer == "same")
        elif it.task == "louder_pitch":
            louder = dict(facts)["the louder"]
            assert dict(facts)[louder] == f"loud and {it.answer}"
        else:  # parity: running counts of the marked tones, then the last count's parity, which is the answer
            marked = "high" if it.task == "parity_high" else "loud"
            tones = [v for s, v in facts if s.startswith("tone")]
            counts = [v for s, v in facts if s == "the count"]
            assert len(tones) in (3, 4) and counts == [NUMBERS[tones[: k + 1].count(marked)] for k in range(len(tones))]
            assert facts[-1] == [counts[-1], it.answer]
            assert (tones.count(marked) % 2 == 1) == (it.answer == "odd")


def test_flawed_and_inconsistent_traces():
    items = generate_items(300, seed=11, trace_shares=(0.2, 0.3))
    kinds = collections.Counter(it.metadata["trace"] for it in items)
    # Easy items have no flaw that keeps their answer: their flawed draws give correct traces.
    assert abs(kinds["flawed"] / 300 - 0.2 * 2 / 3) < 0.07 and abs(kinds["inconsistent"] / 300 - 0.3) < 0.07
    assert not any(it.metadata["trace"] == "flawed" for it in items if it.difficulty == "easy")
    plain = generate_items(300, seed=11)
    for it, p in zip(items, plain):
        assert np.array_equal(it.audio, p.audio)  # the trace draw never changes the audio
        q = JudgeRequest(it.question, tuple(it.choices), it.metadata["reasoning"], it.answer, record_facts(it))
        kind = it.metadata["trace"]
        assert rule_consistency(q) == (0.0 if kind == "inconsistent" else 1.0), it.metadata
        assert (rule_quality(q) < 1.0) == (kind == "flawed"), it.metadata  # inconsistent: every fact true
        if kind == "inconsistent":  # the correct trace up to its conclusion, which names the other option
            clean = it.metadata["reasoning_clean"]
            body = clean[: clean.rindex("So the answer is")]
            assert it.metadata["reasoning"].startswith(body) and not it.metadata["reasoning"].endswith(
                f"So the answer is {it.answer}.")


def test_misheard_traces_follow_from_their_own_claims():
    """A misheard trace (the flawed kind) is the correct trace of other tones: its states and conclusion follow."""
    task = TASKS["hard"][0]  # parity_high
    tones = [Tone("high", "loud"), Tone("low", "quiet"), Tone("high", "quiet")]  # two high: even
    assert trace_text(*task.describe(tones)) == (
        "Tone one is high. The count is one. Tone two is low. The count is one. Tone three is high. The count is two. "
        "Two is even. So the answer is even.")
    # One tone misheard flips the parity; no single flip keeps it (flawed), two do.
    assert [trace_text(*task.describe(t)) for t in misheard(task, tones, keep_answer=False)][1] == (
        "Tone one is high. The count is one. Tone two is high. The count is two. Tone three is high. "
        "The count is three. Three is odd. So the answer is odd.")
    assert len(misheard(task, tones, keep_answer=True)) == 3  # the three pairs of tones
    # Judged against the clip's facts (7: three tones, three counts, "two is even"): tone one, the first
    # count and tone three are true; tone two, the counts after it and "three is odd" (no such fact) are not.
    facts, _ = task.describe(tones)
    wrong = trace_text(*task.describe(misheard(task, tones, keep_answer=False)[1]))
    q = JudgeRequest(task.question, task.choices, wrong, "even", tuple(facts))
    assert rule_quality(q) == 0.4 and rule_consistency(q) == 0.0  # 3/7 true; concludes odd, answers even
    louder = TASKS["medium"][1]  # the quiet tone's pitch does not matter: one flip keeps the answer
    assert misheard(louder, [Tone("low", "quiet"), Tone("high", "loud")], keep_answer=True) == [
        [Tone("high", "quiet"), Tone("high", "loud")]]
    assert misheard(TASKS["easy"][0], [Tone("high", "loud")], keep_answer=True) == []


def _band(wav: np.ndarray) -> str:
    """'high' or 'low' from the strongest frequency of a stretch of signal."""
    spectrum = np.abs(np.fft.rfft(wav))
    freq = np.fft.rfftfreq(len(wav), 1 / SAMPLE_RATE)[spectrum.argmax()]
    return "high" if HIGH_HZ[0] <= freq <= HIGH_HZ[1] else "low" if LOW_HZ[0] <= freq <= LOW_HZ[1] else "?"


def _tone_at(wav: np.ndarray, k: int) -> np.ndarray:
    """The part of slot k that every tone covers (after the +-10 ms jitter and fade, before the shortest ends)."""
    a, b = (int((SLOT_START + SLOT_STEP * k + t) * SAMPLE_RATE) for t in (0.02, TONE_SECONDS[0] - 0.01))
    return wav[a:b]


def test_audio_encodes_the_facts(items):
    """Simple signal analysis of each slot recovers every tone's pitch and level, so the facts are about the audio."""
    for it in items:
        tone_facts = [v for s, v in it.metadata["facts"] if s.startswith("tone ") or s == "the tone"]
        for k, value in enumerate(tone_facts):
            piece = _tone_at(it.audio, k)
            for w in value.split(" and "):
                if w in ("high", "low"):
                    assert _band(piece) == w, (it.task, k, value)
                if w in ("loud", "quiet"):
                    assert ("loud" if np.abs(piece).max() > 0.3 else "quiet") == w, (it.task, k, value)


def test_tone_lengths_vary_so_summed_length_is_not_a_count(items):
    """Each tone's length is drawn from TONE_SECONDS: the loud tones' lengths (10 ms windows whose peak is above a
    quarter of the tone's) spread over most of the range, so the total length of the marked tones is not a count."""
    win = SAMPLE_RATE // 100
    lengths = []
    for it in items:
        tones = [v for s, v in it.metadata["facts"] if s.startswith("tone ") or s == "the tone"]
        for k, value in enumerate(tones):
            if "loud" in value.split(" and "):
                a = int((SLOT_START + SLOT_STEP * k - 0.02) * SAMPLE_RATE)
                env = np.abs(it.audio[a : a + 32 * win]).reshape(32, win).max(axis=1)
                lengths.append(float((env > 0.25 * env.max()).sum()) / 100)
    assert len(lengths) > 20
    assert TONE_SECONDS[0] - 0.02 <= min(lengths) <= TONE_SECONDS[0] + 0.04, min(lengths)
    assert TONE_SECONDS[1] - 0.04 <= max(lengths) <= TONE_SECONDS[1] + 0.02, max(lengths)


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


def test_cli_data_synth(tmp_path, capsys):
    from audiothinker.cli import main

    out = tmp_path / "syn"
    assert main(["data", "synth", "--out", str(out), "--size", "8", "--seed", "5", "--split", "test",
                 "--levels", "easy", "hard", "--flawed", "0.5"]) == 0
    recs = load_records(out / "test.jsonl", "jsonl").records
    assert len(recs) == 8 and {r.difficulty for r in recs} == {"easy", "hard"}
    assert recs[0].id == f"syn-{split_seed(5, 'test')}-00000" and all(r.metadata["facts"] for r in recs)
    assert len(list((out / "test").glob("*.wav"))) == 8
    assert main(["data", "synth", "--out", str(out), "--size", "8", "--levels", "easy", "expert"]) == 2
    assert "--levels" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(out), "--size", "0"]) == 2
    assert main(["data", "synth", "--out", str(out), "--size", "4", "--flawed", "0.7", "--inconsistent", "0.5"]) == 2
