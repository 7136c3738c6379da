"""A deterministic synthetic audio QA set (tones on a fixed slot grid) for tests and the tiny demo.

16 kHz mono clips of at most 2.0 s (the tiny models' shortest mel window). Tones sit on a
fixed grid of slots (tone k starts at 0.1 + 0.3 k s and lasts 0.08 to 0.26 s, drawn per tone),
so "tone three" is one act of perception at a known place, for the model as for a listener. Six question types, two
per difficulty; the difficulty is the number of perceptions and how they combine:

| difficulty | task         | question                                                  | choices         |
|------------|--------------|-----------------------------------------------------------|-----------------|
| easy       | pitch        | Is the tone high or low?                                  | high, low       |
| easy       | loudness     | Is the tone loud or quiet?                                | loud, quiet     |
| medium     | same_pitch   | Do the two tones have the same pitch?                     | same, different |
| medium     | louder_pitch | Is the louder of the two tones high or low?               | high, low       |
| hard       | parity_high  | Is the number of high tones odd or even? (3 or 4 tones)   | odd, even       |
| hard       | parity_loud  | Is the number of loud tones odd or even? (3 or 4 tones)   | odd, even       |

Easy items are one perception. Medium items combine two (an XOR, a lookup). Hard items are
the parity of 3 or 4 perceptions: parity is the textbook function a shallow network cannot
compute in one pass from pooled features (it is not monotone in the count, and the count is
not fixed), yet it is one easy step per tone once each tone and a running count are written
down, which is what the think traces do ("Tone one is high. The count is one. Tone two is low.
The count is one. Tone three is high. The count is two. Two is even. So the answer is even."):
each count is the previous one plus the tone just stated, the last count's parity is a fixed
lookup, and the conclusion copies it. (A running parity, "So far odd.", was measured to be
harder for the tiny model: it needs the latest of several states, a count does not.) Tone
lengths vary so that the shortcut a one-pass model finds, adding up how long the high (or loud)
band sounds, gives the parity less often: with every tone 0.2 s long, the cold start's direct
answers to parity_high reached 92 % at seed 43 (2400 steps); with lengths of 0.08-0.26 s, 48 %
(100 % when thinking). Weakened, not removed: read exactly, the summed length with the number of
tones still gives the parity of 85 % of hard items (benchmarks/parity_shortcut.py), and at a few
seeds the direct path learns part of a parity (docs/demo.md, "The length shortcut"). Hard items
of five tones with the counts written as digits were landed for one session and reverted: over
eleven seeds both designs ran they held fewer checks (docs/demo.md, section "Five tones with digit
counts: landed for one session, then reverted").

Item i's slot (difficulty, task, answer) depends only on i, cycling through difficulties, then
tasks, then answers, so every prefix is balanced: always giving one option scores chance on
every task. Its audio depends only on (seed, i).

Each record carries `metadata["facts"]`: the true claims about the clip, an ordered list of
[subject, value] pairs in the words of the traces ("tone two" is "loud and high", "the count" is
"two", "two" is "even"), and `metadata["reasoning"]`, the cold-start think trace: a chain of
claims "<Subject> is <value>." ending on "So the answer is <option>.". A share
of traces is flawed and a share inconsistent, as real models' traces are (the paper's motivating
example): a flawed trace is the correct trace of misheard tones that keep the answer (false
claims, each step following from the claims before it, right conclusion); an inconsistent trace
states every fact right and then concludes another option than the last claim gives, while the
<answer> stays right (the think block concludes one option, the answer names another: what R_c
is for). `metadata["trace"]` names the kind and `metadata["reasoning_clean"]` keeps the correct one.
The rule judge (`judge.rule`) checks traces against the facts. Splits use different seeds:
`split_seed(seed, "test")` is seed + 1_000_003, so train and test clips never coincide.
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
"""Hard limit on clip length: the shortest tiny model sees 2 s of mel frames."""
SPLIT_SEED_OFFSETS = {"train": 0, "test": 1_000_003, "val": 2_000_006}
"""Seed offset of each split, so held-out items are drawn independently of the training ones."""
GENERATOR_VERSION = 9
"""Bump when the audio or texts change, so cached sets on disk are rewritten."""

LOW_HZ = (200.0, 350.0)
HIGH_HZ = (1200.0, 2000.0)
LOUD_AMP = (0.45, 0.8)
QUIET_AMP = (0.015, 0.03)  # ~27 dB below loud
SLOT_START, SLOT_STEP = 0.1, 0.3
TONE_SECONDS = (0.08, 0.26)
"""Each tone's length is drawn from this range (s), so the summed length of the high (or loud) tones gives their
number's parity less often (85 % of hard items read exactly, 100 % with one length: benchmarks/parity_shortcut.py)."""
NOISE = 0.004
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six")
TRACE_KINDS = ("correct", "flawed", "inconsistent")


