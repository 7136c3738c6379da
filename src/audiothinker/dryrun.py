"""`audiothinker train --dry-run`: check a recipe without GPUs, weights or hub access.

It validates the config, builds the model architecture from its real config on the meta device
(no weights), runs the data pipeline and prompt rendering on a few records, and prints the
parameter count, tokens per step and an estimate of memory per GPU under the accelerate config.

Memory per GPU (bytes; P = all parameters, T = trainable ones, N = GPUs, b = 2 for bf16/fp16, 4 for fp32):
    weights     b * P                       (/ N under ZeRO-3 or FSDP full shard)
    gradients   b * T                       (/ N under ZeRO-2/3 or FSDP)
    optimizer   (4 + 4 + 4) * T             AdamW m, v and an fp32 master copy under mixed precision
                (4 + 4) * T                 without one (fp32 weights)      (/ N under ZeRO-1/2/3 or FSDP)
    reference   b * P  when train.beta > 0 and not LoRA (LoRA disables its adapter instead)
                                            (/ N under ZeRO-3 or FSDP)
    kv cache    2 * L * kv_heads * head_dim * b * G * per_device_batch * (prompt + max_new_tokens)
    logits      4 * V * G * per_device_batch * max_new_tokens  (fp32 log-softmax over the completions)
Activations beyond the logits are not counted (gradient checkpointing keeps them small); the
estimate is a floor to plan GPUs with, not a measurement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Real configs shipped in the repository, by hub id (configs/models/*/SOURCE.md says where each fact is from).
SHIPPED_CONFIGS = {
    "Qwen/Qwen2-Audio-7B-Instruct": REPO / "configs" / "models" / "qwen2_audio_7b_instruct",
    "Qwen/Qwen2.5-Omni-7B": REPO / "configs" / "models" / "qwen2_5_omni_7b",
}
DRY_RUN_RECORDS = 4


@dataclass(frozen=True)
class Parallel:
    """What the memory estimate needs from an accelerate config."""

    n_gpus: int = 1
    zero_stage: int = 0  # DeepSpeed stage; FSDP full shard counts as 3, shard-grad-op as 2
    mixed_precision: str = "no"
    name: str = "single process"
    ds_settings: tuple[tuple[str, Any], ...] = ()  # DeepSpeed keys that must match the training config


def read_accelerate_config(path: str | Path | None) -> Parallel:
    if path is None:
        return Parallel()
    import yaml

    p = Path(path)
    if not p.is_file():
        from audiothinker.config import ConfigError

        raise ConfigError(f"accelerate config {p} not found (--accelerate-config)")
    raw = yaml.safe_load(p.read_text()) or {}
    n = int(raw.get("num_processes", 1))  # accelerate's num_processes counts every GPU of every machine
    kind = str(raw.get("distributed_type", "NO")).upper()
    stage, ds = 0, ()
    if kind == "DEEPSPEED":
        dsc = raw.get("deepspeed_config") or {}
        stage = int(dsc.get("zero_stage", 0))
        ds = tuple((k, dsc[k]) for k in ("gradient_accumulation_steps", "gradient_clipping") if k in dsc)
    elif kind == "FSDP":
        strategy = str((raw.get("fsdp_config") or {}).get("fsdp_sharding_strategy", "FULL_SHARD")).upper()
        stage = 3 if "FULL" in strategy or strategy == "1" else 2 if "GRAD" in strategy or strategy == "2" else 0
    return Parallel(n, stage, str(raw.get("mixed_precision", "no")), f"{p.name} ({kind}, {n} processes)", ds)


def check_against_accelerate(cfg, par: Parallel) -> None:
    """DeepSpeed reads accumulation and clipping from its own config: they must equal the recipe's."""
    from audiothinker.config import ConfigError

    ours = {"gradient_accumulation_steps": cfg.train.gradient_accumulation_steps, "gradient_clipping": cfg.train.max_grad_norm}
    keys = {"gradient_accumulation_steps": "train.gradient_accumulation_steps", "gradient_clipping": "train.max_grad_norm"}
    for key, value in par.ds_settings:
        if float(value) != float(ours[key]):
            raise ConfigError(f"{keys[key]}={ours[key]} but {par.name} sets deepspeed_config.{key}={value}; make them equal")


