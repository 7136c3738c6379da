"""End-to-end GRPO on the tiny CPU recipe, exact resume, the CLI's config errors, and the data sampler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from audiothinker.cli import main
from audiothinker.config import load_config
from audiothinker.trainer.state import PromptSampler

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny_cpu.yaml"


# ---- PromptSampler (the data position checkpoints carry) -------------------------------------


def _stream(sampler: PromptSampler, steps: int, global_batch: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    return [sampler.take(global_batch, rank, world) for _ in range(steps)]


def test_sampler_is_deterministic_and_seeded():
    a = _stream(PromptSampler(10, seed=3), 6, 4)
    assert a == _stream(PromptSampler(10, seed=3), 6, 4)
    assert a != _stream(PromptSampler(10, seed=4), 6, 4)


def test_sampler_epochs_are_permutations():
    # 8 records, 4 per step: steps 1-2 are one epoch, 3-4 the next, each a permutation of 0..7,
    # reshuffled between epochs.
    s = _stream(PromptSampler(8, seed=0), 4, 4)
    first, second = s[0] + s[1], s[2] + s[3]
    assert sorted(first) == sorted(second) == list(range(8))
    assert first != second
    assert _stream(PromptSampler(5, seed=0, shuffle=False), 2, 4) == [[0, 1, 2, 3], [4, 0, 1, 2]]


def test_sampler_ranks_split_the_global_batch():
    # 2 processes, global batch 6: each takes 3; together they are the 1-process batch, without overlap.
    single = _stream(PromptSampler(20, seed=1), 5, 6)
    r0 = _stream(PromptSampler(20, seed=1), 5, 6, rank=0, world=2)
    r1 = _stream(PromptSampler(20, seed=1), 5, 6, rank=1, world=2)
    for whole, a, b in zip(single, r0, r1):
        assert len(a) == len(b) == 3
        assert a + b == whole
        assert not set(a) & set(b)


def test_sampler_state_round_trip():
    s = PromptSampler(10, seed=7)
    _stream(s, 3, 4)
    s.step = 3
    state = s.state_dict()
    assert state == {"step": 3, "cursor": 12, "size": 10, "seed": 7}
    t = PromptSampler(10, seed=7)
    t.load_state_dict(json.loads(json.dumps(state)))  # survives serialisation
    assert (t.step, t.cursor) == (3, 12)
    assert _stream(t, 4, 4) == _stream(s, 4, 4)


@pytest.mark.parametrize("size, seed", [(11, 7), (10, 8)])
def test_sampler_mismatch_raises(size, seed):
    state = PromptSampler(10, seed=7).state_dict()
    with pytest.raises(ValueError, match="checkpoint was made with 10 records and seed 7"):
        PromptSampler(size, seed=seed).load_state_dict(state)


def test_sampler_rejects_empty_set():
    with pytest.raises(ValueError, match="empty"):
        PromptSampler(0, seed=0)


# ---- training runs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Parent of the run directories; the tiny policy is built once into its .models cache."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUDIOTHINKER_CACHE", str(root / ".models"))
        yield root


def _cfg(out: Path, *extra: str):
    overrides = [
        f"output_dir={out}", "log.progress=false", "data.synthetic_size=16", "rollout.max_new_tokens=16", *extra,
    ]
    return load_config(RECIPE, overrides)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_train_smoke_writes_metrics_samples_and_model(runs):
    from audiothinker.trainer.grpo import train

    out = runs / "smoke"
    final = train(_cfg(out, "max_steps=2"))
    assert final == out / "final"
    assert (final / "model.safetensors").is_file()

    metrics = _read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        for name in ("total", "accuracy", "format", "consistency", "think_quality"):
            assert f"reward/{name}_mean" in m and f"reward/{name}_std" in m
        for key in (
            "accuracy", "think_rate", "lambda", "kl", "loss", "grad_norm", "lr",
            "clip_ratio/low", "clip_ratio/high", "clip_ratio/region",
            "completions/mean_length", "completions/max_length", "completions/min_length", "completions/truncated_rate",
            "timing/rollout", "timing/reward", "timing/update", "timing/elapsed",
        ):
            assert key in m, key
        assert 0.0 <= m["think_rate"] <= 1.0 and m["lambda"] == m["think_rate"]
        by_level = [m[k] for k in m if k.startswith("think_rate/")]  # the batch's difficulties, each its own rate
        assert by_level and min(by_level) - 1e-6 <= m["think_rate"] <= max(by_level) + 1e-6
        assert {k.split("/")[1] for k in m if k.startswith("accuracy/")} == {
            k.split("/")[1] for k in m if k.startswith("think_rate/")}
        assert 0.0 <= m["accuracy"] <= 1.0
        assert 1 <= m["completions/max_length"] <= 16
        assert m["kl"] >= 0.0
        assert all(v == v for v in m.values() if isinstance(v, float))  # no NaN
    assert metrics[0]["kl"] == 0.0  # step 1: the policy still equals the reference

    samples = _read_jsonl(out / "samples.jsonl")
    assert len(samples) == 2 * 4  # log.num_samples per logged step
    assert {"step", "id", "question", "completion", "reward", "correct", "think", "r_a", "r_f"} <= set(samples[0])

    # The final model loads back as a policy.
    from audiothinker.config import ModelConfig
    from audiothinker.models.loading import load_policy

    policy = load_policy(ModelConfig(name_or_path=str(final), dtype="float32"))
    assert policy.family == "qwen2_audio"


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_resume_is_bit_identical(runs):
    from audiothinker.trainer.grpo import train

    # A random policy whose tags split into several tokens (as in Qwen's BPE) never earns a reward in 8
    # tokens, so every advantage is 0: weight decay moves it off the reference after step 1, and from
    # then on the KL term gives gradients, so the optimizer state (moments) must be restored exactly.
    small = ["max_steps=4", "save_steps=0", "data.synthetic_size=8", "rollout.max_new_tokens=8",
             "rollout.num_generations=2", "train.per_device_batch_size=1", "log.report_to=[jsonl]",
             "train.weight_decay=0.1"]
    straight = train(_cfg(runs / "straight", *small))

    out = runs / "resumed"
    ckpt = train(_cfg(out, *small, "stop_at_step=2"))
    assert ckpt.name == "step-000002"
    assert not (out / "final").exists()
    resumed = train(_cfg(out, *small), resume=True)

    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
    # ... and training did change the weights (the comparison is not between two copies of the init).
    (tiny_dir,) = (runs / ".models").glob("tiny-qwen2_audio-seed*")
    init = _weights(tiny_dir)
    assert any(not torch.equal(a[k], init[k]) for k in a if k in init)
    # The resumed run logged steps 3 and 4 after the first job's 1 and 2, with the same metrics.
    steps_a = _read_jsonl(runs / "straight" / "metrics.jsonl")
    steps_b = _read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in steps_b] == [1, 2, 3, 4]
    for ma, mb in zip(steps_a, steps_b):
        assert ma["reward/total_mean"] == mb["reward/total_mean"]
        assert ma["loss"] == mb["loss"]


@pytest.mark.parametrize("micro, accumulation, iterations, before, expected", [
    (2, 2, 1, 0, [False, False]),  # one pass: old = current, never a forward of its own
    (2, 2, 2, 0, [False, False]),  # the trainer's case: the batch is one accumulation window
    (4, 2, 2, 0, [False, False, True, True]),  # micro-batches 2, 3 run after the first optimizer step
    (2, 2, 2, 1, [False, True]),  # accelerate's counter at 1: the first call already steps
    (3, 1, 3, 5, [False, True, True]),
])
def test_which_micro_batches_need_their_own_old_log_probs(micro, accumulation, iterations, before, expected):
    from audiothinker.trainer.step import separate_old_logps

    assert separate_old_logps(micro, accumulation, iterations, before) == expected


def test_two_passes_reuse_the_first_pass_log_probs_exactly(runs, monkeypatch):
    """With train.num_iterations=2 the first pass's log-probs serve as the old ones: the weights equal those of
    a run that computes them in a forward of their own for every micro-batch (TRL's way)."""
    import audiothinker.trainer.step as step
    from audiothinker.trainer.grpo import train

    real = step.group_advantages

    def advantages(seed):  # random advantages: a random tiny policy earns no reward, so the surrogate would be 0
        gen = torch.Generator().manual_seed(seed)
        return lambda rewards, *a, **k: torch.randn(real(rewards, *a, **k).shape, generator=gen)

    small = ["max_steps=3", "save_steps=0", "data.synthetic_size=8", "rollout.max_new_tokens=8",
             "rollout.num_generations=2", "train.per_device_batch_size=1", "train.gradient_accumulation_steps=2",
             "train.num_iterations=2", "train.learning_rate=2e-2", "train.epsilon=0.01", "log.report_to=[jsonl]"]
    monkeypatch.setattr(step, "group_advantages", advantages(0))
    reused = train(_cfg(runs / "reused", *small))
    monkeypatch.setattr(step, "group_advantages", advantages(0))
    monkeypatch.setattr(step, "separate_old_logps", lambda n, *a: [True] * n)
    separate = train(_cfg(runs / "separate", *small))

    a, b = _weights(reused), _weights(separate)
    assert [k for k in a if not torch.allclose(a[k], b[k], atol=1e-6)] == []
    # The old log-probs mattered: the second pass clipped tokens (its ratio left [1 - 0.01, 1 + 0.01]).
    assert max(m["clip_ratio/region"] for m in _read_jsonl(runs / "reused" / "metrics.jsonl")) > 0


def test_mode_split_gives_per_token_advantages_and_equals_sequence_on_one_mode(runs, monkeypatch):
    """train.mode_advantage=split hands the loss [B*G, C] advantages; where every group has one mode (the random
    tiny policy writes no <think>), they are the sequence advantages and the weights are the same."""
    import audiothinker.trainer.step as step
    from audiothinker.trainer.grpo import train

    real, seen = step.split_by_mode, []

    def spy(advantages, rewards, thinks, ids, *a):
        out = real(advantages, rewards, thinks, ids, *a)
        seen.append((tuple(out.shape), tuple(ids.shape), any(thinks)))
        return out

    monkeypatch.setattr(step, "split_by_mode", spy)
    small = ["max_steps=2", "save_steps=0", "train.learning_rate=1e-2", "log.report_to=[jsonl]"]
    split = train(_cfg(runs / "split", *small, "train.mode_advantage=split"))
    assert len(seen) == 2 and all(out == ids and not thinks for out, ids, thinks in seen)
    a, b = _weights(split), _weights(train(_cfg(runs / "sequence", *small)))
    assert [k for k in a if not torch.allclose(a[k], b[k], atol=1e-6)] == []


def test_cli_names_an_unknown_key(capsys):
    rc = main(["train", "--config", str(RECIPE), "--set", "train.bta=1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "train.bta" in err and err.startswith("error:")


def test_missing_training_audio_is_an_error_or_a_counted_skip(tmp_path):
    import json as _json

    import numpy as np
    import soundfile as sf

    from audiothinker.config import load_config
    from audiothinker.data.records import DataError
    from audiothinker.trainer.data import load_training_records

    rows = []
    for i in range(3):
        wav = tmp_path / f"a{i}.wav"
        if i != 1:  # a1.wav is never written
            sf.write(wav, np.zeros(1600, dtype="float32") + 0.1, 16000)
        rows.append({"id": f"r{i}", "audio": wav.name, "question": "High or low?", "choices": ["high", "low"], "answer": "high"})
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(_json.dumps(r) for r in rows) + "\n")
    cfg = load_config(None, ["data.format=jsonl", f"data.train_file={data}"])
    with pytest.raises(DataError, match=r"1 records have unusable audio \('r1': audio file not found"):
        load_training_records(str(data), "jsonl", cfg)
    cfg = load_config(None, ["data.format=jsonl", f"data.train_file={data}", "data.on_error=skip"])
    records, result = load_training_records(str(data), "jsonl", cfg)
    assert [r.id for r in records] == ["r0", "r2"]
    assert len(result.skipped) == 1 and "r1" in result.summary()


def test_decision_beta_weighs_the_token_that_picks_the_mode(tmp_path):
    """train.decision_beta: the KL weight at the token after `<` that picks think or answer, found with the
    tiny model's own tokenizer (Qwen's vocabulary); every other token keeps train.beta."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from audiothinker.models.tiny import build_tiny_qwen2_audio
    from audiothinker.trainer.step import token_betas

    tok = AutoTokenizer.from_pretrained(build_tiny_qwen2_audio(tmp_path / "model", seed=0, hidden=32, layers=1,
                                                               audio_layers=1))
    tok.padding_side = "right"  # completions are right-padded
    texts = ["<think>Tone one is high.</think><answer>odd</answer>", "<answer>even</answer>", "odd", " <think>x"]
    enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    rollout = SimpleNamespace(completion_ids=enc["input_ids"], completion_mask=enc["attention_mask"])
    policy = SimpleNamespace(tokenizer=tok)
    assert [tok.convert_ids_to_tokens(int(i)) for i in enc["input_ids"][:2, 1]] == ["think", "answer"]

    betas = token_betas(load_config(RECIPE, ["train.beta=0.1", "train.decision_beta=0"]), policy, rollout)
    expected = torch.full(enc["input_ids"].shape, 0.1)
    expected[0, 1] = expected[1, 1] = 0.0  # "odd" and " <think>x" do not open with a tag: beta throughout
    torch.testing.assert_close(betas, expected)
    assert token_betas(load_config(RECIPE, ["train.beta=0.1"]), policy, rollout) == 0.1  # unset: one coefficient


def test_decision_beta_reaches_the_loss(runs, monkeypatch):
    """In training, the loss gets the per-token coefficients (the random tiny policy opens with no tag, so every
    one of them is train.beta) and the run goes through."""
    import audiothinker.trainer.step as step
    from audiothinker.trainer.grpo import train

    real, seen = step.policy_loss, []

    def spy(logp, old, adv, ref, beta, *a):
        seen.append((tuple(logp.shape), beta if isinstance(beta, float) else tuple(beta.shape), float(beta.max())))
        return real(logp, old, adv, ref, beta, *a)

    monkeypatch.setattr(step, "policy_loss", spy)
    train(_cfg(runs / "decision_beta", "max_steps=1", "save_steps=0", "train.beta=0.05", "train.decision_beta=0",
               "log.report_to=[jsonl]"))
    assert seen and all(shape == betas for shape, betas, _ in seen)
    assert [top for *_, top in seen] == [pytest.approx(0.05)] * len(seen)