def split_seed(seed: int, split: str) -> int:
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(f"unknown split {split!r}; valid: {sorted(SPLIT_SEED_OFFSETS)}")
    return seed + SPLIT_SEED_OFFSETS[split]


# --------------------------------------------------------------------------- signal


@dataclass(frozen=True)
class Tone:
    pitch: str  # high | low
    level: str  # loud | quiet


def _tone_wave(rng: np.random.Generator, tone: Tone) -> np.ndarray:
    """A sine of a random frequency in the pitch's band and amplitude in the level's range, 10 ms fades."""
    lo, hi = HIGH_HZ if tone.pitch == "high" else LOW_HZ
    amp = rng.uniform(*(LOUD_AMP if tone.level == "loud" else QUIET_AMP))
    n = int(rng.uniform(*TONE_SECONDS) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    wav = amp * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 2 * np.pi))
    fade = int(0.01 * SAMPLE_RATE)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
    wav[:fade] *= ramp
    wav[n - fade :] *= ramp[::-1]
    return wav


def render(rng: np.random.Generator, tones: Sequence[Tone]) -> np.ndarray:
    """Tone k in slot k (start 0.1 + 0.3 k s, +-10 ms jitter) over faint noise; clip ends 0.1-0.3 s after the last."""
    end = SLOT_START + SLOT_STEP * (len(tones) - 1) + TONE_SECONDS[1] + rng.uniform(0.1, 0.3)
    total = min(int(end * SAMPLE_RATE), int(MAX_SECONDS * SAMPLE_RATE))
    wav = rng.normal(0.0, NOISE, total)  # [T]
    for k, tone in enumerate(tones):
        piece = _tone_wave(rng, tone)
        pos = int((SLOT_START + SLOT_STEP * k + rng.uniform(-0.01, 0.01)) * SAMPLE_RATE)
        wav[pos : pos + len(piece)] += piece
    return np.clip(wav, -0.99, 0.99).astype(np.float32)


def _other(x: str) -> str:
    return {"high": "low", "low": "high", "loud": "quiet", "quiet": "loud", "odd": "even", "even": "odd",
            "same": "different", "different": "same"}[x]


def _random_tone(rng: np.random.Generator, pitch: str | None = None, level: str | None = None) -> Tone:
    return Tone(pitch or str(rng.choice(["high", "low"])), level or str(rng.choice(["loud", "quiet"])))


# --------------------------------------------------------------------------- tasks
# Each task draws tones for a given answer (`draw`) and describes any tones (`describe`): the ordered
# claims [(subject, value)] a listener writes down, and the answer they lead to. The correct trace
# describes the clip's tones; a flawed trace describes misheard tones.


Facts = list[tuple[str, str]]


def _pitch_draw(rng: np.random.Generator, answer: str) -> list[Tone]:
    return [_random_tone(rng, pitch=answer)]


def _pitch_describe(tones: Sequence[Tone]) -> tuple[Facts, str]:
    return [("the tone", tones[0].pitch)], tones[0].pitch


def _loudness_draw(rng: np.random.Generator, answer: str) -> list[Tone]:
    return [_random_tone(rng, level=answer)]


def _loudness_describe(tones: Sequence[Tone]) -> tuple[Facts, str]:
    return [("the tone", tones[0].level)], tones[0].level


def _same_pitch_draw(rng: np.random.Generator, answer: str) -> list[Tone]:
    first = _random_tone(rng)
    return [first, _random_tone(rng, pitch=first.pitch if answer == "same" else _other(first.pitch))]


def _same_pitch_describe(tones: Sequence[Tone]) -> tuple[Facts, str]:
    return [("tone one", tones[0].pitch), ("tone two", tones[1].pitch)], \
        "same" if tones[0].pitch == tones[1].pitch else "different"


def _louder_pitch_draw(rng: np.random.Generator, answer: str) -> list[Tone]:
    loud_first = bool(rng.random() < 0.5)
    other_pitch = str(rng.choice(["high", "low"]))  # the quiet tone's pitch is independent of the answer
    loud, quiet = Tone(answer, "loud"), Tone(other_pitch, "quiet")
    return [loud, quiet] if loud_first else [quiet, loud]


