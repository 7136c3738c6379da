"""Issue 11 for `eval`: an empty data file is an error; bad clips are found before the model loads
(an error naming them, or with --on-error skip left out, counted and listed in skipped.jsonl);
a clip that fails during generation is skipped too; bad CLI values are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audiothinker.cli import main
from audiothinker.data.synthetic import write_synthetic

TINY = ["--model", "tiny:qwen2_audio", "--batch-size", "4", "--max-new-tokens", "8"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


def _nan_clip(p) -> None:
    wav = np.full(1600, 0.1, dtype=np.float32)
    wav[5] = np.inf
    sf.write(p, wav, 16000, subtype="FLOAT")


@pytest.mark.parametrize("content", ["", "\n\n", "[]"])
def test_eval_on_an_empty_file_is_an_error_naming_it(tmp_path, capsys, content):
    data = tmp_path / "empty.jsonl"
    data.write_text(content)
    rc = main(["eval", "--benchmark", "jsonl", "--data", str(data), "--out", str(tmp_path / "out"), *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip() == f"error: {data}: no records to evaluate"
    assert not (tmp_path / "out" / "report.json").exists()


def test_eval_bad_clip_is_an_error_before_the_model_loads_or_a_listed_skip(tmp_path, models, capsys, monkeypatch):
    import audiothinker.models.loading as loading

    data = write_synthetic(tmp_path / "data", 6, 3, split="test")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    _nan_clip(data.parent / rows[2]["audio"])
    (data.parent / rows[4]["audio"]).write_bytes(b"")
    out = tmp_path / "out"
    args = ["eval", "--benchmark", "jsonl", "--data", str(data), "--out", str(out), "--models-cache", models, *TINY]

    loads = []
    real = loading.load_policy
    monkeypatch.setattr(loading, "load_policy", lambda *a, **k: loads.append(1) or real(*a, **k))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {data}: 2 records have unusable audio") and rows[2]["id"] in err and rows[4]["id"] in err
    assert loads == []  # found before any model work

    assert main([*args, "--on-error", "skip"]) == 0
    captured = capsys.readouterr()
    assert "2 records skipped, not in the predictions" in captured.err
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert sorted(s["id"] for s in skipped) == sorted([rows[2]["id"], rows[4]["id"]])
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["n"] == 4 and report["run"]["skipped_bad_audio_or_prompt"] == 2


def test_eval_clip_failing_during_generation_is_skipped(tmp_path, models, monkeypatch):
    """A clip that passes the scan but fails when the batch is built (it changed, or the scan's cache is stale)."""
    import audiothinker.data.scan as tdata

    data = write_synthetic(tmp_path / "data", 5, 4, split="test")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    monkeypatch.setattr(tdata, "scan_audio", lambda *a, **k: {})  # as if the scan had passed
    _nan_clip(data.parent / rows[1]["audio"])
    out = tmp_path / "out"
    args = ["eval", "--benchmark", "jsonl", "--data", str(data), "--out", str(out), "--models-cache", models, *TINY]
    assert main([*args, "--on-error", "skip"]) == 0
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert [s["id"] for s in skipped] == [rows[1]["id"]] and "NaN or infinite" in skipped[0]["reason"]
    preds = [json.loads(line)["id"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert preds == [r["id"] for i, r in enumerate(rows) if i != 1]


def test_eval_negative_max_audio_seconds_is_a_usage_error(tmp_path, capsys):
    data = write_synthetic(tmp_path / "data", 2, 4, split="test")
    with pytest.raises(SystemExit) as e:
        main(["eval", "--benchmark", "jsonl", "--data", str(data), "--out", str(tmp_path / "o"),
              "--max-audio-seconds", "-1", *TINY])
    assert e.value.code == 2 and "must be a positive number of seconds, got -1" in capsys.readouterr().err
