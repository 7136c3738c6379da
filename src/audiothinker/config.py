"""One typed config tree: YAML file + `--set a.b=value` overrides, validated with errors naming the key.

Every field's docstring-comment is its documentation (the README's config reference is generated
from these comments by `audiothinker config --reference`). Defaults follow the paper (SPEC section 5).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audiothinker.data.loaders import FORMATS
from audiothinker.judge.base import JUDGE_BACKENDS
from audiothinker.rewards.core import PRESETS


class ConfigError(ValueError):
    """A config problem; the message names the offending key."""


@dataclass
class ModelConfig:
    name_or_path: str = "tiny:qwen2_audio"
    """Local path or hub id of the policy; `tiny:qwen2_audio` / `tiny:qwen2_5_omni` / `tiny:text` build tiny random models."""
    family: str = "auto"
    """Adapter to use: auto | qwen2_audio | qwen2_5_omni | text (auto reads the checkpoint's config)."""
    dtype: str = "auto"
    """Parameter dtype: auto (bfloat16 on GPU, float32 on CPU) | float32 | bfloat16 | float16."""
    attn_implementation: str | None = None
    """Attention kernel passed to from_pretrained (e.g. sdpa, flash_attention_2); None lets transformers pick."""
    lora: bool = False
    """Train LoRA adapters (peft) instead of all weights; the reference policy is then the adapter-disabled model."""
    lora_r: int = 64
    """LoRA rank."""
    lora_alpha: int = 128
    """LoRA alpha."""
    lora_dropout: float = 0.05
    """LoRA dropout."""
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Module names that get LoRA adapters (language model only)."""
    freeze_audio_tower: bool = False
    """Keep the audio encoder's weights fixed."""
    freeze_parameters: list[str] = field(default_factory=list)
    """Modules whose weights stay fixed, by dotted name as named_parameters gives it (e.g. multi_modal_projector,
    language_model.layers.0); a name matches the parameters that contain it as whole dotted segments."""
    cache_audio_features: bool = False
    """Memoize each clip's mel features and, with freeze_audio_tower, its encoder output and whole prompts, in
    process (exact)."""
    audio_cache_gb: float = 2.0
    """With cache_audio_features: bytes (GiB) each memo may hold per process, the least recently used entries
    going first past it; the encoder outputs are held on its device (Qwen2-Audio-7B: 1.9 MB per clip in bf16)."""
    gradient_checkpointing: bool = False
    """Trade compute for memory in the loss forward."""
    trust_remote_code: bool = False
    """Passed to from_pretrained; leave off unless you trust the checkpoint's code."""
    tiny_seed: int = 0
    """Seed of the random init of `tiny:*` models (independent of the run seed)."""


@dataclass
class DataConfig:
    train_file: str | None = None
    """Training set file; None with format=synthetic generates one under output_dir/data."""
    format: str = "synthetic"
    """Loader: jsonl (our schema) | avqa (R1-AQA) | mmau | mmar | airbench | synthetic."""
    audio_root: str | None = None
    """Directory that relative audio paths are resolved against (default: the data file's directory)."""
    on_error: str = "raise"
    """Bad records: raise (stop with the file, line and id) | skip (count, report at the end)."""
    max_audio_seconds: float | None = None
    """Cut longer clips (counted warning); None uses the policy's limit (30 s for Qwen2-Audio)."""
    scan_audio: bool = True
    """Decode every clip once at load (cached in output_dir/audio_scan.json) so bad clips are found before step 1."""
    synthetic_size: int = 512
    """Items to generate when format=synthetic."""
    synthetic_seed: int = 1234
    """Seed of the synthetic training set."""
    shuffle: bool = True
    """Shuffle the training set every epoch (seeded)."""


@dataclass
class RolloutConfig:
    engine: str = "hf"
    """Rollout engine: hf (transformers generate) | vllm."""
    num_generations: int = 8
    """G, completions per prompt."""
    temperature: float = 1.0
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    top_k: int = 0
    """Top-k sampling (0 = off)."""
    repetition_penalty: float = 1.0
    """Repetition penalty (TRL's name; 1.0 = off). Rollouts and eval pass every sampling setting, so the checkpoint's generation_config.json never changes what is sampled."""
    max_new_tokens: int = 256
    """Completion length limit in tokens."""
    max_prompt_length: int = 512
    """Prompt length limit in text tokens (audio placeholder tokens not counted); longer prompts are an error."""
    vllm_gpu_memory_utilization: float = 0.35
    """vLLM engine: share of GPU memory for weights and KV cache (colocated with training)."""
    vllm_enable_sleep_mode: bool = True
    """vLLM engine (CUDA): release its weights and KV cache between rollouts; the next weight sync wakes it."""
    vllm_max_model_length: int | None = None
    """vLLM engine: longest prompt + completion in tokens; None = max_prompt_length + 25 audio tokens/s + max_new_tokens."""
    vllm_importance_sampling_correction: bool = False
    """Truncated importance sampling (TRL/verl TIS): weight each token's loss by min(pi_old/pi_vllm, cap)."""
    vllm_importance_sampling_cap: float = 2.0
    """Upper bound of the TIS weight."""


@dataclass
class TrainConfig:
    learning_rate: float = 1e-6
    """AdamW learning rate."""
    per_device_batch_size: int = 1
    """Prompts per device per micro-step (each brings num_generations completions)."""
    gradient_accumulation_steps: int = 2
    """Micro-steps per optimizer step; prompts per step = per_device_batch_size * this * processes."""
    num_iterations: int = 1
    """Optimisation passes over each rollout batch (mu); >1 uses stored old log-probs and clipping."""
    epsilon: float = 0.2
    """Lower clip range of the ratio."""
    epsilon_high: float | None = None
    """Upper clip range (DAPO clip-higher); None = epsilon."""
    beta: float = 0.04
    """KL coefficient (k3 estimator) to the reference policy; 0 skips the reference forward."""
    decision_beta: float | None = None
    """[ours] The KL coefficient at the token that picks think or answer (the first token at which the `<think>` and
    `<answer>` tags' ids differ; algos.losses.choice_token_mask); None = beta. 0: the KL holds the traces and the
    answers near the reference while the rewards alone move the choice of mode. Measured on the demo (beta 0.1,
    decision_beta 0) and not kept there (docs/demo.md, section "A KL that leaves the think-or-answer token free")."""
    loss_type: str = "grpo"
    """grpo (per-sequence mean) | dr_grpo (sum / (B*max_new_tokens)) | dapo (token mean over global batch) | bnpo (token mean over local batch)."""
    scale_rewards: str = "group"
    """Advantage scaling: group (std of the group) | batch (std of the batch) | none."""
    mode_advantage: str = "sequence"
    """sequence: every token of a completion gets its advantage (GRPO). split [ours]: the tokens up to the one
    that picks think or answer get it; the tokens after it get the advantage within the completion's mode
    (centred on the group's completions of that mode), so what a mode pays on average moves the choice of
    mode, not the content of the traces (algos.advantages.mode_split_advantages)."""
    decision_weight: float = 1.0
    """With mode_advantage split [ours]: the advantage of the tokens up to and including the one that picks think
    or answer, in groups with both modes, times this, so the choice of mode moves that much faster than the
    content of the traces (a group with one mode has no such token and is unchanged). 1 = off; measured on the demo
    at 4 and not kept there (docs/demo.md, section "A heavier weight on the think-or-answer token")."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm (0 = off)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    lr_scheduler: str = "constant"
    """constant | linear | cosine (after warm-up) | warmup_stable_decay (constant, then linear to 0 over the last lr_decay_ratio)."""
    lr_decay_ratio: float = 0.0
    """warmup_stable_decay: share of the run's optimizer steps (max_steps x num_iterations) in the final decay, at least one."""


@dataclass
class RewardConfig:
    preset: str = "atar_cr_tr"
    """Reward/prompt preset (paper Table 1): grpo | grpo_cot | atar | atar_cr | atar_cr_tr."""


@dataclass
class JudgeConfig:
    backend: str = "rule"
    """Judge for R_c/R_t: rule (synthetic set) | openai (any OpenAI-compatible server) | local (in-process transformers)."""
    base_url: str | None = None
    """openai backend: server URL, e.g. http://127.0.0.1:8000/v1."""
    model: str = "Qwen/Qwen3-8B-Base"
    """Judge model: the name the server serves it under (openai) or a local path / hub id (local)."""
    api_key_env: str = "AUDIOTHINKER_JUDGE_API_KEY"
    """Environment variable holding the API key (never logged; a dummy key is sent when it is unset)."""
    max_concurrency: int = 32
    """openai: requests in flight at once; local: prompts per generate() batch."""
    timeout: float = 60.0
    """Per-request timeout in seconds (each attempt)."""
    max_retries: int = 3
    """Retries on connection errors, timeouts, 5xx and 429, with exponential backoff; other 4xx are not retried."""
    retry_backoff: float = 0.5
    """Delay before the first retry in seconds; doubles each retry (with jitter), capped at 30 s."""
    logprobs: int = 20
    """Top log-probs per generated token to ask the server for (scores then come from the answers' probabilities); 0 = parse the sampled text only. OpenAI's own API allows at most 5."""
    cache: bool = True
    """Answer identical (question, choices, think, answer) requests once: within a batch and across steps."""
    device: str = "auto"
    """local backend: device of the judge model (auto = cuda if available, else cpu)."""
    max_down_steps: int = 3
    """Stop the run after this many consecutive steps in which the judge returned no score at all (0 = never stop)."""

@dataclass
class LogConfig:
    logging_steps: int = 1
    """Write metrics every N steps."""
    report_to: list[str] = field(default_factory=lambda: ["jsonl", "tensorboard"])
    """Trackers: jsonl | tensorboard | wandb | trackio."""
    num_samples: int = 4
    """Completions (with their rewards) logged per logging step."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class EvalConfig:
    eval_steps: int = 0
    """Evaluate every N steps during training (0 = never)."""
    file: str | None = None
    """Held-out set (same formats as data.format); None with synthetic data generates a test split."""
    format: str | None = None
    """Loader of the held-out set; None = data.format."""
    prompt: str = "adaptive"
    """Prompt used for evaluation: adaptive | think | no_think."""
    limit: int | None = None
    """Evaluate at most N items."""
    batch_size: int = 8
    """Prompts per generation call."""
    max_new_tokens: int | None = None
    """Completion limit at eval; None = rollout.max_new_tokens."""


@dataclass
class Config:
    output_dir: str = "runs/default"
    """Where checkpoints, metrics and logs go."""
    max_steps: int = 1000
    """Training steps (one rollout batch each); T in the ATAR schedule."""
    save_steps: int = 100
    """Checkpoint every N steps (0 = only at the end)."""
    save_total_limit: int | None = 2
    """Keep at most N step checkpoints (None = all)."""
    stop_at_step: int | None = None
    """End this job after checkpointing at this step, schedules unchanged (T stays max_steps); continue with --resume."""
    seed: int = 42
    """Seed for data order, sampling and init; CPU runs with the same seed are identical."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _registry(module: str, names: str) -> Callable[[], tuple[str, ...]]:
    """The names of a plug-in registry, read when a config is validated (its module imported then)."""
    return lambda: tuple(getattr(importlib.import_module(module), names)())


_CHOICES: dict[str, tuple[str, ...] | Callable[[], tuple[str, ...]]] = {
    "model.family": _registry("audiothinker.models.registry", "family_choices"),
    "model.dtype": ("auto", "float32", "bfloat16", "float16"),
    "data.format": FORMATS,  # the loader registry (benchmark formats: eval/benchmarks/), read when validating
    "data.on_error": ("raise", "skip"),
    "train.loss_type": _registry("audiothinker.algos.losses", "loss_type_names"),
    "train.scale_rewards": _registry("audiothinker.algos.advantages", "scale_names"),
    "train.lr_scheduler": ("constant", "linear", "cosine", "warmup_stable_decay"),
    "train.mode_advantage": ("sequence", "split"),
    "reward.preset": PRESETS,  # the registries: `rewards.register_preset`, `judge.register_backend`
    "judge.backend": lambda: tuple(sorted(JUDGE_BACKENDS)),
    "eval.prompt": ("adaptive", "think", "no_think"),
}


_SCI_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting ints to floats where a float is wanted."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner,) = typing.get_args(tp)
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, str) and _SCI_FLOAT.match(value.strip()):
            value = float(value)  # YAML 1.1 (PyYAML) reads 1e-6 as a string: it needs a dot, as in 1.0e-6
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}'; valid keys here: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{prefix}{name}")
    return cls(**kwargs)