def _louder_pitch_describe(tones: Sequence[Tone]) -> tuple[Facts, str]:
    k = 0 if tones[0].level == "loud" else 1
    facts = [(f"tone {NUMBERS[i + 1]}", f"{t.level} and {t.pitch}") for i, t in enumerate(tones)]
    return facts + [("the louder", f"tone {NUMBERS[k + 1]}")], tones[k].pitch


def _parity(attribute: str, marked: str) -> tuple[Callable, Callable]:
    """Parity of the tones whose `attribute` is `marked`: the trace keeps a running count ("The count is two."),
    then states the last count's parity ("Two is even."), which the conclusion copies."""

    def draw(rng: np.random.Generator, answer: str) -> list[Tone]:
        n = int(rng.integers(3, 5))
        while True:  # rejection keeps every count of the right parity possible (0 to n)
            tones = [_random_tone(rng) for _ in range(n)]
            if (sum(getattr(t, attribute) == marked for t in tones) % 2 == 1) == (answer == "odd"):
                return tones

    def describe(tones: Sequence[Tone]) -> tuple[Facts, str]:
        facts: Facts = []
        count = 0
        for k, t in enumerate(tones):
            count += getattr(t, attribute) == marked
            facts += [(f"tone {NUMBERS[k + 1]}", getattr(t, attribute)), ("the count", NUMBERS[count])]
        parity = "odd" if count % 2 else "even"
        return facts + [(NUMBERS[count], parity)], parity

    return draw, describe


@dataclass(frozen=True)
class Task:
    name: str
    difficulty: str
    question: str
    choices: tuple[str, ...]
    draw: Callable[[np.random.Generator, str], list[Tone]]
    """(rng, answer) -> tones whose answer it is."""
    describe: Callable[[Sequence[Tone]], tuple[Facts, str]]
    """tones -> (the claims about them, in trace order; the answer they give)."""
    heard: str
    """The attribute the trace states ("pitch" or "level"): what a flawed trace mishears."""


_PARITY_HIGH, _PARITY_LOUD = _parity("pitch", "high"), _parity("level", "loud")
TASKS: dict[str, tuple[Task, ...]] = {
    "easy": (
        Task("pitch", "easy", "Is the tone high or low?", ("high", "low"), _pitch_draw, _pitch_describe, "pitch"),
        Task("loudness", "easy", "Is the tone loud or quiet?", ("loud", "quiet"), _loudness_draw, _loudness_describe,
             "level"),
    ),
    "medium": (
        Task("same_pitch", "medium", "Do the two tones have the same pitch?", ("same", "different"), _same_pitch_draw,
             _same_pitch_describe, "pitch"),
        Task("louder_pitch", "medium", "Is the louder of the two tones high or low?", ("high", "low"),
             _louder_pitch_draw, _louder_pitch_describe, "pitch"),
    ),
    "hard": (
        Task("parity_high", "hard", "Is the number of high tones odd or even?", ("odd", "even"), *_PARITY_HIGH,
             "pitch"),
        Task("parity_loud", "hard", "Is the number of loud tones odd or even?", ("odd", "even"), *_PARITY_LOUD,
             "level"),
    ),
}


# --------------------------------------------------------------------------- traces


def trace_text(facts: Sequence[tuple[str, str]], conclusion: str) -> str:
    """The think trace: one sentence per claim ("Tone one is high."), then "So the answer is X."."""
    return " ".join(f"{s[0].upper()}{s[1:]} is {v}." for s, v in facts) + f" So the answer is {conclusion}."


def _mishear(tones: Sequence[Tone], ks: Sequence[int], attribute: str) -> list[Tone]:
    out = list(tones)
    for k in ks:
        t = out[k]
        out[k] = Tone(_other(t.pitch), t.level) if attribute == "pitch" else Tone(t.pitch, _other(t.level))
    return out


def misheard(task: Task, tones: Sequence[Tone], keep_answer: bool) -> list[list[Tone]]:
    """Every way to mishear one tone (else two) of the clip that keeps (keep_answer) or changes the answer."""
    _, answer = task.describe(tones)
    for n in (1, 2):
        pairs = [ks for ks in _index_sets(len(tones), n)]
        found = [heard for ks in pairs
                 if (task.describe(heard := _mishear(tones, ks, task.heard))[1] == answer) == keep_answer]
        if found:
            return found
    return []


def _index_sets(n: int, size: int) -> list[tuple[int, ...]]:
    return [(k,) for k in range(n)] if size == 1 else [(a, b) for a in range(n) for b in range(a + 1, n)]


