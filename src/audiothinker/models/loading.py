"""Load a policy (model + processor + adapter) from a local path, a hub id or a `tiny:*` spec."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from audiothinker.config import ModelConfig
from audiothinker.models.base import Policy, is_peft
from audiothinker.models.registry import builder_source, detect_family_of, get_family, tiny_builders

# `tiny:<family>` is the published layout shrunk (30 s / 300 s windows); `tiny:<family>_short` the same
# with a 2 s mel window, a cheaper audio encoder for unit tests. Each family registers its own
# (models/registry.py); `tiny_specs()` lists them.


def tiny_specs() -> list[str]:
    return sorted(tiny_builders())


def default_cache_dir() -> Path:
    return Path(os.environ.get("AUDIOTHINKER_CACHE", Path.home() / ".cache" / "audiothinker"))


def resolve_tiny(spec: str, cache_dir: str | Path | None = None, seed: int = 0) -> str:
    """Build the tiny model named by `spec` once (deterministic by seed) and return its path.

    The cache key includes a hash of the builder's source, so a changed builder never serves a stale model.
    """
    import hashlib

    builders = tiny_builders()
    if spec not in builders:
        raise ValueError(f"unknown tiny model {spec!r}; valid: {sorted(builders)}")
    name = spec.split(":", 1)[1]
    version = hashlib.sha1(builder_source(builders[spec]).encode()).hexdigest()[:8]
    out = Path(cache_dir or default_cache_dir()) / f"tiny-{name}-seed{seed}-{version}"
    if (out / "audiothinker_tiny.json").exists():
        return str(out)
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    with torch.random.fork_rng(devices=[]):  # the builder seeds torch: the run's RNG must not depend on a cache miss
        builders[spec](tmp, seed=seed)
    try:
        tmp.rename(out)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def _model_config(path: str) -> tuple[str, list[str]]:
    """The checkpoint's config.json (model_type, architectures), no weights read; a missing or broken config names the path."""
    from transformers import AutoConfig

    from audiothinker.config import ConfigError

    if path.startswith(("/", ".", "~")) and not Path(path).expanduser().exists():
        raise ConfigError(f"model.name_or_path: {path} does not exist")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model.name_or_path: cannot read the model config of {path}: {' '.join(str(e).split())[:300]}") from e
    return getattr(config, "model_type", ""), list(getattr(config, "architectures", None) or [])


def check_family(path: str, family: str) -> str:
    """`family` if the checkpoint's config.json agrees, else a ConfigError naming the key and both values.
    Checked before any weights load: the wrong model class could otherwise build a huge random model."""
    from audiothinker.config import ConfigError

    detected = detect_family(path)
    if family != "auto" and family != detected:
        raise ConfigError(f"model.family: {family!r} does not match the checkpoint {path}, whose config.json says "
                          f"model_type {_model_config(path)[0]!r} (family {detected!r}); set model.family={detected} or auto")
    return detected


def detect_family(path: str) -> str:
    """The registered family that claims the checkpoint's config.json (models/registry.py)."""
    return detect_family_of(*_model_config(path))


def _dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_policy(cfg: ModelConfig, cache_dir: str | Path | None = None, path: str | None = None) -> Policy:
    """Load model + processor into the family's adapter (LoRA / frozen audio tower / feature caches applied)."""
    name = path or cfg.name_or_path
    if name.startswith("tiny:"):
        name = resolve_tiny(name, cache_dir, cfg.tiny_seed)
    family = get_family(check_family(name, cfg.family))
    kwargs: dict[str, Any] = {"dtype": _dtype(cfg.dtype), "trust_remote_code": cfg.trust_remote_code}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    policy: Policy = family.load(name, kwargs)

    freeze(policy.model, policy.audio_tower, cfg, name)
    if cfg.cache_audio_features:
        from audiothinker.models import feature_cache

        feature_cache.install(policy, policy.audio_tower if family.cache_encoder else None,
                              int(cfg.audio_cache_gb * feature_cache.GIB))
    if cfg.gradient_checkpointing:
        policy.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        policy.model.config.use_cache = False
    if cfg.lora:
        from peft import get_peft_model

        policy.model = get_peft_model(policy.model, lora_config(cfg))
    return policy


def lora_config(cfg: ModelConfig) -> Any:
    """peft's LoraConfig for model.lora_*, on the language model only; load_policy and `train --dry-run` use it."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
        target_modules=cfg.lora_target_modules,
        exclude_modules=r".*(audio_tower|visual).*",  # language model only
    )


def matching_parameters(names: list[str], module: str) -> list[str]:
    """The parameter names that contain `module` as whole dotted segments (`layers.1` matches
    `model.layers.1.mlp.up_proj.weight`, not `model.layers.10.mlp.up_proj.weight`)."""
    return [n for n in names if f".{module}." in f".{n}."]


def freeze(model: torch.nn.Module, audio_tower: torch.nn.Module | None, cfg: ModelConfig, path: str) -> None:
    """requires_grad=False on the audio encoder (model.freeze_audio_tower) and on every parameter under each of
    model.freeze_parameters; a module name that matches no parameter is a ConfigError listing the model's
    top-level modules. load_policy and `train --dry-run`'s parameter count both go through it."""
    from audiothinker.config import ConfigError

    if cfg.freeze_audio_tower and audio_tower is not None:
        audio_tower.requires_grad_(False)
    params = dict(model.named_parameters())
    for module in cfg.freeze_parameters:
        hits = matching_parameters(list(params), module.strip("."))
        if not hits:
            tops = sorted({".".join(n.split(".")[:2]) for n in params})
            raise ConfigError(f"model.freeze_parameters: {module!r} matches no parameter of {path} "
                              f"(its modules include {', '.join(tops)})")
        for n in hits:
            params[n].requires_grad_(False)


def save_pretrained(policy: Policy, out_dir: str | Path, state_dict: dict | None = None) -> None:
    """Write the policy as a loadable checkpoint (safetensors) with its processor (LoRA: merged; ends training use)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if is_peft(policy.model):
        # The adapter alone under adapter/, and the merged weights beside it so `final/` loads like any model.
        policy.model.save_pretrained(out / "adapter")
        policy.model = policy.model.merge_and_unload()
        policy.model.save_pretrained(out, safe_serialization=True)
    else:
        policy.model.save_pretrained(out, state_dict=state_dict, safe_serialization=True)
    policy.processor.save_pretrained(out)
    _copy_processor_files(policy.name_or_path, out)
    (out / "audiothinker_family.json").write_text(json.dumps({"family": policy.family}))


# Files of a checkpoint that describe its processor (tokenizer, feature extractor, chat template).
PROCESSOR_FILES = (
    "preprocessor_config.json", "processor_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
    "merges.txt", "special_tokens_map.json", "added_tokens.json", "chat_template.json", "chat_template.jinja",
)


def _copy_processor_files(source: str | None, out: Path) -> None:
    """Training leaves the processor as it was: a local starting checkpoint's own processor files are
    copied over what `save_pretrained` wrote, so `final/` has the same file layout (e.g. Qwen2-Audio's
    preprocessor_config.json, which transformers 5 folds into processor_config.json) and no load-time
    settings (left padding, local paths) leak into it."""
    if not source or not Path(source).is_dir():
        return
    for name in PROCESSOR_FILES:
        if (Path(source) / name).is_file():
            shutil.copyfile(Path(source) / name, out / name)