def _check_ranges(cfg: Config) -> None:
    """Numeric ranges, each error naming its key (a bad value fails at load, not at step 31,337)."""
    c = cfg
    rules: list[tuple[str, Any, str]] = [  # (key, value, rule): rule is ">0", ">=0", ">=1", "0..1", "(0..1]"
        ("max_steps", c.max_steps, ">=1"), ("save_steps", c.save_steps, ">=0"),
        ("save_total_limit", c.save_total_limit, ">=1"), ("stop_at_step", c.stop_at_step, ">=1"),
        ("model.lora_r", c.model.lora_r, ">=1"), ("model.lora_alpha", c.model.lora_alpha, ">0"),
        ("model.lora_dropout", c.model.lora_dropout, "[0..1)"), ("model.tiny_seed", c.model.tiny_seed, ">=0"),
        ("model.audio_cache_gb", c.model.audio_cache_gb, ">0"),
        ("data.max_audio_seconds", c.data.max_audio_seconds, ">0"), ("data.synthetic_size", c.data.synthetic_size, ">=1"),
        ("rollout.num_generations", c.rollout.num_generations, ">=2"), ("rollout.temperature", c.rollout.temperature, ">0"),
        ("rollout.top_p", c.rollout.top_p, "(0..1]"), ("rollout.top_k", c.rollout.top_k, ">=0"),
        ("rollout.repetition_penalty", c.rollout.repetition_penalty, ">0"),
        ("rollout.max_new_tokens", c.rollout.max_new_tokens, ">=1"),
        ("rollout.max_prompt_length", c.rollout.max_prompt_length, ">=1"),
        ("rollout.vllm_gpu_memory_utilization", c.rollout.vllm_gpu_memory_utilization, "(0..1]"),
        ("train.learning_rate", c.train.learning_rate, ">0"),
        ("train.per_device_batch_size", c.train.per_device_batch_size, ">=1"),
        ("train.gradient_accumulation_steps", c.train.gradient_accumulation_steps, ">=1"),
        ("train.num_iterations", c.train.num_iterations, ">=1"), ("train.epsilon", c.train.epsilon, "[0..1)"),
        ("train.epsilon_high", c.train.epsilon_high, ">=0"), ("train.beta", c.train.beta, ">=0"),
        ("train.decision_beta", c.train.decision_beta, ">=0"),
        ("train.max_grad_norm", c.train.max_grad_norm, ">=0"), ("train.weight_decay", c.train.weight_decay, ">=0"),
        ("train.warmup_steps", c.train.warmup_steps, ">=0"), ("train.lr_decay_ratio", c.train.lr_decay_ratio, "[0..1]"),
        ("train.decision_weight", c.train.decision_weight, ">0"),
        ("judge.max_concurrency", c.judge.max_concurrency, ">=1"), ("judge.timeout", c.judge.timeout, ">0"),
        ("judge.max_retries", c.judge.max_retries, ">=0"), ("judge.retry_backoff", c.judge.retry_backoff, ">=0"),
        ("judge.logprobs", c.judge.logprobs, ">=0"), ("judge.max_down_steps", c.judge.max_down_steps, ">=0"),
        ("log.logging_steps", c.log.logging_steps, ">=1"), ("log.num_samples", c.log.num_samples, ">=0"),
        ("eval.eval_steps", c.eval.eval_steps, ">=0"), ("eval.limit", c.eval.limit, ">=1"),
        ("eval.batch_size", c.eval.batch_size, ">=1"), ("eval.max_new_tokens", c.eval.max_new_tokens, ">=1"),
    ]
    checks = {
        ">0": (lambda v: v > 0, "must be > 0"), ">=0": (lambda v: v >= 0, "must be >= 0"),
        ">=1": (lambda v: v >= 1, "must be >= 1"), ">=2": (lambda v: v >= 2, "must be >= 2 (GRPO compares completions within a group)"),
        "(0..1]": (lambda v: 0 < v <= 1, "must be in (0, 1]"), "[0..1)": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
        "[0..1]": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    }
    for key, value, rule in rules:
        if value is None:
            continue  # None means "off" / "default" wherever a key allows it
        ok, meaning = checks[rule]
        if value != value or value in (float("inf"), float("-inf")) or not ok(value):  # NaN fails every rule
            raise ConfigError(f"{key}: {meaning}, got {value!r}")


