"""Cold start (SFT): targets in both shapes, the shape coin, the loss, and a tiny end-to-end run."""

import json
import math

import pytest
import torch

from audiothinker.config import ModelConfig, load_config
from audiothinker.data.records import AudioQA
from audiothinker.parsing import parse_completion
from audiothinker.sft import (
    SFTOptions, answer_nll, batch_prompt, nll_loss, pad_right, sft, target_shape, target_text, target_tokens,
    think_coin,
)


def _record(i=0, difficulty="hard"):
    return AudioQA(
        id=f"r{i}", audio="x.wav", question="Are there more high beeps or more low beeps?",
        choices=["more high", "more low"], answer="more low", difficulty=difficulty,
        metadata={"reasoning": "I hear low, high and low. So the answer is more low."},
    )


def test_targets_have_the_two_valid_shapes():
    think = parse_completion(target_text(_record(), True))
    assert think.valid and think.thinks and think.answer == "more low" and think.think.endswith("more low.")
    direct = parse_completion(target_text(_record(), False))
    assert direct.valid and not direct.thinks and direct.answer == "more low"
    with pytest.raises(ValueError, match="reasoning"):
        target_text(AudioQA("r", "x.wav", "q?", ["a", "b"], "a"), True)


def test_shape_coin_is_seeded_and_blind_to_difficulty():
    ids = [f"syn-{i}" for i in range(2000)]
    draws = [think_coin(42, 0, i, 0.5) for i in ids]
    assert draws == [think_coin(42, 0, i, 0.5) for i in ids]  # deterministic
    assert abs(sum(draws) / len(draws) - 0.5) < 0.05
    assert draws != [think_coin(42, 1, i, 0.5) for i in ids]  # a fresh coin each epoch
    # The coin's arguments are (seed, epoch, id, fraction): nothing about the item's difficulty.
    assert not any(think_coin(42, 0, i, 0.0) for i in ids) and all(think_coin(42, 0, i, 1.0) for i in ids)


def test_mixed_prompts_fix_the_shape_of_forced_prompts():
    kinds = [batch_prompt(7, pos, "mixed") for pos in range(0, 4000, 8)]
    assert kinds == [batch_prompt(7, pos, "mixed") for pos in range(0, 4000, 8)]  # seeded
    share = {k: kinds.count(k) / len(kinds) for k in ("adaptive", "think", "no_think")}
    assert abs(share["adaptive"] - 0.5) < 0.07 and abs(share["think"] - 0.25) < 0.07
    assert batch_prompt(7, 3, "no_think") == "no_think"  # a single kind is passed through
    assert target_shape("think", False) is True and target_shape("no_think", True) is False
    assert target_shape("adaptive", True) is True and target_shape("adaptive", False) is False


@pytest.mark.parametrize("shares", [(0.65, 0.25, 0.10), (0.2, 0.2, 0.6), (0.0, 1.0, 0.0)])
def test_mixed_prompts_follow_the_given_shares(shares):
    kinds = [batch_prompt(11, pos, "mixed", shares) for pos in range(0, 16000, 8)]
    for kind, share in zip(("adaptive", "think", "no_think"), shares):
        assert abs(kinds.count(kind) / len(kinds) - share) < 0.04, kind
    # The same draw as the default shares: a micro-batch's kind moves only where the boundaries moved.
    u_order = [batch_prompt(11, pos, "mixed", (0.5, 0.25, 0.25)) for pos in range(0, 16000, 8)]
    if shares[0] >= 0.5 and shares[0] + shares[1] >= 0.75:
        assert all(k == "adaptive" for k, d in zip(kinds, u_order) if d == "adaptive")