def cold_start_trace(rng: np.random.Generator, task: Task, tones: Sequence[Tone],
                     shares: tuple[float, float]) -> tuple[str, str]:
    """(kind, trace): correct, flawed or inconsistent; drawn after the audio, so it never changes it.

    flawed: the correct trace of misheard tones that keep the answer (one quiet tone's pitch, or two
    tones), so every step follows from the claims before it but some claims are false; an easy item
    has no such flaw, its "flawed" draw gives a correct trace. inconsistent: every claim true, and
    the conclusion ("So the answer is X.") names another option than the last claim gives, while the
    <answer> stays right: the think block concludes one option and the answer names another.
    shares: (flawed, inconsistent) probabilities.
    """
    u = rng.random()
    kind = "flawed" if u < shares[0] else "inconsistent" if u < shares[0] + shares[1] else "correct"
    facts, answer = task.describe(tones)
    if kind == "inconsistent":
        return kind, trace_text(facts, next(c for c in task.choices if c != answer))
    if kind == "flawed":
        options = misheard(task, tones, keep_answer=True)
        if options:
            return kind, trace_text(*task.describe(options[int(rng.integers(len(options)))]))
    return "correct", trace_text(facts, answer)


# --------------------------------------------------------------------------- items


def _slot(i: int, difficulties: Sequence[str]) -> tuple[Task, str]:
    """Item i's task and answer: round-robin over difficulties, then tasks, then answers."""
    d = len(difficulties)
    tasks = TASKS[difficulties[i % d]]
    task = tasks[(i // d) % len(tasks)]
    return task, task.choices[(i // (d * len(tasks))) % len(task.choices)]


def check_levels(difficulties: Sequence[str]) -> None:
    unknown = [d for d in difficulties if d not in TASKS]
    if unknown or not difficulties:
        raise ValueError(f"unknown difficulties {unknown or list(difficulties)!r}; valid: {list(TASKS)}")


def generate_items(n: int, seed: int, difficulties: Sequence[str] = DIFFICULTIES,
                   trace_shares: tuple[float, float] = (0.0, 0.0)) -> list[AudioQA]:
    """n items with in-memory audio (float32 [T] at 16 kHz); the same (n, seed) gives the same items.

    trace_shares: (flawed, inconsistent) shares of the cold-start traces (metadata["reasoning"]).
    """
    check_levels(difficulties)
    items = []
    for i in range(n):
        task, answer = _slot(i, difficulties)
        rng = np.random.default_rng([seed, i])  # item i does not depend on n
        tones = task.draw(rng, answer)
        facts, said = task.describe(tones)
        assert said == answer, (task.name, tones)
        wav = render(rng, tones)
        assert len(wav) <= MAX_SECONDS * SAMPLE_RATE, (task.name, len(wav))
        kind, reasoning = cold_start_trace(rng, task, tones, trace_shares)
        items.append(AudioQA(
            id=f"syn-{seed}-{i:05d}", audio=wav, question=task.question, choices=list(task.choices),
            answer=answer, sampling_rate=SAMPLE_RATE, task=task.name, category="synthetic",
            difficulty=task.difficulty,
            metadata={"reasoning": reasoning, "trace": kind, "reasoning_clean": trace_text(facts, answer),
                      "facts": [list(f) for f in facts]},
        ))
    return items


def write_synthetic(
    out_dir: str | os.PathLike[str],
    n: int,
    seed: int,
    split: str = "train",
    difficulties: Sequence[str] = DIFFICULTIES,
    trace_shares: tuple[float, float] = (0.0, 0.0),
) -> Path:
    """Write <out_dir>/<split>.jsonl (our `jsonl` schema) and <out_dir>/<split>/*.wav; return the JSONL path.

    The split picks the seed (`split_seed`). Idempotent: a set already on disk with the same
    parameters is kept as is; otherwise it is rewritten and stale WAVs of the split removed.
    The JSONL is renamed into place last, so an interrupted write never looks complete.
    """
    check_levels(difficulties)
    out_dir = Path(out_dir)
    jsonl = out_dir / f"{split}.jsonl"
    wav_dir = out_dir / split
    params = {"n": n, "seed": split_seed(seed, split), "difficulties": list(difficulties),
              "trace_shares": list(trace_shares), "version": GENERATOR_VERSION}
    stamp = out_dir / f"{split}.params.json"
    if _is_complete(jsonl, stamp, wav_dir, params):
        return jsonl

    stamp.unlink(missing_ok=True)  # a half-rewritten set must not pass for the old one
    items = generate_items(n, params["seed"], difficulties, trace_shares)
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