def validate(cfg: Config) -> Config:
    """Allowed names, numeric ranges and cross-key rules; the error names the key."""
    from audiothinker.rollout.base import engine_names  # the engine registry is the list of choices

    if cfg.rollout.engine not in engine_names():
        raise ConfigError(f"rollout.engine: {cfg.rollout.engine!r} is not one of {engine_names()}")
    for key, choices in _CHOICES.items():
        allowed = choices() if callable(choices) else choices
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {list(allowed)}")
    _check_ranges(cfg)
    if cfg.train.lr_scheduler == "warmup_stable_decay" and cfg.train.lr_decay_ratio <= 0:
        raise ConfigError("train.lr_decay_ratio: must be > 0 with train.lr_scheduler=warmup_stable_decay "
                          f"(the share of the run in the final decay), got {cfg.train.lr_decay_ratio}")
    trackers = ("jsonl", "tensorboard", "wandb", "trackio")
    for i, t in enumerate(cfg.log.report_to):
        if t not in trackers:
            raise ConfigError(f"log.report_to[{i}]: unknown tracker {t!r}; valid: {list(trackers)}")
    if not cfg.output_dir.strip():
        raise ConfigError("output_dir: must not be empty")
    if cfg.stop_at_step is not None and cfg.stop_at_step > cfg.max_steps:
        raise ConfigError(f"stop_at_step: {cfg.stop_at_step} is beyond max_steps={cfg.max_steps}")
    if cfg.train.decision_weight != 1.0 and cfg.train.mode_advantage != "split":
        raise ConfigError(f"train.decision_weight: {cfg.train.decision_weight} needs train.mode_advantage=split (with "
                          f"{cfg.train.mode_advantage!r} no token picks the mode apart from the rest)")
    if cfg.train.beta == 0 and cfg.train.decision_beta:
        raise ConfigError(f"train.decision_beta: {cfg.train.decision_beta} needs train.beta > 0 (beta 0 skips the "
                          "reference model the KL is measured against)")
    if cfg.train.epsilon_high is not None and cfg.train.epsilon_high < cfg.train.epsilon:
        raise ConfigError(f"train.epsilon_high: {cfg.train.epsilon_high} is below train.epsilon={cfg.train.epsilon}")
    if cfg.model.lora and cfg.model.freeze_parameters:
        raise ConfigError("model.freeze_parameters: has no effect with model.lora=true (LoRA trains its adapters only)")
    if cfg.model.lora and not cfg.model.lora_target_modules:
        raise ConfigError("model.lora_target_modules: empty with model.lora=true (no module would get an adapter)")
    if cfg.rollout.vllm_importance_sampling_cap < 1:
        raise ConfigError(f"rollout.vllm_importance_sampling_cap: must be >= 1, got {cfg.rollout.vllm_importance_sampling_cap}")
    if cfg.judge.backend == "openai" and not cfg.judge.base_url:
        raise ConfigError("judge.base_url: required with judge.backend=openai")
    if cfg.data.format != "synthetic" and not cfg.data.train_file:
        raise ConfigError(f"data.train_file: required with data.format={cfg.data.format}")
    if cfg.eval.eval_steps > 0 and not cfg.eval.file and cfg.data.format != "synthetic":
        raise ConfigError("eval.eval_steps: evaluation during training needs a held-out set; set eval.file "
                          "(only synthetic data generates one) or eval.eval_steps=0")
    return cfg