def accelerate_config_named_in(recipe: str | Path | None) -> str | None:
    """The `--config_file X` of the recipe's launch comment, relative to the repository."""
    if not recipe or not Path(recipe).is_file():
        return None
    m = re.search(r"--config_file\s+(\S+)", Path(recipe).read_text())
    if not m:
        return None
    path = Path(m.group(1))
    return str(path if path.is_absolute() or path.exists() else REPO / path)


def memory_per_gpu(total: int, trainable: int, par: Parallel, *, bytes_per_param: int, reference: bool,
                   kv_cache: int, logits: int) -> dict[str, float]:
    """The estimate of the module docstring, in bytes, by part."""
    n, s = max(1, par.n_gpus), par.zero_stage
    master = 4 if bytes_per_param < 4 else 0
    parts = {
        "weights": bytes_per_param * total / (n if s >= 3 else 1),
        "gradients": bytes_per_param * trainable / (n if s >= 2 else 1),
        "optimizer": (8 + master) * trainable / (n if s >= 1 else 1),
        "reference": (bytes_per_param * total / (n if s >= 3 else 1)) if reference else 0.0,
        "kv_cache": float(kv_cache),
        "logits": float(logits),
    }
    parts["total"] = sum(parts.values())
    return parts


def model_config(name_or_path: str):
    """The checkpoint's config: a local directory's, or the one shipped for a known hub id."""
    from transformers import AutoConfig

    local = Path(name_or_path)
    if (local / "config.json").is_file():
        return AutoConfig.from_pretrained(local)
    if name_or_path in SHIPPED_CONFIGS:
        return AutoConfig.from_pretrained(SHIPPED_CONFIGS[name_or_path])
    from audiothinker.config import ConfigError

    raise ConfigError(
        f"model.name_or_path={name_or_path!r}: no local config.json and no shipped config "
        f"(known: {sorted(SHIPPED_CONFIGS)}); point it at a local checkpoint directory"
    )


def meta_model(config, family: str):
    """The architecture on the meta device: shapes only, no memory, no weights."""
    import torch
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration, Qwen2AudioForConditionalGeneration

    cls = Qwen2AudioForConditionalGeneration if family == "qwen2_audio" else Qwen2_5OmniThinkerForConditionalGeneration
    with torch.device("meta"):
        return cls._from_config(config)


def count_parameters(model, cfg) -> tuple[int, int]:
    """(all, trainable) parameters under the model config (frozen audio tower, model.freeze_parameters, LoRA)."""
    from audiothinker.models.base import audio_tower_of
    from audiothinker.models.loading import freeze, lora_config

    total = sum(p.numel() for p in model.parameters())
    if cfg.model.lora:
        from peft import get_peft_model

        peft = get_peft_model(model, lora_config(cfg.model))
        trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
        return total + trainable, trainable

    freeze(model, audio_tower_of(model), cfg.model, cfg.model.name_or_path)
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)


