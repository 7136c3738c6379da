"""Training-set preparation: the training file, its records checked before step 1.

Prompt batches (`prompt_batch`, `slice_batch`) live in data/batching.py, the audio scan in
data/scan.py: eval, SFT and the demo use them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiothinker.config import Config
from audiothinker.data.batching import over_long_prompts
from audiothinker.data.records import AudioQA, DataError
from audiothinker.data.scan import scan_audio
from audiothinker.models.base import Policy


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


def drop_over_long_prompts(policy: Policy, records: list[AudioQA], load_result: Any, cfg: Config, prompt_kind: str) -> list[AudioQA]:
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


