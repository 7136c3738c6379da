"""The vLLM engine: one in-process `vllm.LLM` per training process, colocated with the trainer.

Audio reaches vLLM as `multi_modal_data` (raw waveform + rate; vLLM's processor extracts the
features and expands the placeholder), after `check_placeholders` has proved that every prompt has
exactly as many audio placeholders as clips: vLLM itself accepts a placeholder with no audio.

Weights: the engine starts with dummy weights and takes every weight from the trainer's module
(`sync_weights`), renamed to vLLM's layout (`vllm_weight_name`), LoRA merged (`merged_weights`),
through `collective_rpc("reload_weights")`; the encoder, multimodal and prefix caches are reset
after it, since a stale encoder cache would serve audio embeddings of the old weights. So a
checkpoint's on-disk names never matter, and eval and training load weights the same way.

Memory: on CUDA, `gpu_memory_utilization` is vLLM's share of the device; with sleep mode vLLM
releases weights and KV cache after each rollout (the next `sync_weights` wakes it and reloads).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import torch

from audiothinker.models.base import Policy, PromptBatch, is_peft, unwrap
from audiothinker.models.registry import Family, get_family
from audiothinker.rollout.base import EngineOptions, Rollout, SamplingParams, register_engine, stop_ids

AUDIO_PLACEHOLDER = "<|AUDIO|>"


def vllm_family(family: str) -> Family:
    """The registered family, which must declare its vLLM weight names (models/registry.py)."""
    found = get_family(family)
    if found.vllm_weight_prefixes is None:
        raise ValueError(f"rollout engine 'vllm' does not know model family {family!r}")
    return found


def vllm_weight_name(family: str, name: str) -> str:
    """The vLLM checkpoint-format name of a transformers parameter of `family` (its registered prefixes)."""
    for old, new in vllm_family(family).vllm_weight_prefixes or ():
        if name.startswith(old):
            return new + name[len(old):]
    raise KeyError(f"{family}: no vLLM name for parameter {name!r}")


def merged_weights(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of the bare transformers model; a peft model yields base + LoRA merged (then unmerges).

    A generator: the merge lasts while vLLM reads it, and the adapter is unmerged even if reading stops early.
    """
    peft = is_peft(model)
    if peft:
        model.merge_adapter()
    try:
        base = unwrap(model)
        with torch.no_grad():
            for name, tensor in base.state_dict().items():
                if "lora_" in name:
                    continue  # adapter factors: already inside the merged base weight
                yield name.replace(".base_layer.", "."), tensor
    finally:
        if peft:
            model.unmerge_adapter()


def check_placeholders(texts: list[str], waveforms: list[Any], placeholder: str = AUDIO_PLACEHOLDER) -> None:
    """Every prompt has one placeholder per clip (vLLM would answer a placeholder with no audio, unheard)."""
    for i, text in enumerate(texts):
        clips = 0 if i >= len(waveforms) or waveforms[i] is None else 1
        found = text.count(placeholder)
        if found != clips:
            raise ValueError(
                f"prompt {i}: {found} audio placeholder(s) {placeholder} but {clips} clip(s); "
                "the chat template and the audio disagree"
            )


def pad_rows(rows: list[list[float]], pad: float, dtype: torch.dtype) -> torch.Tensor:
    """Right-pad ragged rows to a [N, max len] tensor (at least one column)."""
    width = max([len(r) for r in rows] + [1])
    return torch.tensor([list(r) + [pad] * (width - len(r)) for r in rows], dtype=dtype)


def tie_override(family: str, model: torch.nn.Module) -> Any:
    """vLLM config override making its LM head tied exactly when the transformers module's is.

    transformers decides tying from the loaded module (Qwen2-Audio reads a top-level flag that
    its text config may contradict); vLLM reads the text config. A disagreement would make vLLM
    sample from the embedding matrix instead of the trained head.
    """
    core = unwrap(model)
    tied = core.get_output_embeddings().weight is core.get_input_embeddings().weight
    found = vllm_family(family)
    if found.vllm_hf_overrides is not None:  # a family whose vLLM config is more than its own (the Omni thinker)
        return found.vllm_hf_overrides(tied)
    override: dict[str, Any] = {"tie_word_embeddings": tied}
    for key in reversed(found.vllm_text_config):  # e.g. text_config
        override = {key: override}
    return override


def _max_positions(model: torch.nn.Module) -> int:
    """The language model's position limit (vLLM refuses a longer max_model_len)."""
    core = unwrap(model)
    return int(core.config.get_text_config().max_position_embeddings)


def _vllm_dtype(name: str) -> str:
    if name == "auto":  # as models/loading.py: bf16 on CUDA, fp32 on CPU, so both sides compute alike
        return "bfloat16" if torch.cuda.is_available() else "float32"
    return name


