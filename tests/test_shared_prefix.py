"""Each prompt runs once for its G completions (models/base.py), in scoring and in generation.

The checks, on a tiny text Qwen2 and a tiny Qwen2-Audio with left-padded prompts of different
lengths and completions of different lengths:
- `shared_prefix_logprobs` gives the log-probs and gradients of `full_sequence_logprobs` (every
  completion over [prompt + completion]), and the latter equals the HF model's own forward;
- under gradient checkpointing transformers keeps no cache, and scoring falls back to the full path;
- inside DDP (the trainer's ScoringModule) gradients equal the plain module's, over two steps;
- generation from the repeated prompt cache is token-identical to HF `generate` with greedy
  decoding, and sampling is seeded (the same samples as HF's own `num_return_sequences` path);
- the text-only policy loads no audio, and `train` runs with it.
"""

from __future__ import annotations

import copy
import gc

import numpy as np
import pytest
import torch

from audiothinker.config import ModelConfig
from audiothinker.data.records import AudioQA
from audiothinker.models.base import (
    ScoringModule,
    checkpointing,
    completion_logprobs,
    full_sequence_logprobs,
    left_pad_position_ids,
    prompt_cache,
    shared_prefix_logprobs,
)
from audiothinker.models.loading import load_policy
from audiothinker.models.tiny import build_tiny_qwen2_audio, build_tiny_text
from audiothinker.prompts import chat_messages
from audiothinker.data.batching import prompt_batch

SR = 16000
G = 3
CHOICES = ["one", "two", "three"]
QUESTIONS = ["How many beeps?", "Count the beeps you hear in this clip, then say how many there are, please?"]
COMPLETIONS = [
    "<think>I hear two beeps, so two.</think><answer>two</answer>", "<answer>three</answer>", "one",
    "<answer>one</answer>", "<think>three</think><answer>three</answer>", "two two two",
]


def _noise(seconds: float, seed: int) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"text": str(build_tiny_text(root / "text")), "audio": str(build_tiny_qwen2_audio(root / "audio"))}


def _load(path: str, **kw):
    return load_policy(ModelConfig(name_or_path=path, dtype="float32", **kw))


@pytest.fixture(scope="module", params=["text", "audio"])
def policy(request, models):
    return _load(models[request.param])


def _batch(policy):
    """Two prompts of different lengths (question and clip), so the first is left-padded."""
    batch = policy.build_prompts([chat_messages(q, CHOICES, "adaptive") for q in QUESTIONS], [_noise(1.0, 0), _noise(1.5, 1)])
    assert batch.attention_mask[0, 0] == 0 and batch.attention_mask[1].all()
    return batch


