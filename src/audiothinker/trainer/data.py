"""Training-set preparation and prompt batches (the I/O side of a step)."""

from __future__ import annotations

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
    """Load and validate the training set; records whose audio file is missing are found now,
    before any model work (an error listing them, or counted skips with data.on_error=skip)."""
    from audiothinker.data.loaders import load_records, missing_audio

    result = load_records(path, fmt, audio_root=cfg.data.audio_root, on_error=cfg.data.on_error)
    missing = missing_audio(result.records)
    if missing and cfg.data.on_error == "raise":
        listed = "; ".join(f"{r.id!r}: {r.audio}" for r in missing[:5])
        more = f"; ... {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"{path}: {len(missing)} records have no audio file ({listed}{more}); "
                        "fix data.audio_root or set data.on_error=skip")
    if missing:
        gone = {id(r) for r in missing}
        result.skipped.extend((f"{path} record {r.id!r}", f"audio file not found: {r.audio}") for r in missing)
        result.records = [r for r in result.records if id(r) not in gone]
    if not result.records:
        raise DataError(f"{path}: no usable records ({len(result.skipped)} skipped)")
    return result.records, result


def prompt_batch(
    policy: Any, records: list[AudioQA], prompt_kind: str, max_audio_seconds: float | None,
    max_prompt_length: int | None = None,
) -> PromptBatch:
    """Load each record's audio (mono, resampled, cut to the policy's window) and render the prompts.

    A policy with `uses_audio = False` (the text-only adapter) gets no audio: none is loaded.
    A prompt with more than `max_prompt_length` text tokens (audio placeholders not counted) is a
    DataError naming the record: truncating a question or its options would change the task.
    """
    if getattr(policy, "uses_audio", True):
        limit = min(max_audio_seconds or policy.max_audio_seconds, policy.max_audio_seconds)
        audios = [load_record_audio(r, policy.sampling_rate, max_seconds=limit, stats=AUDIO_STATS) for r in records]
    else:
        audios = [None] * len(records)
    messages = [chat_messages(r.question, r.choices, prompt_kind) for r in records]
    batch = policy.build_prompts(messages, audios)
    batch.waveforms, batch.sampling_rate = audios, policy.sampling_rate  # for engines that extract features themselves
    if max_prompt_length is not None:
        is_audio = torch.zeros_like(batch.input_ids, dtype=torch.bool)
        for tok in getattr(policy, "audio_token_ids", []):
            is_audio |= batch.input_ids == tok
        text_tokens = (batch.attention_mask.bool() & ~is_audio).sum(1)  # [B]
        for r, n in zip(records, text_tokens.tolist()):
            if n > max_prompt_length:
                raise DataError(
                    f"record {r.id!r}: prompt has {n} text tokens, more than rollout.max_prompt_length={max_prompt_length}"
                )
    return batch


def slice_batch(batch: PromptBatch, start: int, stop: int) -> PromptBatch:
    """Prompts [start:stop], with left-padding columns that are padding in every row dropped."""
    ids, mask = batch.input_ids[start:stop], batch.attention_mask[start:stop]
    keep = int(mask.any(0).long().argmax())  # first column that is not all padding
    return PromptBatch(
        ids[:, keep:], mask[:, keep:], {k: v[start:stop] for k, v in batch.audio.items()}, batch.texts[start:stop],
        batch.waveforms[start:stop], batch.sampling_rate,
    )
