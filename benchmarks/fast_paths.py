"""Candidate speed-ups of our step, measured by `step_time.py --fast` before they move into src/.

1. `shared_prefix_logprobs`: score G completions of a prompt with the prompt encoded once.
   `token_logprobs` today runs every completion's forward over [prompt + completion], so the
   prompt (and for audio the ~50 placeholder positions) is recomputed G times, in the
   reference pass and in the loss forward and backward. Here the prompt runs on B rows with a
   KV cache, the cache is repeated G times (autograd flows through the repeat back into the
   prompt pass), and the completions run on B*G rows against it. Same log-probs up to float
   rounding; tokens through the transformer per pass: B*P + B*G*C instead of B*G*(P+C).
2. `fast_generate`: prefill the B prompts once (not B*G), repeat the cache G times into
   buffers sized for the whole generation (DynamicCache copies itself at every token), then
   a plain decode loop (no logits processors, stopping criteria or signature inspection per
   step) sampling by inverse CDF (one uniform per row instead of torch.multinomial's one per
   vocabulary entry: ~25x cheaper on CPU). min_new_tokens / EOS / pad as HF's generate;
   greedy output is token-identical to it (checked by `self_check`).

Both take the adapter (`TextPolicy` or `Qwen2AudioPolicy`) and install themselves with
`install(policy)`, so the trainer's functions run unchanged on top of them.
Check: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/fast_paths.py` (log-probs, gradients,
greedy tokens against the adapters' own paths; sampler frequencies).
"""

from __future__ import annotations

import types
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from audiothinker.algos.logprobs import selective_log_softmax
from audiothinker.models.base import PromptBatch, left_pad_position_ids