@register_engine("vllm")
class VLLMEngine:
    """`vllm.LLM` in this process; `generate` returns vLLM's sampled-token log-probs with the completions."""

    name = "vllm"

    def __init__(self, policy: Policy, options: EngineOptions | None = None):
        # The engine core must live in this process: collective_rpc then takes a weight iterator, not pickles.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError(f"rollout engine 'vllm' needs the vllm package ({e}); see docs/rollout.md (make test-vllm)") from e
        options = options or EngineOptions(name_or_path=policy.name_or_path)
        self.policy, self.family = policy, vllm_family(policy.family).name
        self.eos_ids, self.pad_id = stop_ids(policy)
        self.audio_ids = list(policy.audio_token_ids)
        cuda = torch.cuda.is_available()
        self.sleep_enabled = options.enable_sleep_mode and cuda  # vLLM's sleep mode is CUDA-only
        kwargs: dict[str, Any] = dict(
            model=options.name_or_path, dtype=_vllm_dtype(options.dtype), seed=options.seed,
            max_model_len=min(options.max_model_len, _max_positions(policy.model)), max_num_seqs=options.max_num_seqs, load_format="dummy",
            logprobs_mode="processed_logprobs",  # after temperature: comparable with our temperature-scaled log-probs
            gpu_memory_utilization=options.gpu_memory_utilization, enable_sleep_mode=self.sleep_enabled,
            hf_overrides=tie_override(self.family, policy.model),
        )
        if policy.uses_audio:
            kwargs["limit_mm_per_prompt"] = {"audio": 1}
        if not cuda:
            kwargs.update(enforce_eager=True, kv_cache_memory_bytes=options.cpu_kv_cache_bytes)
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            kwargs["distributed_executor_backend"] = "external_launcher"  # one engine per rank, as TRL's colocate mode
        self.llm = LLM(**kwargs)
        self._synced, self._asleep = False, False

    # ---- weights ------------------------------------------------------------------------------
    def sync_weights(self, model: torch.nn.Module) -> None:
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False
        weights = ((vllm_weight_name(self.family, n), t) for n, t in merged_weights(model))
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True})
        engine = self.llm.llm_engine
        engine.reset_encoder_cache()  # audio embeddings computed with the old weights
        self.llm.reset_mm_cache()
        self.llm.reset_prefix_cache()
        self._synced = True

    def close(self) -> None:
        self.llm = None  # type: ignore[assignment]
        import gc

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ---- sampling -----------------------------------------------------------------------------
    def sampling_params(self, params: SamplingParams, num_generations: int) -> Any:
        from vllm import SamplingParams as VSamplingParams

        return VSamplingParams(
            n=num_generations, temperature=params.temperature if params.do_sample else 0.0,
            top_p=params.top_p if params.do_sample else 1.0, top_k=(params.top_k or -1) if params.do_sample else -1,
            repetition_penalty=params.repetition_penalty, max_tokens=params.max_new_tokens, seed=params.seed,
            min_tokens=params.min_new_tokens,
            stop_token_ids=self.eos_ids, logprobs=0,
            logit_bias={i: -100.0 for i in self.audio_ids} or None,  # as HF's suppress_tokens: no placeholder emitted
        )

    def generate(self, prompts: PromptBatch, num_generations: int, params: SamplingParams) -> Rollout:
        if not self._synced:
            raise RuntimeError("vLLM engine: call sync_weights(model) before generate (it starts with dummy weights)")
        check_placeholders(prompts.texts, prompts.waveforms)
        requests: list[dict[str, Any]] = []
        for i, text in enumerate(prompts.texts):
            req: dict[str, Any] = {"prompt": text}
            if i < len(prompts.waveforms) and prompts.waveforms[i] is not None:
                req["multi_modal_data"] = {"audio": [(prompts.waveforms[i], prompts.sampling_rate)]}
            requests.append(req)
        sampling: Any = self.sampling_params(params, num_generations)
        if params.seed is not None:  # one seed per prompt (vLLM seeds completion j with seed + j): reproducible rows
            sampling = [
                self.sampling_params(dataclasses.replace(params, seed=params.seed + i * num_generations), num_generations)
                for i in range(len(requests))
            ]
        outs = self.llm.generate(requests, sampling, use_tqdm=False)
        rows, lps, truncated = [], [], []
        for out in outs:  # in prompt order; n completions each
            for c in out.outputs:
                ids = list(c.token_ids)
                logp = [float(d[t].logprob) if d and t in d else 0.0 for t, d in zip(ids, c.logprobs or [{}] * len(ids))]
                if c.finish_reason == "stop" and (not ids or ids[-1] not in self.eos_ids):
                    ids, logp = ids + [self.eos_ids[0]], logp + [0.0]  # keep the EOS the loss trains on, as HF does
                rows.append(ids)
                lps.append(logp)
                truncated.append(c.finish_reason == "length")
        if self.sleep_enabled:  # give the memory back to training until the next sync
            self.llm.sleep(level=2)
            self._asleep, self._synced = True, False
        ids = pad_rows(rows, self.pad_id, torch.long)  # [B*G, C]
        mask = pad_rows([[1] * len(r) for r in rows], 0, torch.long)  # [B*G, C]
        logprobs = pad_rows(lps, 0.0, torch.float32) * mask  # [B*G, C]
        texts = self.policy.tokenizer.batch_decode(ids, skip_special_tokens=True)
        device = prompts.input_ids.device
        return Rollout(ids.to(device), mask.to(device), texts, torch.tensor(truncated, device=device), logprobs.to(device))
