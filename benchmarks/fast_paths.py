"""A prototype rollout sampler, timed by `step_time.py --fast`; it stays here, not in src/.

The trainer generates with transformers' `generate` (the library's logits processors and stopping
criteria), each prompt prefilled once and its KV cache repeated for the G completions
(models/base.py: `prompt_cache`); on GPUs a vLLM engine is the fast path. What this file measures
is how much of the remaining CPU rollout time is `generate`'s per-token overhead:

`fast_generate`: the same shared prompt cache, copied into buffers sized for the whole generation
(DynamicCache concatenates, copying itself at every token), then a plain decode loop (no logits
processors, stopping criteria or signature inspection per step) sampling by inverse CDF (one
uniform per row instead of torch.multinomial's one per vocabulary entry: ~25x cheaper on CPU).
min_new_tokens / EOS / pad / suppressed audio tokens as HF's generate; greedy output is
token-identical to the adapter's `generate` (checked by `self_check`). top_p < 1 and top_k are not
implemented.

`install(policy)` routes the adapter's `generate` through it, so `grpo_step` runs unchanged on top.
Check: `HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/fast_paths.py` (greedy tokens against the
adapters' own path; sampler frequencies).
"""

from __future__ import annotations

import types
from typing import Any

import torch
from transformers.cache_utils import DynamicLayer

from audiothinker.models.base import PromptBatch, prompt_cache, unwrap


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
    lm, head = policy.decoder(model)
    min_new = int(getattr(unwrap(model).generation_config, "min_new_tokens", None) or 0)
    G, P = num_generations, batch.attention_mask.size(1)
    embeds = policy.prompt_embeds(model, batch)  # [B, P, H]
    cache = prompt_cache(lm, embeds[:, :-1], batch.attention_mask[:, :-1], G)  # P-1 positions, B*G rows
    cache.layers = [_PreallocatedLayer(layer, P + max_new_tokens) for layer in cache.layers]
    N, device = len(batch) * G, embeds.device
    eos_ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    eos = torch.tensor(eos_ids, dtype=torch.long, device=device)
    suppress = torch.tensor(policy.audio_token_ids, dtype=torch.long, device=device)
    full_mask = torch.cat(
        [batch.attention_mask.repeat_interleave(G, 0), batch.attention_mask.new_ones(N, max_new_tokens)], dim=1
    )  # [N, P+T]: the generated tokens are all attended (those after EOS are masked later by the engine)
    pos = full_mask[:, :P].long().sum(-1, keepdim=True) - 1  # [N, 1] position of the last prompt token
    done = torch.zeros(N, dtype=torch.bool, device=device)
    out = []
    step_in = embeds[:, -1:].repeat_interleave(G, 0)  # [N, 1, H]: the last prompt token first
    embed = lm.get_input_embeddings()
    for t in range(max_new_tokens):
        h = lm(
            inputs_embeds=step_in, attention_mask=full_mask[:, : P + t], position_ids=pos,
            past_key_values=cache, use_cache=True,
        ).last_hidden_state  # [N, 1, H]
        logits = head(h[:, -1]).float()  # [N, V]
        if suppress.numel():
            logits[:, suppress] = float("-inf")
        if t < min_new and eos.numel():
            logits[:, eos] = float("-inf")
        tok = sample_inverse_cdf(torch.softmax(logits / temperature, dim=-1)) if do_sample else logits.argmax(-1)  # [N]
        if pad_token_id is not None:
            tok = torch.where(done, torch.full_like(tok, pad_token_id), tok)
        out.append(tok)
        if eos.numel():
            done |= torch.isin(tok, eos)
            if bool(done.all()):
                break
        step_in, pos = embed(tok[:, None]), pos + 1
    return torch.stack(out, dim=1)  # [N, C]


def install(policy: Any) -> Any:
    """Route the adapter's `generate` through `fast_generate` (an instance attribute)."""
    if policy.family not in ("text", "qwen2_audio"):
        raise NotImplementedError(f"fast_generate covers the text and qwen2_audio adapters, not {policy.family!r}")
    policy.generate = types.MethodType(fast_generate, policy)
    return policy


def self_check(workdir: str) -> None:
    """Greedy tokens equal the adapters' own `generate` on both tiny models; sampler frequencies.

    Run: python benchmarks/fast_paths.py
    """
    from pathlib import Path

    from audiothinker.config import ModelConfig
    from audiothinker.data.loaders import load_records
    from audiothinker.data.synthetic import write_synthetic
    from audiothinker.models.loading import load_policy, resolve_tiny
    from audiothinker.rollout import SamplingParams, build_engine
    from audiothinker.data.batching import prompt_batch

    records = load_records(str(write_synthetic(Path(workdir) / "data", 16, 0)), "jsonl").records[:8]
    for spec in ("tiny:text", "tiny:qwen2_audio"):
        policy = load_policy(ModelConfig(name_or_path=resolve_tiny(spec, Path(workdir) / "models"), dtype="float32"))
        batch = prompt_batch(policy, records, "no_think", None)
        engine = build_engine("hf", policy)
        greedy = SamplingParams(max_new_tokens=32, do_sample=False)
        hf = engine.generate(batch, 3, greedy).completion_ids
        install(policy)
        fast = engine.generate(batch, 3, greedy).completion_ids
        same = torch.equal(hf, fast)
        print(f"{spec}: greedy identical to the adapter's generate: {same}")
        assert same
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