def _core(model: torch.nn.Module) -> torch.nn.Module:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _backbone(policy: Any, model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(decoder stack taking inputs_embeds, lm_head) of the policy's model."""
    core = _core(model)
    if policy.family == "qwen2_audio":
        return core.model.language_model, core.lm_head
    return core.model, core.lm_head


def _prompt_embeds(policy: Any, model: torch.nn.Module, batch: PromptBatch) -> torch.Tensor:
    if policy.family == "qwen2_audio":
        return policy.prompt_embeds(model, batch)  # [B, P, H], audio features in place of the placeholders
    return _backbone(policy, model)[0].get_input_embeddings()(batch.input_ids)  # [B, P, H]


def _encode_prompts(policy: Any, model: torch.nn.Module, batch: PromptBatch, G: int):
    """Prompt pass on B rows; returns (last prompt hidden state repeated [B*G, 1, H], cache repeated G times)."""
    lm, _ = _backbone(policy, model)
    pmask = batch.attention_mask  # [B, P]
    out = lm(
        inputs_embeds=_prompt_embeds(policy, model, batch), attention_mask=pmask,
        position_ids=left_pad_position_ids(pmask), use_cache=True,
    )
    cache = out.past_key_values
    cache.batch_repeat_interleave(G)  # out of place per layer: gradients reach the prompt pass
    return out.last_hidden_state[:, -1:].repeat_interleave(G, 0), cache  # [N, 1, H]


def shared_prefix_logprobs(
    policy: Any, model: torch.nn.Module, batch: PromptBatch, completion_ids: torch.Tensor,
    completion_mask: torch.Tensor, num_generations: int, temperature: float = 1.0,
) -> torch.Tensor:
    """log pi(completion token | prompt, previous tokens) -> [B*G, C], the prompt encoded once per prompt."""
    lm, head = _backbone(policy, model)
    G, C = num_generations, completion_ids.size(1)
    last_prompt, cache = _encode_prompts(policy, model, batch, G)  # [N, 1, H]
    mask = torch.cat([batch.attention_mask.repeat_interleave(G, 0), completion_mask], dim=1)  # [N, P+C]
    P = batch.attention_mask.size(1)
    hidden = [last_prompt]
    if C > 1:  # the last completion token predicts nothing we score
        comp = lm(
            inputs_embeds=lm.get_input_embeddings()(completion_ids[:, :-1]), attention_mask=mask[:, :-1],
            position_ids=left_pad_position_ids(mask)[:, P:-1], past_key_values=cache, use_cache=True,
        ).last_hidden_state  # [N, C-1, H]
        hidden.append(comp)
    logits = head(torch.cat(hidden, dim=1)).float() / temperature  # [N, C, V]
    return selective_log_softmax(logits, completion_ids)  # [N, C]


class _PreallocatedLayer(DynamicLayer):
    """A DynamicLayer whose keys/values live in a buffer sized for the whole generation.

    DynamicLayer.update concatenates, copying the whole cache at every decoded token
    (O(length) per token, more for long audio prompts); here each token is written in place
    and `keys`/`values` are views of the filled part, so the attention code sees no difference.
    """

    def __init__(self, layer: DynamicLayer, capacity: int):
        super().__init__()
        n, h, length, d = layer.keys.shape
        self.key_buf = layer.keys.new_empty(n, h, capacity, d)
        self.value_buf = layer.values.new_empty(n, h, capacity, d)
        self.key_buf[:, :, :length] = layer.keys
        self.value_buf[:, :, :length] = layer.values
        self.dtype, self.device, self.is_initialized = layer.keys.dtype, layer.keys.device, True
        self._set_length(length)

    def _set_length(self, length: int) -> None:
        self.length = length
        self.keys, self.values = self.key_buf[:, :, :length], self.value_buf[:, :, :length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        new = self.length + key_states.shape[-2]
        self.key_buf[:, :, self.length : new] = key_states
        self.value_buf[:, :, self.length : new] = value_states
        self._set_length(new)
        return self.keys, self.values


def sample_inverse_cdf(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row of probs [N, V] -> [N], by inverse CDF: one uniform per row.

    torch.multinomial (and the exponential race) draw V random numbers per row; on CPU that is
    ~0.9 ms for [32, 1k] against ~0.04 ms here. The cumsum is float64 so a 150k vocabulary adds
    no visible bias; right=True never lands on a zero-probability (suppressed) token.
    """
    cdf = probs.double().cumsum(-1)  # [N, V]
    u = torch.rand(probs.size(0), 1, dtype=cdf.dtype, device=cdf.device) * cdf[:, -1:]  # [N, 1]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.size(-1) - 1).squeeze(1)


@torch.no_grad()
def fast_generate(
    policy: Any, model: torch.nn.Module, batch: PromptBatch, num_generations: int, *, max_new_tokens: int,
    do_sample: bool = True, temperature: float = 1.0, top_p: float = 1.0, top_k: int | None = None,
    eos_token_id: list[int] | int | None = None, pad_token_id: int | None = None, **_: Any,
) -> torch.Tensor:
    """Sample G completions per prompt -> [B*G, C] (C <= max_new_tokens), pad after EOS."""
    if (top_p is not None and top_p < 1.0) or top_k:
        raise NotImplementedError("fast_generate samples from the full distribution (top_p=1, no top_k)")
    lm, head = _backbone(policy, model)
    gen_cfg = _core(model).generation_config
    min_new = int(getattr(gen_cfg, "min_new_tokens", None) or 0)
    G = num_generations
    last, cache = _encode_prompts(policy, model, batch, G)  # [N, 1, H]
    N, P, device = last.size(0), batch.attention_mask.size(1), last.device
    eos_ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    eos = torch.tensor(eos_ids, dtype=torch.long, device=device)
    suppress = torch.tensor(getattr(policy, "audio_token_ids", []) or [], dtype=torch.long, device=device)
    cache.layers = [_PreallocatedLayer(layer, P + max_new_tokens) for layer in cache.layers]
    full_mask = torch.cat(
        [batch.attention_mask.repeat_interleave(G, 0), batch.attention_mask.new_ones(N, max_new_tokens)], dim=1
    )  # [N, P+T]: the generated tokens are all attended (those after EOS are masked later by the engine)
    pos = full_mask[:, :P].long().sum(-1, keepdim=True)  # [N, 1] position of the next token
    done = torch.zeros(N, dtype=torch.bool, device=device)
    out = []
    logits = head(last[:, -1]).float()  # [N, V]
    embed = lm.get_input_embeddings()
    for t in range(max_new_tokens):
        if suppress.numel():
            logits[:, suppress] = float("-inf")
        if t < min_new and eos.numel():
            logits[:, eos] = float("-inf")
        if do_sample:
            tok = sample_inverse_cdf(torch.softmax(logits / temperature, dim=-1))  # [N]
        else:
            tok = logits.argmax(-1)
        if pad_token_id is not None:
            tok = torch.where(done, torch.full_like(tok, pad_token_id), tok)
        out.append(tok)
        if eos.numel():
            done |= torch.isin(tok, eos)
            if bool(done.all()):
                break
        if t == max_new_tokens - 1:
            break
        h = lm(
            inputs_embeds=embed(tok[:, None]), attention_mask=full_mask[:, : P + t + 1], position_ids=pos,
            past_key_values=cache, use_cache=True,
        ).last_hidden_state  # [N, 1, H]
        pos = pos + 1
        logits = head(h[:, -1]).float()  # [N, V]
    return torch.stack(out, dim=1)  # [N, C]


def install(policy: Any, scoring: bool = True, generation: bool = True) -> Any:
    """Route the adapter's token_logprobs / generate through the functions above (instance attributes)."""
    if policy.family not in ("text", "qwen2_audio"):
        raise NotImplementedError(f"fast paths cover the text and qwen2_audio adapters, not {policy.family!r}")
    if scoring:
        policy.token_logprobs = types.MethodType(shared_prefix_logprobs, policy)
    if generation:
        policy.generate = types.MethodType(fast_generate, policy)
    return policy


def self_check(workdir: str) -> None:
    """Equivalence with the adapters' own paths on both tiny models (run: python benchmarks/fast_paths.py)."""
    from pathlib import Path

    from audiothinker.config import ModelConfig
    from audiothinker.data.loaders import load_records
    from audiothinker.data.synthetic import write_synthetic
    from audiothinker.models.loading import load_policy, resolve_tiny
    from audiothinker.rollout import SamplingParams, build_engine
    from audiothinker.trainer.data import prompt_batch

    records = load_records(str(write_synthetic(Path(workdir) / "data", 16, 0)), "jsonl").records[:8]
    for spec in ("tiny:text", "tiny:qwen2_audio"):
        policy = load_policy(ModelConfig(name_or_path=resolve_tiny(spec, Path(workdir) / "models"), dtype="float32"))
        policy.max_audio_seconds = min(policy.max_audio_seconds, 30.0)
        batch = prompt_batch(policy, records, "no_think", None)
        engine = build_engine("hf", policy)
        rollout = engine.generate(policy.model, batch, 4, SamplingParams(max_new_tokens=32))
        args = (policy.model, batch, rollout.completion_ids, rollout.completion_mask, 4)
        mask = rollout.completion_mask.bool()
        ref, new = policy.token_logprobs(*args), shared_prefix_logprobs(policy, *args)
        params = [p for p in policy.model.parameters() if p.requires_grad]
        g_ref = torch.autograd.grad((ref * mask).sum(), params, allow_unused=True)
        g_new = torch.autograd.grad((new * mask).sum(), params, allow_unused=True)
        grad_err = max(float((a - b).norm() / (a.norm() + 1e-12)) for a, b in zip(g_ref, g_new) if a is not None)
        greedy = SamplingParams(max_new_tokens=32, do_sample=False)
        hf = engine.generate(policy.model, batch, 1, greedy).completion_ids
        install(policy, scoring=False)
        fast = engine.generate(policy.model, batch, 1, greedy).completion_ids
        fast3 = engine.generate(policy.model, batch, 3, greedy).completion_ids
        logp_err = float((ref - new).detach()[mask].abs().max())
        same = torch.equal(hf, fast) and all(torch.equal(fast3[g::3], fast) for g in range(3))
        print(f"{spec}: max |logp diff| {logp_err:.1e}, max rel grad diff {grad_err:.1e}, greedy identical: {same}")
        assert logp_err < 1e-4 and grad_err < 1e-4 and same
    probs = torch.softmax(torch.randn(1, 20) * 2, -1)
    probs[0, 3] = 0
    probs = (probs / probs.sum()).expand(200_000, 20)
    freq = torch.bincount(sample_inverse_cdf(probs), minlength=20).double() / 200_000
    print(f"inverse-CDF sampler: max |freq - p| {float((freq - probs[0]).abs().max()):.4f}, zero-p hits {int(freq[3] > 0)}")
    assert float((freq - probs[0]).abs().max()) < 0.005 and freq[3] == 0


if __name__ == "__main__":
    import os
    import sys
    import tempfile

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    self_check(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fast-paths-"))