def _audio_tokens(seconds: float, window: float) -> int:
    frames = int(min(seconds, window) * 100)  # 10 ms hop
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def render_prompts(cfg, family: str) -> tuple[list[str], list[int], int, int]:
    """Load a few records (audio included) and render their prompts with the family's published
    template; returns (prompts, text tokens per prompt, most audio tokens of a prompt, records read)."""
    from audiothinker.data.audio import load_record_audio
    from audiothinker.models import tiny
    from audiothinker.prompts import chat_messages
    from audiothinker.rewards import get_preset
    from audiothinker.trainer.data import load_training_records, training_file

    path, fmt = training_file(cfg)
    if not Path(path).is_file():
        from audiothinker.config import ConfigError

        raise ConfigError(f"data.train_file {path} not found; pass --set data.train_file=FILE (format {fmt})")
    records, _ = load_training_records(path, fmt, cfg)
    records = records[:DRY_RUN_RECORDS]
    window = 30.0 if family == "qwen2_audio" else 300.0
    limit = min(cfg.data.max_audio_seconds or window, window)
    seconds = [len(load_record_audio(r, 16000, max_seconds=limit)) / 16000 for r in records]
    template = tiny.QWEN2_AUDIO_CHAT_TEMPLATE if family == "qwen2_audio" else tiny.OMNI_CHAT_TEMPLATE
    # A stand-in tokenizer with Qwen's pre-tokenizer (a smaller vocabulary: counts run a little high).
    tok = tiny.train_tokenizer(tiny.QWEN2_AUDIO_SPECIAL if family == "qwen2_audio" else tiny.OMNI_SPECIAL)
    kind = get_preset(cfg.reward.preset).prompt
    prompts = [tok.apply_chat_template(chat_messages(r.question, r.choices, kind, r.audio), chat_template=template,
                                       tokenize=False, add_generation_prompt=True) for r in records]
    for p in prompts:
        if p.count("<|AUDIO|>") != 1:
            raise ValueError(f"the {family} template rendered {p.count('<|AUDIO|>')} audio placeholders, expected 1")
    text_tokens = [len(tok.encode(p, add_special_tokens=False)) for p in prompts]
    return prompts, text_tokens, max(_audio_tokens(s, window) for s in seconds), len(records)


def dry_run(cfg, accelerate_config: str | None, recipe: str | None = None) -> str:
    """Everything but the training; returns the report (the CLI prints it)."""
    import torch

    family = cfg.model.family
    mc = model_config(cfg.model.name_or_path)
    if family == "auto":
        family = {"qwen2_audio": "qwen2_audio"}.get(mc.model_type, "qwen2_5_omni")
    model = meta_model(mc, family)
    total, trainable = count_parameters(model, cfg)
    par = read_accelerate_config(accelerate_config or accelerate_config_named_in(recipe))
    check_against_accelerate(cfg, par)
    prompts, text_tokens, audio_tokens, n_records = render_prompts(cfg, family)

    r, t = cfg.rollout, cfg.train
    prompt_len = max(text_tokens) + audio_tokens
    per_step_prompts = t.per_device_batch_size * t.gradient_accumulation_steps * par.n_gpus
    completions = per_step_prompts * r.num_generations
    step_tokens = completions * (prompt_len + r.max_new_tokens)
    text = mc.get_text_config()
    b = 4 if (cfg.model.dtype == "float32") else 2
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    rows = t.per_device_batch_size * r.num_generations
    kv = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * b * rows * (prompt_len + r.max_new_tokens)
    logits = 4 * text.vocab_size * rows * r.max_new_tokens
    mem = memory_per_gpu(total, trainable, par, bytes_per_param=b, reference=t.beta > 0 and not cfg.model.lora,
                         kv_cache=kv, logits=logits)
    gib = lambda x: f"{x / 2**30:7.1f} GiB"  # noqa: E731
    lines = [
        f"dry run: {cfg.model.name_or_path} ({family}, {type(model).__name__} on the meta device, torch {torch.__version__})",
        f"parameters: {total / 1e9:.2f} B total, {trainable / 1e9:.2f} B trainable",
        f"data: {n_records} records of {cfg.data.train_file or 'the synthetic set'} rendered; prompt "
        f"{max(text_tokens)} text tokens (stand-in tokenizer) + {audio_tokens} audio tokens",
        f"prompt 1: {prompts[0]!r}",
        f"per step: {per_step_prompts} prompts x {r.num_generations} completions = {completions} sequences, "
        f"<= {step_tokens:,} tokens ({prompt_len} prompt + {r.max_new_tokens} new each)",
        f"memory per GPU under {par.name}, ZeRO stage {par.zero_stage}, {'bf16/fp16' if b == 2 else 'fp32'} weights:",
    ]
    lines += [f"  {k:<10} {gib(v)}" for k, v in mem.items()]
    return "\n".join(lines)