def _completions(policy) -> tuple[torch.Tensor, torch.Tensor]:
    """[B*G, C] right-padded completion ids ending with <|im_end|>, and their mask (lengths differ)."""
    tok = policy.tokenizer
    rows = [tok(t + "<|im_end|>", add_special_tokens=False).input_ids for t in COMPLETIONS]
    ids = torch.full((len(rows), max(map(len, rows))), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
    assert len(set(mask.sum(1).tolist())) > 1
    return ids, mask


def _logprobs_and_grads(policy, score, model=None):
    """Log-probs [B*G, C] and the gradients of their masked mean (the loss's reduction) w.r.t. every parameter."""
    model = model or policy.model
    batch, (ids, mask) = _batch(policy), _completions(policy)
    backbone, head = policy.decoder(model)
    logp = score(backbone, head, policy.prompt_embeds(model, batch), batch.attention_mask, ids, mask, G, 0.9)
    params = [p for p in model.parameters() if p.requires_grad]
    loss = (logp * mask).sum() / mask.sum()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return logp.detach(), mask.bool(), grads


def _assert_same(a, b, atol: float = 1e-5):
    (lp_a, mask, g_a), (lp_b, _, g_b) = a, b
    torch.testing.assert_close(lp_a[mask], lp_b[mask], atol=atol, rtol=0)
    assert [g is None for g in g_a] == [g is None for g in g_b]
    for x, y in zip(g_a, g_b):
        if x is not None:
            torch.testing.assert_close(x, y, atol=atol, rtol=0)


# ---- scoring ---------------------------------------------------------------------------------


def test_shared_prefix_matches_full_sequence(policy):
    policy.model.train()
    full = _logprobs_and_grads(policy, full_sequence_logprobs)
    shared = _logprobs_and_grads(policy, shared_prefix_logprobs)
    _assert_same(shared, full)
    assert full[0][full[1]].max() < 0  # real log-probs
    if policy.family == "qwen2_audio":  # the gradient reaches the audio encoder through the shared cache
        tower = {id(p) for p in policy.model.model.audio_tower.parameters()}
        params = [p for p in policy.model.parameters() if p.requires_grad]
        assert any(g is not None and id(p) in tower and g.abs().sum() > 0 for p, g in zip(params, shared[2]))
    # the adapter's token_logprobs takes the shared path
    batch, (ids, mask) = _batch(policy), _completions(policy)
    with torch.no_grad():
        ours = policy.token_logprobs(policy.model, batch, ids, mask, G, 0.9)
    torch.testing.assert_close(ours[full[1]], full[0][full[1]], atol=1e-5, rtol=0)


def test_full_sequence_matches_the_text_model_forward(models):
    policy = _load(models["text"])
    batch, (ids, mask) = _batch(policy), _completions(policy)
    full_ids = torch.cat([batch.input_ids.repeat_interleave(G, 0), ids], 1)  # [N, P+C]
    full_mask = torch.cat([batch.attention_mask.repeat_interleave(G, 0), mask], 1)
    with torch.no_grad():
        positions = left_pad_position_ids(full_mask)
        logits = policy.model(input_ids=full_ids, attention_mask=full_mask, position_ids=positions).logits  # [N, P+C, V]
        theirs = torch.log_softmax(logits[:, batch.input_ids.size(1) - 1 : -1].float(), -1)
        theirs = theirs.gather(-1, ids.unsqueeze(-1)).squeeze(-1)  # [N, C]
        backbone, head = policy.decoder(policy.model)
        embeds = policy.prompt_embeds(policy.model, batch)  # [B, P, H]
        ours = full_sequence_logprobs(backbone, head, embeds, batch.attention_mask, ids, mask, G)
    torch.testing.assert_close(ours[mask.bool()], theirs[mask.bool()], atol=1e-5, rtol=0)


def test_gradient_checkpointing_falls_back_to_the_full_path(policy):
    ckpt = _load(policy.name_or_path, gradient_checkpointing=True)  # same weights, checkpointed layers
    ckpt.model.train()
    backbone, _ = ckpt.decoder(ckpt.model)
    assert checkpointing(backbone)
    # The conflict: a checkpointed decoder returns no cache, so none can be shared ...
    batch = _batch(ckpt)
    embeds = ckpt.prompt_embeds(ckpt.model, batch)
    assert backbone(inputs_embeds=embeds, attention_mask=batch.attention_mask, use_cache=True).past_key_values is None
    assert prompt_cache(backbone, embeds, batch.attention_mask, G) is None
    with pytest.raises(ValueError, match="no prompt cache"):
        _logprobs_and_grads(ckpt, shared_prefix_logprobs)
    # ... and scoring (token_logprobs dispatches through completion_logprobs) takes the full path,
    # with the gradients of the un-checkpointed shared path.
    policy.model.train()
    _assert_same(_logprobs_and_grads(ckpt, completion_logprobs), _logprobs_and_grads(policy, shared_prefix_logprobs))
    ckpt.model.eval()
    assert not checkpointing(backbone)  # generation (eval mode) still shares the prompt cache
    assert prompt_cache(backbone, embeds, batch.attention_mask, G) is not None


def test_ddp_gradients_match_the_plain_module(policy, tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    plain, wrapped = copy.deepcopy(policy.model).train(), copy.deepcopy(policy.model).train()
    batch, (ids, mask) = _batch(policy), _completions(policy)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    ddp = None
    try:
        ddp = DistributedDataParallel(ScoringModule(wrapped, policy))
        scorer = ScoringModule(plain, policy)
        for _ in range(2):  # a second forward fails if a parameter missed its gradient in the first
            for module in (scorer, ddp):
                module.zero_grad(set_to_none=True)
                logp = module(batch, ids, mask, G)  # [N, C]
                ((logp * mask).sum() / mask.sum()).backward()
    finally:
        # Free DDP's reducer while the group is up: one freed after destroy_process_group (when the test's
        # locals go) was seen to hang for good in gloo's teardown (a thread join), taking the suite with it.
        module = ddp = logp = None
        gc.collect()
        dist.destroy_process_group()
    for (name, p), q in zip(plain.named_parameters(), wrapped.parameters()):
        if p.requires_grad:
            assert q.grad is not None, name
            torch.testing.assert_close(q.grad, p.grad, atol=1e-6, rtol=0)


# ---- generation ------------------------------------------------------------------------------


def _hf_generate(policy, batch, n: int, **sampling) -> torch.Tensor:
    """HF `generate` on the B prompts with num_return_sequences (the path before the shared cache)."""
    core = policy.model
    with torch.no_grad():
        if policy.family == "qwen2_audio":
            out = core.generate(  # input_ids too: a repetition penalty counts the prompt (as the adapter does)
                input_ids=batch.input_ids, inputs_embeds=policy.prompt_embeds(core, batch), attention_mask=batch.attention_mask,
                num_return_sequences=n, suppress_tokens=policy.audio_token_ids, **sampling,
            )
            return out[:, batch.input_ids.size(1) :]
        out = core.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask, num_return_sequences=n, **sampling)
        return out[:, batch.input_ids.size(1) :]


def test_generation_from_the_shared_cache_matches_hf_generate(policy):
    policy.model.eval()
    batch = _batch(policy)
    tok = policy.tokenizer
    common = dict(max_new_tokens=16, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    greedy = _hf_generate(policy, batch, 1, do_sample=False, **common)  # [B, C]; HF greedy takes no num_return_sequences > 1
    ours = policy.generate(policy.model, batch, G, do_sample=False, **common)  # [B*G, C]
    assert ours.shape[0] == len(batch) * G
    for g in range(G):
        assert torch.equal(ours[g::G], greedy)

    sampling = dict(do_sample=True, temperature=1.0, top_p=1.0, **common)
    torch.manual_seed(3)
    a = policy.generate(policy.model, batch, G, **sampling)
    torch.manual_seed(3)
    b = policy.generate(policy.model, batch, G, **sampling)
    torch.manual_seed(3)
    hf = _hf_generate(policy, batch, G, **sampling)
    assert torch.equal(a, b)
    assert torch.equal(a, hf)  # same random draws on the same rows: same samples
    assert len({tuple(r) for r in a.tolist()}) > 1


# ---- the text-only policy --------------------------------------------------------------------


def test_prompt_batch_loads_no_audio_for_the_text_policy(models):
    policy = _load(models["text"])
    assert policy.uses_audio is False
    records = [AudioQA(f"r{i}", "/nonexistent/clip.wav", q, CHOICES, "two") for i, q in enumerate(QUESTIONS)]
    batch = prompt_batch(policy, records, "adaptive", None)  # the file is never opened
    assert len(batch) == 2 and batch.audio == {}


def test_train_text_policy_one_step(tmp_path, monkeypatch):
    from pathlib import Path

    from audiothinker.config import load_config
    from audiothinker.trainer.grpo import train

    monkeypatch.setenv("AUDIOTHINKER_CACHE", str(tmp_path / ".models"))
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "tiny_cpu.yaml"
    cfg = load_config(recipe, [
        f"output_dir={tmp_path / 'run'}", "model.name_or_path=tiny:text", "max_steps=1", "log.progress=false",
        "data.synthetic_size=8", "rollout.max_new_tokens=8",
    ])
    final = train(cfg)
    assert (final / "model.safetensors").is_file()
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 1
