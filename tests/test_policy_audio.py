"""The audio reaches every forward that scores tokens (SPEC section 8).

A tiny random Qwen2-Audio is built on the spot. The checks:
- on the loss path (ScoringModule, gradients on) the same completion gets different log-probs
  under two different waveforms, and gradients reach the audio tower;
- the adapter's `prompt_embeds` scoring equals the HF model's own forward, left padding included;
- generation never samples the audio special tokens.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiothinker.config import ModelConfig
from audiothinker.models.base import ScoringModule
from audiothinker.models.loading import load_policy
from audiothinker.models.tiny import build_tiny_qwen2_audio
from audiothinker.prompts import chat_messages

SR = 16000
CHOICES = ["one", "two", "three"]


def _tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def _messages(question: str = "How many beeps are there?") -> list[dict]:
    return chat_messages(question, CHOICES, "adaptive")


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    torch.manual_seed(0)
    path = build_tiny_qwen2_audio(tmp_path_factory.mktemp("tiny") / "qwen2_audio")
    return load_policy(ModelConfig(name_or_path=str(path), family="qwen2_audio", dtype="float32"))


def _completions(policy, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded completion ids [N, C] and their mask, each ending with <|im_end|>."""
    tok = policy.tokenizer
    rows = [tok(t + "<|im_end|>", add_special_tokens=False).input_ids for t in texts]
    C = max(map(len, rows))
    ids = torch.full((len(rows), C), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros(len(rows), C, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


COMPLETIONS = ["<think>I hear two beeps, so two.</think><answer>two</answer>", "<answer>three</answer>"]


# ---- the loss path sees the audio -------------------------------------------------------------


def test_loss_path_logprobs_depend_on_the_audio_and_train_the_audio_tower(policy):
    tone = policy.build_prompts([_messages()], [_tone(1.5)])
    noise = policy.build_prompts([_messages()], [_noise(1.5)])
    # Same text, same number of audio placeholders: only the waveform differs.
    assert torch.equal(tone.input_ids, noise.input_ids)
    assert not torch.equal(tone.audio["input_features"], noise.audio["input_features"])
    n_audio = int((tone.input_ids == policy.model.config.audio_token_id).sum())
    assert n_audio == 37  # 150 mel frames -> 75 after the stride-2 conv -> 37 after pooling

    ids, mask = _completions(policy, COMPLETIONS)  # G = 2 completions of the one prompt
    scorer = ScoringModule(policy.model, policy)
    policy.model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        lp_tone = scorer(tone, ids, mask, 2)  # [2, C]
        lp_noise = scorer(noise, ids, mask, 2)
    assert lp_tone.shape == ids.shape
    assert lp_tone.requires_grad
    diff = ((lp_tone - lp_noise).abs() * mask).max().item()
    assert diff > 1e-3, f"log-probs barely depend on the audio (max diff {diff:.2e})"

    (lp_tone * mask).sum().backward()
    tower = policy.model.model.audio_tower
    trainable = {n: p for n, p in tower.named_parameters() if p.requires_grad}
    assert trainable
    missing = [n for n, p in trainable.items() if p.grad is None]
    assert missing == []
    assert tower.conv1.weight.grad.abs().sum() > 0  # the very first audio layer
    assert tower.layers[-1].fc2.weight.grad.abs().sum() > 0
    assert policy.model.model.multi_modal_projector.linear.weight.grad.abs().sum() > 0
    policy.model.zero_grad(set_to_none=True)


# ---- prompt_embeds scoring == the HF model's own forward ---------------------------------------


def _hf_logprobs(model, batch, ids: torch.Tensor, mask: torch.Tensor, G: int) -> torch.Tensor:
    """Log-probs of the completion tokens from Qwen2AudioForConditionalGeneration's own forward."""
    P = batch.input_ids.size(1)
    out = model(
        input_ids=torch.cat([batch.input_ids.repeat_interleave(G, 0), ids], 1),  # [N, P+C]
        input_features=batch.audio["input_features"].repeat_interleave(G, 0),
        feature_attention_mask=batch.audio["feature_attention_mask"].repeat_interleave(G, 0),
        attention_mask=torch.cat([batch.attention_mask.repeat_interleave(G, 0), mask], 1),
    )
    logits = out.logits[:, P - 1 : -1].float()  # [N, C, V]: the positions that predict completion tokens
    return torch.log_softmax(logits, -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)


def test_prompt_embeds_scoring_matches_hf_forward_with_left_padding(policy):
    # Two prompts of different lengths: a longer question and a longer clip (more placeholders).
    messages = [_messages(), _messages("Count the beeps you hear in this clip, then tell me how many there are?")]
    batch = policy.build_prompts(messages, [_tone(1.0), _noise(1.5)])
    lengths = batch.attention_mask.sum(1)
    assert lengths[0] < lengths[1]
    assert batch.attention_mask[0, 0] == 0 and batch.attention_mask[1, 0] == 1  # row 0 is left-padded

    ids, mask = _completions(policy, COMPLETIONS * 2)  # G = 2 per prompt, the second one shorter
    assert mask[1].sum() < mask[0].sum()
    with torch.no_grad():
        ours = policy.token_logprobs(policy.model, batch, ids, mask, 2)  # [4, C]
        theirs = _hf_logprobs(policy.model, batch, ids, mask, 2)
        # The padded prompt alone, without padding, is the ground truth for rows 0 and 1.
        alone = policy.build_prompts(messages[:1], [_tone(1.0)])
        assert alone.attention_mask.all()
        theirs_alone = _hf_logprobs(policy.model, alone, ids[:2], mask[:2], 2)
    m = mask.bool()
    torch.testing.assert_close(ours[m], theirs[m], atol=1e-4, rtol=0)
    torch.testing.assert_close(ours[:2][m[:2]], theirs_alone[m[:2]], atol=1e-4, rtol=0)
    assert ours[m].max() < 0  # real log-probs, not masked zeros


def test_scoring_module_matches_token_logprobs(policy):
    batch = policy.build_prompts([_messages()], [_tone(1.5)])
    ids, mask = _completions(policy, COMPLETIONS)
    with torch.no_grad():
        a = ScoringModule(policy.model, policy)(batch, ids, mask, 2, temperature=0.7)
        b = policy.token_logprobs(policy.model, batch, ids, mask, 2, temperature=0.7)
        c = policy.token_logprobs(policy.model, batch, ids, mask, 2, temperature=1.0)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(b, c)  # the temperature divides the logits


# ---- generation never samples the audio tokens -------------------------------------------------


def test_generate_never_emits_audio_tokens(policy):
    audio_ids = policy.audio_token_ids
    assert len(audio_ids) == 3  # <|AUDIO|> <|audio_bos|> <|audio_eos|>
    batch = policy.build_prompts([_messages(), _messages("Which beep is loudest?")], [_tone(1.5), _noise(1.0)])
    core = policy.model

    def favour_audio(_module, _inputs, logits):
        logits = logits.clone()
        logits[..., audio_ids] += 1e4  # make the audio tokens by far the likeliest
        return logits

    handle = core.lm_head.register_forward_hook(favour_audio)
    try:
        with torch.no_grad():
            # Without suppression the hooked model emits nothing but audio tokens ...
            plain = core.generate(
                inputs_embeds=policy.prompt_embeds(core, batch), attention_mask=batch.attention_mask,
                max_new_tokens=4, do_sample=False, pad_token_id=policy.tokenizer.pad_token_id,
            )
            assert set(plain.flatten().tolist()) <= set(audio_ids)
            # ... while the adapter's generate never samples them.
            torch.manual_seed(0)
            out = policy.generate(core, batch, 3, max_new_tokens=12, do_sample=True, temperature=1.0,
                                  pad_token_id=policy.tokenizer.pad_token_id)
    finally:
        handle.remove()
    assert out.shape[0] == 6  # B * G
    assert not torch.isin(out, torch.tensor(audio_ids)).any()
