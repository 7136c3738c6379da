"""`train --dry-run` on both 7B recipes: real configs on the meta device, a small AVQA-format fixture, no hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiothinker.cli import main
from audiothinker.dryrun import Parallel, memory_per_gpu

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def avqa(tmp_path):
    for i in range(3):
        sf.write(tmp_path / f"clip{i}.wav", (0.1 * np.random.default_rng(i).standard_normal(16000 * (i + 2))).astype("float32"), 16000)
    lines = [{"id": i, "question_text": "What is making the sound in the video?", "multi_choice": ["dog", "cat", "car", "bird"],
              "answer": 1, "audio_path": f"clip{i}.wav"} for i in range(3)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return tmp_path


@pytest.mark.parametrize("recipe, billions, placeholder", [
    ("qwen2_audio_7b.yaml", "8.40 B total", "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>"),
    ("qwen2_5_omni_7b.yaml", "8.93 B total", "<|audio_bos|><|AUDIO|><|audio_eos|>What is making the sound in the audio?"),
])
def test_dry_run_7b_recipes(avqa, capsys, recipe, billions, placeholder):
    rc = main(["train", "--config", str(ROOT / "recipes" / recipe), "--dry-run",
               "--set", f"data.train_file={avqa / 'train.jsonl'}", "--set", f"data.audio_root={avqa}"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert billions in out and placeholder in out
    assert "3 records" in out and "16 prompts x 8 completions = 128 sequences" in out
    assert "deepspeed_zero3_8gpu.yaml (DEEPSPEED, 8 processes), ZeRO stage 3" in out
    assert "+ 100 audio tokens" in out  # the longest clip, 4 s: 25 audio tokens a second
    assert "  total" in out


def test_dry_run_without_the_data_file_says_so(capsys):
    rc = main(["train", "--config", str(ROOT / "recipes" / "qwen2_audio_7b.yaml"), "--dry-run"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "data.train_file data/avqa/train_r1aqa.jsonl not found; pass --set data.train_file=FILE" in err


def test_dry_run_catches_accumulation_unlike_the_deepspeed_config(avqa, capsys):
    rc = main(["train", "--config", str(ROOT / "recipes" / "qwen2_audio_7b.yaml"), "--dry-run",
               "--set", f"data.train_file={avqa / 'train.jsonl'}", "--set", f"data.audio_root={avqa}",
               "--set", "train.gradient_accumulation_steps=4"])
    assert rc != 0
    assert "train.gradient_accumulation_steps=4 but deepspeed_zero3_8gpu.yaml" in capsys.readouterr().err


def test_dry_run_under_fsdp(avqa, capsys):
    rc = main(["train", "--config", str(ROOT / "recipes" / "qwen2_audio_7b.yaml"), "--dry-run",
               "--accelerate-config", str(ROOT / "configs" / "fsdp_8gpu.yaml"),
               "--set", f"data.train_file={avqa / 'train.jsonl'}", "--set", f"data.audio_root={avqa}"])
    out = capsys.readouterr().out
    assert rc == 0 and "fsdp_8gpu.yaml (FSDP, 8 processes), ZeRO stage 3" in out


def test_memory_formula():
    gib = 2**30
    one = memory_per_gpu(gib, gib, Parallel(), bytes_per_param=2, reference=True, kv_cache=0, logits=0)
    assert (one["weights"], one["gradients"], one["optimizer"], one["reference"]) == (2 * gib, 2 * gib, 12 * gib, 2 * gib)
    z3 = memory_per_gpu(8 * gib, 8 * gib, Parallel(8, 3, "bf16"), bytes_per_param=2, reference=False, kv_cache=5, logits=7)
    assert (z3["weights"], z3["gradients"], z3["optimizer"], z3["reference"]) == (2 * gib, 2 * gib, 12 * gib, 0)
    assert z3["total"] == 16 * gib + 12
    z1 = memory_per_gpu(8 * gib, 8 * gib, Parallel(8, 1), bytes_per_param=4, reference=False, kv_cache=0, logits=0)
    assert (z1["weights"], z1["gradients"], z1["optimizer"]) == (32 * gib, 32 * gib, 8 * gib)


def test_dry_run_counts_frozen_modules_and_names_a_module_that_matches_nothing(avqa, capsys):
    base = ["train", "--config", str(ROOT / "recipes" / "qwen2_audio_7b.yaml"), "--dry-run",
            "--set", f"data.train_file={avqa / 'train.jsonl'}", "--set", f"data.audio_root={avqa}"]
    # Left trainable: the projector (1280 x 4096 + 4096) and the untied head (156032 x 4096): 0.64 B.
    assert main([*base, "--set", "model.freeze_parameters=[language_model, audio_tower]"]) == 0
    assert "8.40 B total, 0.64 B trainable" in capsys.readouterr().out
    assert main([*base, "--set", "model.freeze_parameters=[projector]"]) == 2
    err = capsys.readouterr().err
    assert "model.freeze_parameters: 'projector' matches no parameter of Qwen/Qwen2-Audio-7B-Instruct" in err
    assert "model.multi_modal_projector" in err


def test_dry_run_counts_lora_adapters_with_the_trainers_lora_config(avqa, capsys):
    """The count wraps the meta model with models.loading.lora_config, the config load_policy trains with: rank
    64 on the seven projections of each of the language model's 32 layers, (in + out) x 64 each: 0.16 B (none in
    the encoder)."""
    base = ["train", "--config", str(ROOT / "recipes" / "qwen2_audio_7b.yaml"), "--dry-run",
            "--set", f"data.train_file={avqa / 'train.jsonl'}", "--set", f"data.audio_root={avqa}"]
    assert main([*base, "--set", "model.lora=true"]) == 0
    assert "8.56 B total, 0.16 B trainable" in capsys.readouterr().out