@pytest.mark.parametrize("shares, message", [
    ((0.5, 0.5, 0.5), "sum to 1"), ((1.2, -0.2, 0.0), "in [0, 1]"), ((0.5, 0.5), "need 3"),
])
def test_prompt_shares_are_checked(shares, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SFTOptions(prompt="mixed", prompt_shares=shares)


def test_nll_loss_is_the_mean_over_target_tokens():
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.9], [0.5, 0.1, 0.1]]))  # [B=2, C=3]
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # tokens counted: 0.5, 0.25, 0.5 -> -(ln .5 + ln .25 + ln .5) / 3 = 4 ln 2 / 3
    assert nll_loss(logp, mask).item() == pytest.approx(4 * math.log(2) / 3, rel=1e-6)
    assert answer_nll(logp, [(1, 2), (0, 0)]) == [pytest.approx(2 * math.log(2), rel=1e-6), None]
    ids, m = pad_right([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and m.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_nll_loss_over_a_constant_token_count_weighs_every_token_alike():
    # Row 0: a 1-token target; row 1: 1 token, or 4 (a long trace beside it).
    def grad_of_first_row(long: bool, tokens_per_item):
        logp = torch.full((2, 4), math.log(0.5), requires_grad=True)
        mask = torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1] if long else [1, 0, 0, 0]])
        loss = nll_loss(logp, mask, tokens_per_item)
        loss.backward()
        return loss.item(), logp.grad[0, 0].item()

    # The mean: row 0's token weighs 1/2 beside a short target, 1/5 beside a long one.
    assert grad_of_first_row(False, None)[1] == pytest.approx(-1 / 2)
    assert grad_of_first_row(True, None)[1] == pytest.approx(-1 / 5)
    # Over 2.5 tokens per item (5 per batch of 2): 1/5 either way; the loss is the sum over 5.
    assert grad_of_first_row(False, 2.5) == pytest.approx((2 * math.log(2) / 5, -1 / 5))
    assert grad_of_first_row(True, 2.5) == pytest.approx((5 * math.log(2) / 5, -1 / 5))


@pytest.mark.parametrize("bad", [0, -3.0, float("nan")])
def test_loss_tokens_must_be_positive(bad):
    with pytest.raises(ValueError, match="positive number of tokens per item"):
        SFTOptions(loss_tokens=bad)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    from audiothinker.data.synthetic import write_synthetic
    from audiothinker.models.tiny import build_tiny_qwen2_audio

    root = tmp_path_factory.mktemp("sft")
    model = build_tiny_qwen2_audio(root / "model", seed=0, hidden=32, layers=1, audio_layers=1)
    data = write_synthetic(root / "data", 8, 5, split="train")
    return root, model, data


def test_answer_span_covers_the_answer_tokens(tiny_setup):
    from transformers import AutoTokenizer

    _, model, _ = tiny_setup
    tok = AutoTokenizer.from_pretrained(model)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    for think in (True, False):
        ids, (a, b) = target_tokens(tok, _record(), think, eos)
        assert ids[-1] == eos and b > a
        assert tok.decode(ids[a:b]) == "more low"


