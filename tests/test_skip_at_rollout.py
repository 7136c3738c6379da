"""Issue 11, class 1: data.on_error=skip holds everywhere. Bad clips are found at load (every clip
decoded once, cached); a clip that goes bad later, or an over-long prompt, is replaced for that
step, counted, named at the end and in output_dir/skipped.jsonl; --resume does not die there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiothinker.config import load_config
from audiothinker.data.records import DataError

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny_cpu.yaml"
SMALL = ["max_steps=3", "save_steps=0", "rollout.max_new_tokens=8", "rollout.num_generations=2",
         "train.per_device_batch_size=2", "train.gradient_accumulation_steps=1", "log.report_to=[jsonl]",
         "log.progress=false", "data.format=jsonl", "data.shuffle=false"]


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    """6 synthetic records as files (syn-7-00000 ... 00005); the test damages some."""
    from audiothinker.data.synthetic import write_synthetic

    monkeypatch.setenv("AUDIOTHINKER_CACHE", str(Path.home() / ".cache" / "audiothinker"))
    path = write_synthetic(tmp_path / "data", 6, 7, split="train")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return path, rows


def _audio(path: Path, rows, i: int) -> Path:
    return path.parent / rows[i]["audio"]


def _nan_clip(p: Path) -> None:
    wav = np.full(1600, 0.1, dtype=np.float32)
    wav[10] = np.nan
    sf.write(p, wav, 16000, subtype="FLOAT")


def _cfg(tmp_path, path, *extra):
    return load_config(RECIPE, [f"output_dir={tmp_path / 'run'}", f"data.train_file={path}", *SMALL, *extra])


def _jsonl(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def test_bad_clips_are_found_at_load_naming_each_record(dataset, tmp_path):
    from audiothinker.trainer.data import load_training_records

    path, rows = dataset
    _nan_clip(_audio(path, rows, 1))
    _audio(path, rows, 2).write_bytes(b"")  # zero-byte
    _audio(path, rows, 3).write_bytes(b"RIFF....not a wave at all")  # undecodable
    sf.write(_audio(path, rows, 4), np.zeros(16000, dtype=np.float32), 16000)  # silent: usable, counted
    cfg = _cfg(tmp_path, path)
    with pytest.raises(DataError) as err:
        load_training_records(str(path), "jsonl", cfg)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 3 records have unusable audio")
    assert "'syn-7-00001': audio contains NaN" in msg and "'syn-7-00002'" in msg and "'syn-7-00003'" in msg
    assert "syn-7-00004" not in msg

    cfg = _cfg(tmp_path, path, "data.on_error=skip")
    records, result = load_training_records(str(path), "jsonl", cfg)
    assert [r.id for r in records] == ["syn-7-00000", "syn-7-00004", "syn-7-00005"]
    assert [where for where, _ in result.skipped] == [f"{path} record 'syn-7-0000{i}'" for i in (1, 2, 3)]
    cache = json.loads((tmp_path / "run" / "audio_scan.json").read_text())
    assert sum("error" in v for v in cache.values()) == 3 and sum(v.get("silent", False) for v in cache.values()) == 1


def test_scan_results_are_cached_and_refreshed_when_a_file_changes(dataset, tmp_path, monkeypatch):
    import audiothinker.data.audio as audio
    from audiothinker.data.scan import scan_audio
    from audiothinker.data.loaders import load_records

    path, rows = dataset
    records = load_records(path, "jsonl").records
    cache = tmp_path / "scan.json"
    assert scan_audio(records, None, cache) == {}
    calls = []
    real = audio.load_audio
    monkeypatch.setattr(audio, "load_audio", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    assert scan_audio(records, None, cache) == {} and calls == []  # all from the cache
    _nan_clip(_audio(path, rows, 5))
    bad = scan_audio(records, None, cache)
    assert calls == [str(_audio(path, rows, 5))] and "NaN" in bad[id(records[5])]


def test_a_clip_that_fails_at_rollout_is_replaced_counted_and_resume_goes_on(dataset, tmp_path, capsys):
    from audiothinker.trainer.grpo import train

    path, rows = dataset
    # Not scanned (as if it broke after the scan): met at step 1, and again at step 4 after the resume,
    # when the 6-record set wraps around (batch 2, no shuffle: steps see 0-1, 2-3, 4-5, 0-1).
    _nan_clip(_audio(path, rows, 1))
    extra = ["data.scan_audio=false", "data.on_error=skip", "max_steps=4"]
    with pytest.raises(DataError, match=r"record 'syn-7-00001' .*NaN"):
        train(_cfg(tmp_path, path, "data.scan_audio=false"))  # raise: the error names the record

    ckpt = train(_cfg(tmp_path, path, *extra, "stop_at_step=1"))
    assert ckpt.name == "step-000001"
    err = capsys.readouterr().err
    assert "warning: step 1: skipped record 'syn-7-00001'" in err and "replaced by 'syn-7-00002'" in err
    assert "1 records skipped (0 at load, 1 during training)" in err
    final = train(_cfg(tmp_path, path, *extra), resume=True)
    assert (final / "model.safetensors").exists()
    skipped = _jsonl(tmp_path / "run" / "skipped.jsonl")
    assert [(s["step"], s["id"], s["replaced_by"]) for s in skipped] == [(1, "syn-7-00001", "syn-7-00002"),
                                                                          (4, "syn-7-00001", "syn-7-00002")]
    samples = _jsonl(tmp_path / "run" / "samples.jsonl")
    assert "syn-7-00001" not in {s["id"] for s in samples}
    assert [m["step"] for m in _jsonl(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3, 4]


def test_an_over_long_prompt_is_found_before_step_1(dataset, tmp_path, monkeypatch):
    import audiothinker.trainer.grpo as grpo

    path, rows = dataset
    rows[0]["question"] = "Is the tone high or low? " * 60
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    steps = []
    real_step = grpo.grpo_step
    monkeypatch.setattr(grpo, "grpo_step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    with pytest.raises(DataError, match=r"1 prompts are too long \(record 'syn-7-00000': prompt has \d+ text tokens, "
                                        r"more than rollout.max_prompt_length=200"):
        grpo.train(_cfg(tmp_path, path, "rollout.max_prompt_length=200", "max_steps=1"))
    assert steps == []  # before any step
    grpo.train(_cfg(tmp_path, path, "rollout.max_prompt_length=200", "max_steps=1", "data.on_error=skip"))
    (row,) = _jsonl(tmp_path / "run" / "skipped.jsonl")
    assert row["step"] == 0 and "syn-7-00000" in row["where"] and "max_prompt_length" in row["reason"]


def test_an_over_long_prompt_met_at_rollout_is_replaced_by_the_next_record(dataset):
    from audiothinker.config import ModelConfig
    from audiothinker.data.loaders import load_records
    from audiothinker.models.loading import load_policy
    from audiothinker.data.batching import prompt_batch_skipping

    path, rows = dataset
    rows[0]["question"] = "Is the tone high or low? " * 60
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = load_records(path, "jsonl").records
    policy = load_policy(ModelConfig(dtype="float32"))
    batch, used, skips = prompt_batch_skipping(policy, records[:2], "adaptive", None, 200, pool=records)
    assert [r.id for r in used] == ["syn-7-00002", "syn-7-00001"] and batch.input_ids.shape[0] == 2
    assert [(s.record.id, s.replaced_by) for s in skips] == [("syn-7-00000", "syn-7-00002")]
    # eval (no pool): dropped
    batch, used, skips = prompt_batch_skipping(policy, records[:2], "adaptive", None, 200, pool=None)
    assert [r.id for r in used] == ["syn-7-00001"] and skips[0].replaced_by is None


def test_silent_and_near_empty_clips_are_counted_in_the_audio_report(tmp_path):
    from audiothinker.data.audio import AudioStats, load_audio

    stats = AudioStats()
    load_audio(np.zeros(16000, dtype=np.float32), 16000, stats=stats)
    load_audio(np.full(320, 0.2, dtype=np.float32), 16000, stats=stats)  # 20 ms
    load_audio(np.full(16000, 0.2, dtype=np.float32), 16000, stats=stats)
    assert (stats.silent, stats.near_empty, stats.loaded) == (1, 1, 3)
    assert "1 silent (all samples near zero)" in stats.report() and "1 near-empty (< 0.1 s)" in stats.report()


def test_a_bad_max_seconds_is_not_reported_as_empty_audio():
    from audiothinker.data.audio import load_audio

    with pytest.raises(ValueError, match="max_seconds must be positive, got -1"):
        load_audio(np.full(1600, 0.1, dtype=np.float32), 16000, max_seconds=-1)


def test_periodic_eval_drops_a_bad_held_out_clip_with_skip(dataset, tmp_path):
    from accelerate import Accelerator

    from audiothinker.judge.rule import RuleJudge
    from audiothinker.models.loading import load_policy
    from audiothinker.trainer.evaluation import PeriodicEval

    path, rows = dataset
    _nan_clip(_audio(path, rows, 3))
    cfg = _cfg(tmp_path, path, f"eval.file={path}", "eval.eval_steps=1", "eval.max_new_tokens=4")
    policy = load_policy(cfg.model)
    with pytest.raises(DataError, match="syn-7-00003"):
        PeriodicEval(cfg, Accelerator(cpu=True), policy, RuleJudge()).run(1, policy.model)
    cfg = _cfg(tmp_path, path, f"eval.file={path}", "eval.eval_steps=1", "eval.max_new_tokens=4", "data.on_error=skip")
    metrics = PeriodicEval(cfg, Accelerator(cpu=True), policy, RuleJudge()).run(1, policy.model)
    assert metrics["eval/skipped"] == 1 and metrics["eval/n"] == 5
