"""Load a policy (model + processor + adapter) from a local path, a hub id or a `tiny:*` spec."""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from audiothinker.config import ModelConfig

# `tiny:<family>` is the published layout shrunk (30 s / 300 s windows); `tiny:<family>_short` the same
# with a 2 s mel window, a cheaper audio encoder for unit tests.
TINY_BUILDERS = {
    "tiny:qwen2_audio", "tiny:qwen2_audio_short", "tiny:qwen2_5_omni", "tiny:qwen2_5_omni_short", "tiny:text",
}


def default_cache_dir() -> Path:
    return Path(os.environ.get("AUDIOTHINKER_CACHE", Path.home() / ".cache" / "audiothinker"))


def resolve_tiny(spec: str, cache_dir: str | Path | None = None, seed: int = 0) -> str:
    """Build the tiny model named by `spec` once (deterministic by seed) and return its path.

    The cache key includes a hash of the builder's source, so a changed builder never serves a stale model.
    """
    import hashlib
    import inspect

    from audiothinker.models import tiny

    name = spec.split(":", 1)[1]
    version = hashlib.sha1(inspect.getsource(tiny).encode()).hexdigest()[:8]
    out = Path(cache_dir or default_cache_dir()) / f"tiny-{name}-seed{seed}-{version}"
    if (out / "audiothinker_tiny.json").exists():
        return str(out)
    builders = {
        "qwen2_audio": tiny.build_tiny_qwen2_audio, "qwen2_5_omni": tiny.build_tiny_qwen2_5_omni, "text": tiny.build_tiny_text,
        "qwen2_audio_short": functools.partial(tiny.build_tiny_qwen2_audio, mel_seconds=2),
        "qwen2_5_omni_short": functools.partial(tiny.build_tiny_qwen2_5_omni, mel_seconds=2),
    }
    if name not in builders:
        raise ValueError(f"unknown tiny model {spec!r}; valid: {sorted('tiny:' + k for k in builders)}")
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    with torch.random.fork_rng(devices=[]):  # the builder seeds torch: the run's RNG must not depend on a cache miss
        builders[name](tmp, seed=seed)
    try:
        tmp.rename(out)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def _model_type(path: str) -> str:
    """The checkpoint's config.json model_type (no weights read); a missing or broken config names the path."""
    from transformers import AutoConfig

    from audiothinker.config import ConfigError

    if path.startswith(("/", ".", "~")) and not Path(path).expanduser().exists():
        raise ConfigError(f"model.name_or_path: {path} does not exist")
    try:
        return getattr(AutoConfig.from_pretrained(path), "model_type", "")
    except (OSError, ValueError) as e:
        raise ConfigError(f"model.name_or_path: cannot read the model config of {path}: {' '.join(str(e).split())[:300]}") from e


def check_family(path: str, family: str) -> str:
    """`family` if the checkpoint's config.json agrees, else a ConfigError naming the key and both values.
    Checked before any weights load: the wrong model class could otherwise build a huge random model."""
    from audiothinker.config import ConfigError

    detected = detect_family(path)
    if family != "auto" and family != detected:
        raise ConfigError(f"model.family: {family!r} does not match the checkpoint {path}, whose config.json says "
                          f"model_type {_model_type(path)!r} (family {detected!r}); set model.family={detected} or auto")
    return detected


def detect_family(path: str) -> str:
    model_type = _model_type(path)
    if model_type == "qwen2_audio":
        return "qwen2_audio"
    if model_type in ("qwen2_5_omni", "qwen2_5_omni_thinker"):
        return "qwen2_5_omni"
    return "text"


def _dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_policy(cfg: ModelConfig, cache_dir: str | Path | None = None, path: str | None = None) -> Any:
    """Load model + processor and wrap them in the family's adapter (LoRA / frozen audio tower applied)."""
    name = path or cfg.name_or_path
    if name in TINY_BUILDERS:
        name = resolve_tiny(name, cache_dir, cfg.tiny_seed)
    family = check_family(name, cfg.family)
    kwargs: dict[str, Any] = {"dtype": _dtype(cfg.dtype), "trust_remote_code": cfg.trust_remote_code}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation

    if family == "qwen2_audio":
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        from audiothinker.models.qwen2_audio import Qwen2AudioPolicy

        model = Qwen2AudioForConditionalGeneration.from_pretrained(name, **kwargs)
        processor = AutoProcessor.from_pretrained(name, trust_remote_code=cfg.trust_remote_code)
        policy: Any = Qwen2AudioPolicy(model, processor)
        audio_tower = model.model.audio_tower
    elif family == "qwen2_5_omni":
        from audiothinker.models.qwen2_5_omni import load_omni_thinker

        policy = load_omni_thinker(name, kwargs, cfg.trust_remote_code)
        audio_tower = policy.audio_tower
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from audiothinker.models.text import TextPolicy

        model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=cfg.trust_remote_code)
        policy = TextPolicy(model, tokenizer)
        audio_tower = None

    if cfg.freeze_audio_tower and audio_tower is not None:
        audio_tower.requires_grad_(False)
    if cfg.cache_audio_features:
        from audiothinker.models import feature_cache

        feature_cache.install(policy, audio_tower if family == "qwen2_audio" else None)
    if cfg.gradient_checkpointing:
        policy.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        policy.model.config.use_cache = False
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, task_type="CAUSAL_LM",
            target_modules=cfg.lora_target_modules,
            exclude_modules=r".*(audio_tower|visual).*",  # language model only
        )
        policy.model = get_peft_model(policy.model, lora)
    policy.name_or_path = name
    return policy


def save_pretrained(policy: Any, out_dir: str | Path, state_dict: dict | None = None) -> None:
    """Write the policy as a loadable checkpoint (safetensors) with its processor (LoRA: merged; ends training use)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(policy.model, "peft_config"):
        # The adapter alone under adapter/, and the merged weights beside it so `final/` loads like any model.
        policy.model.save_pretrained(out / "adapter")
        policy.model = policy.model.merge_and_unload()
        policy.model.save_pretrained(out, safe_serialization=True)
    else:
        policy.model.save_pretrained(out, state_dict=state_dict, safe_serialization=True)
    policy.processor.save_pretrained(out)
    _copy_processor_files(getattr(policy, "name_or_path", None), out)
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