def check_paths(cfg: Config) -> None:
    """Filesystem checks before any work (train only: `config` just prints): the model path exists,
    output_dir can be a directory, the data files exist. Errors name the key and the path."""
    def under_a_file(p: Path) -> Path | None:
        for parent in [p, *p.parents]:
            if parent.exists():
                return parent if not parent.is_dir() else None
        return None

    name = cfg.model.name_or_path
    hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", name) is not None  # owner/name: transformers may download it
    if not name.startswith("tiny:") and not hub_id and not Path(name).expanduser().exists():
        raise ConfigError(f"model.name_or_path: {name} does not exist (not a local path, a hub id owner/name or tiny:*)")
    import importlib.util

    for i, tracker in enumerate(cfg.log.report_to):
        module = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}.get(tracker)
        if module and importlib.util.find_spec(module) is None and not (
            tracker == "tensorboard" and importlib.util.find_spec("tensorboardX") is not None
        ):
            raise ConfigError(f"log.report_to[{i}]: tracker {tracker!r} is not installed (pip install {module}, or drop it)")
    blocker = under_a_file(Path(cfg.output_dir))
    if blocker is not None:
        raise ConfigError(f"output_dir: {cfg.output_dir} cannot be created: {blocker} is a file")
    for key, value in (("data.train_file", cfg.data.train_file), ("eval.file", cfg.eval.file)):
        if value and not Path(value).is_file():
            raise ConfigError(f"{key}: {value} does not exist" if not Path(value).exists() else f"{key}: {value} is not a file")
    if cfg.data.audio_root and not Path(cfg.data.audio_root).is_dir():
        raise ConfigError(f"data.audio_root: {cfg.data.audio_root} is not a directory")


def _set_path(tree: dict, dotted: str, raw: str) -> None:
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"--set {dotted}={raw}: bad key")
    node = tree
    for p in parts[:-1]:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {p!r} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {dotted}={raw}: not a YAML value ({' '.join(str(e).split())})") from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load YAML at `path` (optional), apply `key=value` overrides (values parsed as YAML), validate."""
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} " + ("is not a file" if p.exists() else "does not exist"))
        try:
            tree = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML: {' '.join(str(e).split())}") from None
        except (UnicodeDecodeError, OSError) as e:
            raise ConfigError(f"{p}: cannot read the config file: {e}") from None
        if not isinstance(tree, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), raw)
    return validate(_build(Config, tree, ""))


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def reference(cls: type = Config, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, doc) for every leaf, from the field docstrings in this file."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[union-attr]  # one table line
    rows = []
    hints = typing.get_type_hints(cls)
    default = cls()
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(reference(hints[f.name], f"{prefix}{f.name}."))
        else:
            rows.append((f"{prefix}{f.name}", repr(getattr(default, f.name)), docs.get(f.name, "")))
    return rows
