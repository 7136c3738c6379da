"""Prompt batches: a policy's processed prompts and audio for a list of records.

Used by every entry point that runs a policy on records (GRPO, SFT, eval, the demo), so it lives
below the trainer: data loading and audio on one side, the policy adapter (models/) on the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from audiothinker.data.audio import AUDIO_STATS, load_record_audio
from audiothinker.data.records import AudioQA, DataError
from audiothinker.models.base import Policy, PromptBatch
from audiothinker.prompts import chat_messages


def _text_token_counts(policy: Policy, batch: PromptBatch) -> list[int]:
    """Text tokens per prompt (attention-masked, audio placeholder tokens not counted)."""
    is_audio = torch.zeros_like(batch.input_ids, dtype=torch.bool)
    for tok in policy.audio_token_ids:
        is_audio |= batch.input_ids == tok
    return (batch.attention_mask.bool() & ~is_audio).sum(1).tolist()  # [B]


def prompt_batch(
    policy: Policy, records: list[AudioQA], prompt_kind: str, max_audio_seconds: float | None,
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


def _render(policy: Policy, records: list[AudioQA], audios: list[Any], prompt_kind: str) -> PromptBatch:
    """The processed prompts of `records` with their clips, which the batch also carries raw (for
    engines such as vLLM that extract features themselves)."""
    batch = policy.build_prompts([chat_messages(r.question, r.choices, prompt_kind) for r in records], audios)
    batch.waveforms, batch.sampling_rate = audios, policy.sampling_rate
    return batch


def over_long_prompts(
    policy: Policy, records: list[AudioQA], prompt_kind: str, max_prompt_length: int, chunk: int = 64
) -> dict[int, str]:
    """{id(record): reason} for the records whose prompt has more than `max_prompt_length` text tokens.

    Checked before step 1 with a 1 s stand-in clip: audio placeholder tokens are not counted, so
    the count does not depend on the clip (one processor pass per `chunk` records, no decoding).
    """
    import numpy as np

    dummy = np.zeros(int(policy.sampling_rate), dtype=np.float32) if policy.uses_audio else None
    found: dict[int, str] = {}
    for start in range(0, len(records), chunk):
        part = records[start : start + chunk]
        batch = policy.build_prompts([chat_messages(r.question, r.choices, prompt_kind) for r in part], [dummy] * len(part))
        for r, n in zip(part, _text_token_counts(policy, batch)):
            if n > max_prompt_length:
                found[id(r)] = f"record {r.id!r}: prompt has {n} text tokens, more than rollout.max_prompt_length={max_prompt_length}"
    return found


def _record_audio(policy: Policy, record: AudioQA, max_audio_seconds: float | None):
    if not policy.uses_audio:
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
    policy: Policy, records: list[AudioQA], prompt_kind: str, max_audio_seconds: float | None,
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