def test_a_few_sft_steps_reduce_the_loss_and_the_checkpoint_loads(tiny_setup):
    from audiothinker.models.loading import load_policy
    from audiothinker.data.batching import prompt_batch

    root, model, data = tiny_setup
    out = root / "run"
    cfg = load_config(None, [
        f"output_dir={out}", "max_steps=8", f"model.name_or_path={model}", "model.dtype=float32",
        "data.format=jsonl", f"data.train_file={data}", "data.shuffle=false", "train.learning_rate=0.01",
        "train.per_device_batch_size=8", "train.gradient_accumulation_steps=1", "log.progress=false",
    ])
    final = sft(cfg, SFTOptions(think_fraction=0.5))
    rows = [json.loads(line) for line in (out / "sft_metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    assert rows[-1]["loss"] < 0.7 * rows[0]["loss"]  # the same 8 items every step: the loss must fall

    policy = load_policy(ModelConfig(name_or_path=str(final), dtype="float32"))
    assert policy.family == "qwen2_audio"
    from audiothinker.data.loaders import load_records

    recs = load_records(str(data), "jsonl").records[:2]
    batch = prompt_batch(policy, recs, "adaptive", None)
    ids = torch.tensor([policy.tokenizer.encode("<answer>", add_special_tokens=False)] * 2)  # several tokens, as in Qwen's BPE
    logp = policy.token_logprobs(policy.model, batch, ids, torch.ones_like(ids), 1)
    assert logp.shape == ids.shape and ids.size(1) > 1 and torch.isfinite(logp).all()


def test_cli_sft_with_config_and_overrides(tiny_setup, tmp_path):
    from audiothinker.cli import main

    _, model, data = tiny_setup
    cfg = tmp_path / "sft.yaml"
    cfg.write_text(f"output_dir: {tmp_path / 'run'}\nmax_steps: 1\nmodel: {{name_or_path: {model}, dtype: float32}}\n"
                   f"data: {{format: jsonl, train_file: {data}}}\ntrain: {{per_device_batch_size: 4}}\n")
    assert main(["sft", "--config", str(cfg), "--set", "train.learning_rate=0.001", "--think-fraction", "1.0"]) == 0
    assert (tmp_path / "run" / "final" / "config.json").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["sft"]["think_fraction"] == 1.0
    assert main(["sft", "--config", str(cfg), "--think-fraction", "1.5"]) == 2
    assert main(["sft", "--config", str(cfg), "--prompt", "mixed", "--prompt-shares", "0.5,0.6,0.1"]) == 2
    assert main(["sft", "--config", str(cfg), "--prompt", "mixed", "--prompt-shares", "half,0.5,0"]) == 2
    assert main(["sft", "--config", str(cfg), "--prompt", "mixed", "--prompt-shares", "0.7,0.2,0.1"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["sft"]["prompt_shares"] == [0.7, 0.2, 0.1]
    assert main(["sft", "--config", str(cfg), "--loss-tokens", "0"]) == 2
    assert main(["sft", "--config", str(cfg), "--loss-tokens", "6"]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["sft"]["loss_tokens"] == 6.0


def test_freeze_parameters_keeps_those_weights_through_training(tiny_setup):
    """model.freeze_parameters: after a few steps the projector is the initial one, bit for bit, while the
    language model has moved (the same load_policy builds the policy for GRPO)."""
    from audiothinker.models.loading import load_policy

    root, model, data = tiny_setup
    cfg = load_config(None, [
        f"output_dir={root / 'frozen'}", "max_steps=2", f"model.name_or_path={model}", "model.dtype=float32",
        "data.format=jsonl", f"data.train_file={data}", "train.learning_rate=0.01", "log.progress=false",
        "model.freeze_parameters=[multi_modal_projector]",
    ])
    start = dict(load_policy(cfg.model).model.named_parameters())
    final = dict(load_policy(cfg.model, path=str(sft(cfg, SFTOptions(think_fraction=0.5)))).model.named_parameters())
    assert final.keys() == start.keys()
    moved = {n: not torch.equal(final[n], start[n]) for n in start}
    projector = [n for n in moved if ".multi_modal_projector." in f".{n}"]
    assert projector and not any(moved[n] for n in projector)
    assert any(moved[n] for n in moved if ".language_model." in f".{n}")


def test_freeze_parameters_matches_whole_dotted_segments_and_names_a_miss(tiny_setup):
    from audiothinker.config import ConfigError
    from audiothinker.models.loading import load_policy, matching_parameters

    _, tiny, _ = tiny_setup
    names = ["model.layers.1.mlp.up_proj.weight", "model.layers.10.mlp.up_proj.weight", "lm_head.weight"]
    assert matching_parameters(names, "layers.1") == ["model.layers.1.mlp.up_proj.weight"]
    assert matching_parameters(names, "lm_head") == ["lm_head.weight"]
    assert matching_parameters(names, "head") == []
    policy = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32",
                                     freeze_parameters=["multi_modal_projector"]))
    frozen = {n for n, p in policy.model.named_parameters() if not p.requires_grad}
    assert frozen and all(".multi_modal_projector." in f".{n}" for n in frozen)
    assert any(p.requires_grad for n, p in policy.model.named_parameters() if "language_model" in n)
    with pytest.raises(ConfigError, match=r"model.freeze_parameters: 'projector' matches no parameter of .*multi_modal_projector"):
        load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32", freeze_parameters=["projector"]))
