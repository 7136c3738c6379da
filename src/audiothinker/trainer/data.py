"""Training-set preparation and prompt batches (the I/O side of a step)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from audiothinker.config import Config
from audiothinker.data.audio import AUDIO_STATS, load_record_audio
from audiothinker.data.records import AudioQA, DataError
from audiothinker.models.base import PromptBatch
from audiothinker.prompts import chat_messages


def training_file(cfg: Config) -> tuple[str, str]:
    """(path, format) of the training set; the synthetic set is generated on first use."""
    if cfg.data.format != "synthetic":
        return str(cfg.data.train_file), cfg.data.format
    if cfg.data.train_file:
        return cfg.data.train_file, "jsonl"
    from audiothinker.data.synthetic import write_synthetic

    path = write_synthetic(Path(cfg.output_dir) / "data", cfg.data.synthetic_size, cfg.data.synthetic_seed, split="train")
    return str(path), "jsonl"


def load_training_records(path: str, fmt: str, cfg: Config) -> tuple[list[AudioQA], Any]:
    """Load and validate the training set; records whose audio file is missing, unreadable, empty
    or non-finite are found now, before any model work (an error naming them, or counted skips
    with data.on_error=skip). Every clip is decoded once (`scan_audio`, cached by file size and
    mtime under output_dir) so that step 31,337 does not meet a bad clip for the first time."""
    from audiothinker.data.loaders import load_records

    result = load_records(path, fmt, audio_root=cfg.data.audio_root, on_error=cfg.data.on_error)
    if not result.records:
        raise DataError(f"{path}: no records ({len(result.skipped)} skipped)" if result.skipped else f"{path}: the file has no records")
    cache = Path(cfg.output_dir) / "audio_scan.json" if cfg.data.scan_audio else None
    # Decoded up to the cut the policy will make (both audio families' encoders take 30 s windows):
    # a clip's tail past it is never used, and a 2-hour file is not read whole.
    scan_limit = cfg.data.max_audio_seconds or 30.0
    bad = scan_audio(result.records, scan_limit, cache, progress=cfg.log.progress) if cfg.data.scan_audio \
        else {id(r): f"audio file not found: {r.audio}" for r in _missing(result.records)}
    if bad and cfg.data.on_error == "raise":
        listed = "; ".join(f"{r.id!r}: {_reason(bad[id(r)])}" for r in [r for r in result.records if id(r) in bad][:5])
        more = f"; ... {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError(f"{path}: {len(bad)} records have unusable audio ({listed}{more}); "
                        "fix the files or data.audio_root, or set data.on_error=skip")
    if bad:
        result.skipped.extend((f"{path} record {r.id!r}", bad[id(r)]) for r in result.records if id(r) in bad)
        result.records = [r for r in result.records if id(r) not in bad]
    if not result.records:
        raise DataError(f"{path}: no usable records ({len(result.skipped)} skipped)")
    return result.records, result


def _reason(problem: str) -> str:
    """The problem without its 'record 'id' (path): ' prefix (the id is listed beside it)."""
    return problem.split("): ", 1)[1] if problem.startswith("record ") and "): " in problem else problem


def _missing(records: list[AudioQA]) -> list[AudioQA]:
    from audiothinker.data.loaders import missing_audio

    return missing_audio(records)


def scan_audio(
    records: list[AudioQA], max_seconds: float | None, cache_path: Path | None, progress: bool = False
) -> dict[int, str]:
    """Decode every record's clip once; {id(record): problem} for the unusable ones.

    Results are cached by (path, size, mtime) in `cache_path`, so a resumed run does not decode
    again. Silent and near-empty clips are usable: they are counted in the audio report instead.
    """
    import json

    from audiothinker.data.audio import AudioStats, is_silent, load_audio

    cache: dict[str, Any] = {}
    if cache_path is not None and cache_path.is_file():
        try:
            cache = json.loads(cache_path.read_text())
        except ValueError:
            cache = {}  # a cache cut short by a kill: decode again
    bad: dict[int, str] = {}
    files = [r for r in records if not hasattr(r.audio, "shape")]  # in-memory arrays were checked at load
    new = 0  # entries decoded now (the cache is written only then: other processes just read it)
    with _bar(progress and len(files) > 0, len(files), "scanning audio") as advance:
        for r in files:
            key = _file_key(r.audio, max_seconds)
            if key is None:
                bad[id(r)] = f"audio file not found: {r.audio}"
            elif key in cache:
                if cache[key].get("error"):
                    bad[id(r)] = cache[key]["error"]
            else:
                try:
                    wav = load_audio(r.audio, 16000, max_seconds=max_seconds, what=f"record {r.id!r} ({r.audio})",
                                     stats=AudioStats())
                    cache[key] = {"seconds": round(len(wav) / 16000, 3), "silent": is_silent(wav)}
                except DataError as e:
                    cache[key] = {"error": str(e)}
                    bad[id(r)] = str(e)
                new += 1
                if cache_path is not None and new % 2000 == 0:  # a kill mid-scan keeps most of the work
                    _write_json(cache_path, cache)
            advance(1)
    if cache_path is not None and new:
        _write_json(cache_path, cache)
    return bad


def _write_json(path: Path, obj: Any) -> None:
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj))
    tmp.replace(path)


def _file_key(path: str, max_seconds: float | None) -> str | None:
    import os

    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{max_seconds}"


def _bar(enabled: bool, total: int, label: str):
    """A rich progress bar context yielding advance(n); a no-op when disabled."""
    from contextlib import contextmanager

    @contextmanager
    def bar():
        if not enabled:
            yield lambda n: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as p:
            task = p.add_task(label, total=total)
            yield lambda n: p.advance(task, n)

    return bar()


def _text_token_counts(policy: Any, batch: PromptBatch) -> list[int]:
    """Text tokens per prompt (attention-masked, audio placeholder tokens not counted)."""
    is_audio = torch.zeros_like(batch.input_ids, dtype=torch.bool)
    for tok in getattr(policy, "audio_token_ids", []):
        is_audio |= batch.input_ids == tok
    return (batch.attention_mask.bool() & ~is_audio).sum(1).tolist()  # [B]


def prompt_batch(
    policy: Any, records: list[AudioQA], prompt_kind: str, max_audio_seconds: float | None,
    max_prompt_length: int | None = None,
) -> PromptBatch:
    """Load each record's audio (mono, resampled, cut to the policy's window) and render the prompts.

    A policy with `uses_audio = False` (the text-only adapter) gets no audio: none is loaded.
    A prompt with more than `max_prompt_length` text tokens (audio placeholders not counted) is a
    DataError naming the record: truncating a question or its options would change the task.
    """
    batch = _render(policy, records, [_record_audio(policy, r, max_audio_seconds) for r in records], prompt_kind)
    if max_prompt_length is not None:
        for r, n in zip(records, _text_token_counts(policy, batch)):
            if n > max_prompt_length:
                raise DataError(
                    f"record {r.id!r}: prompt has {n} text tokens, more than rollout.max_prompt_length={max_prompt_length}"
                )
    return batch


def _render(policy: Any, records: list[AudioQA], audios: list[Any], prompt_kind: str) -> PromptBatch:
    """The processed prompts of `records` with their clips, which the batch also carries raw (for
    engines such as vLLM that extract features themselves)."""
    batch = policy.build_prompts([chat_messages(r.question, r.choices, prompt_kind) for r in records], audios)
    batch.waveforms, batch.sampling_rate = audios, policy.sampling_rate
    return batch


def over_long_prompts(
    policy: Any, records: list[AudioQA], prompt_kind: str, max_prompt_length: int, chunk: int = 64
) -> dict[int, str]:
    """{id(record): reason} for the records whose prompt has more than `max_prompt_length` text tokens.

    Checked before step 1 with a 1 s stand-in clip: audio placeholder tokens are not counted, so
    the count does not depend on the clip (one processor pass per `chunk` records, no decoding).
    """
    import numpy as np

    dummy = np.zeros(int(policy.sampling_rate), dtype=np.float32) if getattr(policy, "uses_audio", True) else None
    found: dict[int, str] = {}
    for start in range(0, len(records), chunk):
        part = records[start : start + chunk]
        batch = policy.build_prompts([chat_messages(r.question, r.choices, prompt_kind) for r in part], [dummy] * len(part))
        for r, n in zip(part, _text_token_counts(policy, batch)):
            if n > max_prompt_length:
                found[id(r)] = f"record {r.id!r}: prompt has {n} text tokens, more than rollout.max_prompt_length={max_prompt_length}"
    return found


def drop_over_long_prompts(policy: Any, records: list[AudioQA], load_result: Any, cfg: Config, prompt_kind: str) -> list[AudioQA]:
    """The training set without over-long prompts: an error naming them (on_error=raise) or counted skips."""
    bad = over_long_prompts(policy, records, prompt_kind, cfg.rollout.max_prompt_length)
    if not bad:
        return records
    if cfg.data.on_error == "raise":
        listed = "; ".join(bad[id(r)] for r in [r for r in records if id(r) in bad][:5])
        raise DataError(f"{load_result.path}: {len(bad)} prompts are too long ({listed}); shorten them, raise "
                        "rollout.max_prompt_length or set data.on_error=skip")
    load_result.skipped.extend((f"{load_result.path} record {r.id!r}", bad[id(r)]) for r in records if id(r) in bad)
    kept = [r for r in records if id(r) not in bad]
    if not kept:
        raise DataError(f"{load_result.path}: no usable records ({len(load_result.skipped)} skipped)")
    load_result.records = kept
    return kept


def _record_audio(policy: Any, record: AudioQA, max_audio_seconds: float | None):
    if not getattr(policy, "uses_audio", True):
        return None
    limit = min(max_audio_seconds or policy.max_audio_seconds, policy.max_audio_seconds)
    return load_record_audio(record, policy.sampling_rate, max_seconds=limit, stats=AUDIO_STATS)


@dataclass
class Skip:
    """A record left out of a step (and what took its place, if anything)."""

    record: AudioQA
    reason: str
    replaced_by: str | None = None


def prompt_batch_skipping(
    policy: Any, records: list[AudioQA], prompt_kind: str, max_audio_seconds: float | None,
    max_prompt_length: int | None, pool: list[AudioQA] | None,
) -> tuple[PromptBatch | None, list[AudioQA], list[Skip]]:
    """`prompt_batch` for data.on_error=skip: a record whose clip fails to load (NaN/Inf, zero-byte,
    undecodable, vanished) or whose prompt is too long is left out of this step.

    With a `pool` (training) its place goes to the next usable record of the pool after it, so the
    batch keeps its size (every process its share, every group its G completions) and a resumed
    run makes the same choice; without one (eval) it is dropped. Returns (batch, records used, skips);
    the batch is None when every record was dropped.
    """
    skips: list[Skip] = []
    tried: set[str] = set()
    index = {r.id: i for i, r in enumerate(pool)} if pool else {}

    def load_or_replace(r: AudioQA | None) -> tuple[AudioQA, Any] | None:
        """The record and its audio, or the next usable one of the pool in its place (None: dropped)."""
        while r is not None:
            tried.add(r.id)
            try:
                return r, _record_audio(policy, r, max_audio_seconds)
            except DataError as e:
                nxt = _next_candidate(pool, index, r, tried)
                skips.append(Skip(r, str(e), nxt.id if nxt is not None else None))
                r = nxt
        return None

    chosen = [c for c in map(load_or_replace, records) if c is not None]
    while True:
        if not chosen:
            if not pool:
                return None, [], skips  # eval: every record of this chunk dropped
            raise DataError("no usable record in this batch: " + "; ".join(s.reason for s in skips[:3]))
        used = [r for r, _ in chosen]
        batch = _render(policy, used, [a for _, a in chosen], prompt_kind)
        counts = _text_token_counts(policy, batch) if max_prompt_length is not None else [0] * len(used)
        long = [i for i, n in enumerate(counts) if n > max_prompt_length] if max_prompt_length is not None else []
        if not long:
            return batch, used, skips
        for i in long:  # too long: replaced (or dropped) like a bad clip, then the batch is built again
            r = used[i]
            nxt = _next_candidate(pool, index, r, tried)
            reason = f"record {r.id!r}: prompt has {counts[i]} text tokens, more than rollout.max_prompt_length={max_prompt_length}"
            skips.append(Skip(r, reason, nxt.id if nxt is not None else None))
            chosen[i] = load_or_replace(nxt)  # type: ignore[call-overload]
        chosen = [c for c in chosen if c is not None]


def _next_candidate(pool, index, record, tried) -> AudioQA | None:
    """The first record after `record` in the pool (cyclic) not yet tried in this batch."""
    if not pool:
        return None
    start = index.get(record.id, -1)
    for k in range(1, len(pool) + 1):
        cand = pool[(start + k) % len(pool)]
        if cand.id not in tried:
            return cand
    return None


def slice_batch(batch: PromptBatch, start: int, stop: int) -> PromptBatch:
    """Prompts [start:stop], with left-padding columns that are padding in every row dropped."""
    ids, mask = batch.input_ids[start:stop], batch.attention_mask[start:stop]
    keep = int(mask.any(0).long().argmax())  # first column that is not all padding
    return PromptBatch(
        ids[:, keep:], mask[:, keep:], {k: v[start:stop] for k, v in batch.audio.items()}, batch.texts[start:stop],
        batch.waveforms[start:stop], batch.sampling_rate,
    )
