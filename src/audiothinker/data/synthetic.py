"""A deterministic synthetic audio QA set (tones, beeps, noise) for smoke tests and the tiny demo.

16 kHz mono clips of at most 2.0 s (the tiny test model's mel window; a hard limit). Six
question types, two per difficulty; easy ones are one act of perception, hard ones need
intermediate steps a small model can write down:

| difficulty | task          | question                                                   | choices                |
|------------|---------------|------------------------------------------------------------|------------------------|
| easy       | pitch         | Is the tone high or low?                                   | high, low              |
| easy       | presence      | Is there a tone or only noise?                             | tone, only noise       |
| medium     | count         | How many beeps are there?                                  | two, three, four       |
| medium     | order         | Which tone comes first, the high one or the low one?       | high, low              |
| hard       | majority      | Are there more high beeps or more low beeps?               | more high, more low    |
| hard       | loudest_pitch | Three tones play one after another. Is the loudest one ... | high, low              |

Item i's slot (difficulty, task, answer) depends only on i, cycling through difficulties,
then tasks, then answers, so every prefix is balanced (each answer of each task within one
of the others' count): always giving one option scores chance on every task. Its audio
depends only on (seed, i). Shortcuts are cut where cheap: in loudest_pitch the majority
pitch of the three tones is right only half the time.

Each record carries `metadata["reasoning"]`, a short correct think trace in plain words whose
last sentence names the answer ("So the answer is more high."), and `metadata["facts"]`, the
ground truth it was built from. Splits use different seeds: `split_seed(seed, "test")` is
seed + 1_000_003, so train and test clips never coincide.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiothinker.data.records import DIFFICULTIES, AudioQA

SAMPLE_RATE = 16_000
MAX_SECONDS = 2.0
"""Hard limit on clip length: the tiny test model sees 2 s of mel frames."""
SPLIT_SEED_OFFSETS = {"train": 0, "test": 1_000_003, "val": 2_000_006}
"""Seed offset of each split, so held-out items are drawn independently of the training ones."""
GENERATOR_VERSION = 1
"""Bump when the audio or texts change, so cached sets on disk are rewritten."""

LOW_HZ = (200.0, 350.0)
HIGH_HZ = (1200.0, 2000.0)
LEVELS = {"quiet": 0.08, "medium": 0.25, "loud": 0.75}  # peak amplitudes, ~10 dB apart
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six")
ORDINALS = ("first", "second", "third")


def split_seed(seed: int, split: str) -> int:
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLIT_SEED_OFFSETS)}")
    return seed + SPLIT_SEED_OFFSETS[split]


# --------------------------------------------------------------------------- signal pieces


def _tone(rng: np.random.Generator, pitch: str, seconds: float, amp: float) -> np.ndarray:
    """A sine of a random frequency in the pitch's band, with 10 ms fades against clicks."""
    lo, hi = HIGH_HZ if pitch == "high" else LOW_HZ
    freq = rng.uniform(lo, hi)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    wav = amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    fade = min(int(0.01 * SAMPLE_RATE), n // 2)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
    wav[:fade] *= ramp
    wav[n - fade :] *= ramp[::-1]
    return wav


def _sequence(rng: np.random.Generator, pieces: list[np.ndarray], gap: tuple[float, float], noise: float) -> np.ndarray:
    """Pieces separated by random gaps, placed at a random offset in a clip of at most MAX_SECONDS."""
    gaps = [int(rng.uniform(*gap) * SAMPLE_RATE) for _ in pieces[1:]]
    content = sum(len(p) for p in pieces) + sum(gaps)
    max_len = int(MAX_SECONDS * SAMPLE_RATE)
    total = int(rng.uniform(min(content + 0.1 * SAMPLE_RATE, max_len), max_len))
    start = int(rng.integers(0, total - content + 1))
    wav = rng.normal(0.0, noise, total)  # [T]
    pos = start
    for piece, g in zip(pieces, gaps + [0]):
        wav[pos : pos + len(piece)] += piece
        pos += len(piece) + g
    return np.clip(wav, -0.99, 0.99).astype(np.float32)


def _other(pitch: str) -> str:
    return "low" if pitch == "high" else "high"


def _words(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- tasks
# Each builder: (rng, answer) -> (audio [T], facts, reasoning). The answer is chosen by the slot.


def _pitch(rng: np.random.Generator, answer: str) -> tuple[np.ndarray, dict, str]:
    wav = _sequence(rng, [_tone(rng, answer, rng.uniform(0.6, 1.5), rng.uniform(0.2, 0.5))], (0, 0), 0.01)
    return wav, {"pitch": answer}, f"I hear one steady tone. It sounds {answer}. So the answer is {answer}."


def _presence(rng: np.random.Generator, answer: str) -> tuple[np.ndarray, dict, str]:
    noise = rng.uniform(0.03, 0.08)
    if answer == "tone":
        pitch = str(rng.choice(["high", "low"]))
        wav = _sequence(rng, [_tone(rng, pitch, rng.uniform(0.5, 1.2), rng.uniform(0.15, 0.35))], (0, 0), noise)
        return wav, {"tone": True, "pitch": pitch}, (
            f"I hear a hiss, and above it a steady {pitch} tone. So the answer is tone."
        )
    wav = _sequence(rng, [np.zeros(int(rng.uniform(0.5, 1.2) * SAMPLE_RATE))], (0, 0), noise)
    reasoning = "I hear a hiss that stays the same, with no steady pitch in it. So the answer is only noise."
    return wav, {"tone": False}, reasoning


def _count(rng: np.random.Generator, answer: str) -> tuple[np.ndarray, dict, str]:
    n = NUMBERS.index(answer)
    pitch = str(rng.choice(["high", "low"]))
    beep = _tone(rng, pitch, rng.uniform(0.12, 0.18), rng.uniform(0.2, 0.5))
    wav = _sequence(rng, [beep] * n, (0.12, 0.25), 0.01)
    counted = ", ".join(NUMBERS[1 : n + 1])
    return wav, {"beeps": n, "pitch": pitch}, (
        f"I count the beeps one by one: {counted}. There are {answer} beeps. So the answer is {answer}."
    )


def _order(rng: np.random.Generator, answer: str) -> tuple[np.ndarray, dict, str]:
    first, second = answer, _other(answer)
    tones = [_tone(rng, p, rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.5)) for p in (first, second)]
    wav = _sequence(rng, tones, (0.1, 0.3), 0.01)
    return wav, {"order": [first, second]}, (
        f"I hear two tones. The first tone is {first} and the second tone is {second}. "
        f"The {first} one comes first. So the answer is {answer}."
    )


def _majority(rng: np.random.Generator, answer: str) -> tuple[np.ndarray, dict, str]:
    pitch = answer.split()[-1]
    total = int(rng.integers(3, 7))
    more = int(rng.integers(total // 2 + 1, total))  # unequal counts, both pitches present
    seq = [pitch] * more + [_other(pitch)] * (total - more)
    seq = [seq[i] for i in rng.permutation(total)]
    dur, amp = rng.uniform(0.1, 0.13), rng.uniform(0.25, 0.5)
    wav = _sequence(rng, [_tone(rng, p, dur, amp) for p in seq], (0.08, 0.12), 0.01)
    n_high, n_low = seq.count("high"), seq.count("low")
    big, small = max(n_high, n_low), min(n_high, n_low)
    return wav, {"sequence": seq, "high": n_high, "low": n_low}, (
        f"I hear {_words(seq)}. That is {NUMBERS[n_high]} high {'beep' if n_high == 1 else 'beeps'} and "
        f"{NUMBERS[n_low]} low {'beep' if n_low == 1 else 'beeps'}. {NUMBERS[big].capitalize()} is more than "
        f"{NUMBERS[small]}, so there are more {pitch} beeps. So the answer is {answer}."
    )


def _loudest_pitch(rng: np.random.Generator, answer: str) -> tuple[np.ndarray, dict, str]:
    levels = [str(x) for x in rng.permutation(list(LEVELS))]
    loud = levels.index("loud")
    # The two softer tones: both the other pitch, or one of each, with equal chance, so the
    # majority pitch of the clip is right only half the time.
    others = [_other(answer)] * 2 if rng.random() < 0.5 else [answer, _other(answer)]
    others = [others[i] for i in rng.permutation(2)]
    pitches = others[:loud] + [answer] + others[loud:]
    dur = rng.uniform(0.35, 0.45)
    wav = _sequence(rng, [_tone(rng, p, dur, LEVELS[lv]) for p, lv in zip(pitches, levels)], (0.1, 0.15), 0.005)
    described = " ".join(
        f"The {ORDINALS[i]} tone is {lv} and {p}." for i, (p, lv) in enumerate(zip(pitches, levels))
    )
    facts = {"pitches": pitches, "levels": levels, "loudest": loud + 1}
    return wav, facts, (
        f"{described} The loudest one is the {ORDINALS[loud]} tone. Its pitch is {answer}. So the answer is {answer}."
    )


@dataclass(frozen=True)
class Task:
    name: str
    difficulty: str
    question: str
    choices: tuple[str, ...]
    build: Callable[[np.random.Generator, str], tuple[np.ndarray, dict, str]]


TASKS: dict[str, tuple[Task, ...]] = {
    "easy": (
        Task("pitch", "easy", "Is the tone high or low?", ("high", "low"), _pitch),
        Task("presence", "easy", "Is there a tone or only noise?", ("tone", "only noise"), _presence),
    ),
    "medium": (
        Task("count", "medium", "How many beeps are there?", ("two", "three", "four"), _count),
        Task("order", "medium", "Which tone comes first, the high one or the low one?", ("high", "low"), _order),
    ),
    "hard": (
        Task("majority", "hard", "Are there more high beeps or more low beeps?", ("more high", "more low"), _majority),
        Task(
            "loudest_pitch", "hard",
            "Three tones play one after another. Is the loudest one high or low?", ("high", "low"), _loudest_pitch,
        ),
    ),
}


def _slot(i: int, difficulties: Sequence[str]) -> tuple[Task, str]:
    """Item i's task and answer: round-robin over difficulties, then tasks, then answers."""
    d = len(difficulties)
    tasks = TASKS[difficulties[i % d]]
    task = tasks[(i // d) % len(tasks)]
    return task, task.choices[(i // (d * len(tasks))) % len(task.choices)]


def generate_items(
    n: int, seed: int, difficulties: Sequence[str] = DIFFICULTIES
) -> list[AudioQA]:
    """n synthetic items with in-memory audio (float32 [T] at 16 kHz); the same (n, seed) gives the same items."""
    unknown = [d for d in difficulties if d not in TASKS]
    if unknown or not difficulties:
        raise ValueError(f"unknown difficulties {unknown or difficulties!r}; valid: {list(TASKS)}")
    items = []
    for i in range(n):
        task, answer = _slot(i, difficulties)
        rng = np.random.default_rng([seed, i])  # item i does not depend on n
        wav, facts, reasoning = task.build(rng, answer)
        assert len(wav) <= MAX_SECONDS * SAMPLE_RATE, (task.name, len(wav))
        items.append(
            AudioQA(
                id=f"syn-{seed}-{i:05d}",
                audio=wav,
                question=task.question,
                choices=list(task.choices),
                answer=answer,
                sampling_rate=SAMPLE_RATE,
                task=task.name,
                category="synthetic",
                difficulty=task.difficulty,
                metadata={"reasoning": reasoning, "facts": facts},
            )
        )
    return items


def write_synthetic(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int,
    split: str = "train",
    difficulties: Sequence[str] = DIFFICULTIES,
) -> Path:
    """Write <out_dir>/<split>.jsonl (our `jsonl` schema) and <out_dir>/<split>/*.wav; return the JSONL path.

    The split picks the seed (`split_seed`). Idempotent: a set already on disk with the same
    parameters is kept as is; otherwise it is rewritten and stale WAVs of the split removed.
    The JSONL is renamed into place last, so an interrupted write never looks complete.
    """
    out_dir = Path(out_dir)
    jsonl = out_dir / f"{split}.jsonl"
    wav_dir = out_dir / split
    params = {"n": n, "seed": split_seed(seed, split), "difficulties": list(difficulties), "version": GENERATOR_VERSION}
    stamp = out_dir / f"{split}.params.json"
    if _is_complete(jsonl, stamp, wav_dir, params):
        return jsonl

    stamp.unlink(missing_ok=True)  # a half-rewritten set must not pass for the old one
    items = generate_items(n, params["seed"], difficulties)
    wav_dir.mkdir(parents=True, exist_ok=True)
    lines, names = [], set()
    for item in items:
        name = f"{item.id}.wav"
        names.add(name)
        sf.write(wav_dir / name, item.audio, SAMPLE_RATE, subtype="PCM_16")
        lines.append(json.dumps(_jsonl_row(item, f"{split}/{name}"), sort_keys=True))
    for stale in wav_dir.glob("*.wav"):
        if stale.name not in names:
            stale.unlink()
    tmp = jsonl.with_suffix(".jsonl.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, jsonl)
    stamp.write_text(json.dumps(params, sort_keys=True))
    return jsonl


def _is_complete(jsonl: Path, stamp: Path, wav_dir: Path, params: dict[str, Any]) -> bool:
    try:
        same = json.loads(stamp.read_text()) == params
    except (OSError, ValueError):
        return False
    return same and jsonl.is_file() and sum(1 for _ in wav_dir.glob("*.wav")) == params["n"]


def _jsonl_row(item: AudioQA, audio: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "audio": audio,
        "question": item.question,
        "choices": item.choices,
        "answer": item.answer,
        "task": item.task,
        "category": item.category,
        "difficulty": item.difficulty,
        "sampling_rate": item.sampling_rate,
        "metadata": item.metadata,
    }
