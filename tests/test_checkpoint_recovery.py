"""Issue 11, class 2: checkpoints carry a manifest (sizes, sha256) written last; --resume verifies it
and falls back to the newest intact checkpoint, still bit-identical; RNG-state failures are errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from audiothinker.config import load_config
from audiothinker.trainer.checkpoint import (
    CheckpointError,
    list_checkpoints,
    verify_checkpoint,
    write_manifest,
)

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny_cpu.yaml"
SMALL = ["max_steps=4", "save_steps=1", "save_total_limit=null", "data.synthetic_size=8", "rollout.max_new_tokens=8",
         "rollout.num_generations=2", "train.per_device_batch_size=1", "log.report_to=[jsonl]", "log.progress=false"]


# ---- the manifest itself (no training) -------------------------------------------------------


def _fake_ckpt(root: Path) -> Path:
    ckpt = root / "step-000001"
    (ckpt / "sub").mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(bytes(range(256)) * 8)
    (ckpt / "sub" / "state.pkl").write_bytes(b"abc")
    (ckpt / "COMPLETE").write_text("1")
    write_manifest(ckpt)
    return ckpt


def test_manifest_lists_every_file_and_verifies(tmp_path):
    ckpt = _fake_ckpt(tmp_path)
    files = json.loads((ckpt / "manifest.json").read_text())["files"]
    assert set(files) == {"model.safetensors", "sub/state.pkl", "COMPLETE"}
    assert files["model.safetensors"]["size"] == 2048 and len(files["model.safetensors"]["sha256"]) == 64
    assert verify_checkpoint(ckpt) is None


@pytest.mark.parametrize("damage, expected", [
    (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:1000]), "model.safetensors has 1000 bytes"),
    (lambda c: _flip_byte(c / "model.safetensors", 700), "model.safetensors does not match its sha256"),
    (lambda c: (c / "sub" / "state.pkl").unlink(), "sub/state.pkl is missing"),
    (lambda c: (c / "manifest.json").unlink(), "no manifest.json"),
    (lambda c: (c / "manifest.json").write_text("{not json"), "manifest.json is unreadable"),
])
def test_verify_names_what_is_wrong(tmp_path, damage, expected):
    ckpt = _fake_ckpt(tmp_path)
    damage(ckpt)
    assert expected in verify_checkpoint(ckpt)


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# ---- resume after damage: falls back, stays bit-identical --------------------------------------


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A 4-step run done straight, and the same run stopped at step 3 with checkpoints 1, 2, 3."""
    from audiothinker.trainer.grpo import train

    root = tmp_path_factory.mktemp("ckpt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOTHINKER_CACHE", str(root / ".models"))
        straight = train(load_config(RECIPE, [f"output_dir={root / 'straight'}", *SMALL]))
        train(load_config(RECIPE, [f"output_dir={root / 'stopped'}", *SMALL, "stop_at_step=3"]))
        yield root, straight, mp


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _rng_garbage(c: Path) -> None:
    (c / "random_states_0.pkl").write_bytes((c / "random_states_0.pkl").read_bytes()[:40])


DAMAGES = {
    "truncated weights": (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:999]), "model.safetensors"),
    "flipped byte in weights": (lambda c: _flip_byte(c / "model.safetensors", 4096), "model.safetensors does not match"),
    "truncated optimizer": (lambda c: (c / "optimizer.bin").write_bytes((c / "optimizer.bin").read_bytes()[:500]), "optimizer.bin"),
    "truncated RNG state": (_rng_garbage, "random_states_0.pkl"),
}


@pytest.mark.parametrize("kind", list(DAMAGES))
def test_resume_falls_back_to_the_newest_intact_checkpoint(stopped, kind, tmp_path, capsys):
    from audiothinker.trainer.grpo import train

    root, straight, _ = stopped
    out = tmp_path / "run"
    shutil.copytree(root / "stopped", out)
    damage, named = DAMAGES[kind]
    damage(out / "checkpoints" / "step-000003")
    capsys.readouterr()
    resumed = train(load_config(RECIPE, [f"output_dir={out}", *SMALL]), resume=True)
    captured = capsys.readouterr()
    assert "step-000003 is damaged" in captured.err and named in captured.err
    assert "at step 2" in captured.out  # resumed from the previous checkpoint
    a, b = _weights(straight), _weights(resumed)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []  # still bit-identical to the straight run
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # step 3's row (logged before the damage) is not duplicated


def test_no_intact_checkpoint_is_an_error_naming_each(stopped, tmp_path):
    from audiothinker.trainer.grpo import train

    root, _, _ = stopped
    out = tmp_path / "run"
    shutil.copytree(root / "stopped", out)
    for _, ckpt in list_checkpoints(out):
        _flip_byte(ckpt / "model.safetensors", 4096)
    with pytest.raises(CheckpointError, match=r"no intact checkpoint.*step-000003: .*step-000001: "):
        train(load_config(RECIPE, [f"output_dir={out}", *SMALL]), resume=True)


def test_rng_state_that_does_not_load_is_an_error_not_a_silent_divergence(stopped, tmp_path):
    from audiothinker.trainer.grpo import train

    root, _, _ = stopped
    out = tmp_path / "run"
    shutil.copytree(root / "stopped", out)
    for _, ckpt in list_checkpoints(out):  # bad RNG files that the manifest vouches for
        _rng_garbage(ckpt)
        write_manifest(ckpt)
    with pytest.raises(CheckpointError, match=r"random_states_0.pkl: cannot load the random states"):
        train(load_config(RECIPE, [f"output_dir={out}", *SMALL]), resume=True)


def test_cli_reports_a_damaged_run_in_one_line(stopped, tmp_path, capsys):
    from audiothinker.cli import main

    root, _, _ = stopped
    out = tmp_path / "run"
    shutil.copytree(root / "stopped", out)
    for _, ckpt in list_checkpoints(out):
        (ckpt / "optimizer.bin").unlink()
    rc = main(["train", "--config", str(RECIPE), "--resume", *sum((["--set", s] for s in [f"output_dir={out}", *SMALL]), [])])
    err = capsys.readouterr().err
    assert rc == 2
    last = err.strip().splitlines()[-1]  # (progress bars of the model load come before it)
    assert last.startswith("error: no intact checkpoint") and "optimizer.bin is missing" in last
    assert "Traceback" not in err and "--debug" not in last


def test_jsonl_rows_after_the_resumed_step_are_dropped(tmp_path):
    from audiothinker.trainer.tracking import JsonlWriter

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "x": s}) + "\n" for s in (1, 2, 3, 4)) + '{"step": 5, "x"')  # cut by a kill
    w = JsonlWriter(path, True)
    assert w.truncate_after(2) == 3
    w.write({"step": 3, "x": 30})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"step": 1, "x": 1}, {"step": 2, "x": 2}, {"step": 3, "x": 30}]
    assert JsonlWriter(tmp_path / "none.jsonl", True).truncate_after(0) == 0
