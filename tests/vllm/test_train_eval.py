"""The vLLM engine through the CLI: a short GRPO run that finishes and resumes, and `eval --engine vllm`.

Each command runs in its own process, as a user runs it (one `vllm.LLM` per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "tiny_cpu.yaml"


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    proc = subprocess.run([sys.executable, "-m", "audiothinker", *args], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _train(out: Path, model: Path, *extra: str, resume: bool = False) -> None:
    sets = [
        f"output_dir={out}", f"model.name_or_path={model}", "rollout.engine=vllm", "max_steps=2", "save_steps=0",
        "data.synthetic_size=8", "rollout.max_new_tokens=12", "rollout.num_generations=2",
        "train.per_device_batch_size=1", "log.report_to=[jsonl]", "log.progress=false",
        "rollout.vllm_importance_sampling_correction=true",
        # A random tiny model earns equal rewards within a group (zero advantage, zero gradient):
        # weight decay makes every step move the weights all the same, so the resume has state to get right.
        "train.weight_decay=0.1", *extra,
    ]
    _cli("train", "--config", str(RECIPE), *(["--resume"] if resume else []), *[a for s in sets for a in ("--set", s)])


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def test_grpo_with_vllm_finishes_and_resumes_identically(runs, qa_dir):
    import torch

    straight = runs / "straight"
    _train(straight, qa_dir)
    metrics = _jsonl(straight / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:  # the sampler/learner gap is watched every step, and it is small on synced weights
        assert 0.0 <= m["logprob_gap/mean"] <= m["logprob_gap/max"] < 0.1, m
        assert m["timing/rollout"] > 0
    assert (straight / "final" / "model.safetensors").is_file()

    resumed = runs / "resumed"
    _train(resumed, qa_dir, "stop_at_step=1")
    assert not (resumed / "final").exists()
    _train(resumed, qa_dir, resume=True)
    again = _jsonl(resumed / "metrics.jsonl")
    assert [m["step"] for m in again] == [1, 2]
    for m, n in zip(metrics, again):  # the same rollouts after the restart (vLLM is seeded per step), the same rewards
        for key in ("reward/total_mean", "loss", "logprob_gap/mean", "completions/mean_length"):
            assert m[key] == n[key], key
    assert _jsonl(straight / "samples.jsonl") == _jsonl(resumed / "samples.jsonl")
    a, b = _weights(straight / "final"), _weights(resumed / "final")
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []  # vLLM rollouts are seeded per step: resume is exact
    # ... and training changed the weights (the comparison is not between two copies of the init).
    from vllm_testlib import load

    init = dict(load(qa_dir).model.named_parameters())
    trained = dict(load(straight / "final").model.named_parameters())
    assert init.keys() == trained.keys()
    assert any(not torch.equal(init[k], trained[k]) for k in init)


def test_grpo_with_vllm_on_the_omni_thinker(runs, omni_dir):
    """The Qwen2.5-Omni thinker trains with vLLM rollouts: synced weights (small gap), and training moves them."""
    import torch

    from vllm_testlib import load

    out = runs / "omni"
    _train(out, omni_dir)
    metrics = _jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:  # ~7/V from the 7 suppressed placeholder tokens on this near-uniform model, see test_engine
        assert 0.0 <= m["logprob_gap/mean"] <= m["logprob_gap/max"] < 0.05, m
    init = dict(load(omni_dir).model.named_parameters())
    trained = dict(load(out / "final").model.named_parameters())
    assert init.keys() == trained.keys() and any(not torch.equal(init[k], trained[k]) for k in init)


def test_eval_vllm_equals_eval_hf_on_greedy_outputs(tmp_path, model_dir):
    from audiothinker.data.synthetic import write_synthetic

    data = write_synthetic(tmp_path / "data", 6, 0, split="test")
    preds = {}
    for engine in ("hf", "vllm"):
        out = tmp_path / engine
        _cli("eval", "--benchmark", "jsonl", "--data", str(data), "--model", str(model_dir), "--out", str(out),
             "--engine", engine, "--max-new-tokens", "16", "--batch-size", "3", "--dtype", "float32")
        preds[engine] = {p["id"]: p["raw_output"] for p in _jsonl(out / "predictions.jsonl")}
    assert len(preds["hf"]) == 6
    assert preds["vllm"] == preds["hf"]
    assert len(set(preds["hf"].values())) > 1  # not one constant answer
