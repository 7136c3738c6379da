"""`build_judge(cfg.judge)`: one small builder per backend; heavy imports only for the one selected."""

from __future__ import annotations

from collections.abc import Callable

from audiothinker.config import ConfigError, JudgeConfig
from audiothinker.judge.scoring import LLMJudge, ManagedJudge, RuleJudgeAdapter


def _rule(cfg: JudgeConfig) -> RuleJudgeAdapter:
    from audiothinker.judge.rule import RuleJudge

    return RuleJudgeAdapter(RuleJudge())


def _openai(cfg: JudgeConfig) -> LLMJudge:
    from audiothinker.judge.openai_backend import OpenAITransport

    if not cfg.base_url:
        raise ConfigError("judge.base_url: required with judge.backend=openai (e.g. http://127.0.0.1:8000/v1)")
    transport = OpenAITransport(
        cfg.base_url, cfg.model, api_key_env=cfg.api_key_env, max_concurrency=cfg.max_concurrency,
        timeout=cfg.timeout, max_retries=cfg.max_retries, retry_backoff=cfg.retry_backoff, logprobs=cfg.logprobs,
    )
    return LLMJudge(transport, cache=cfg.cache)


def _local(cfg: JudgeConfig) -> LLMJudge:
    from audiothinker.judge.local import LocalTransport

    transport = LocalTransport(cfg.model, device=cfg.device, batch_size=cfg.max_concurrency, top_logprobs=max(cfg.logprobs, 1))
    return LLMJudge(transport, cache=cfg.cache)


BACKENDS: dict[str, Callable[[JudgeConfig], ManagedJudge]] = {"rule": _rule, "openai": _openai, "local": _local}


def build_judge(cfg: JudgeConfig) -> ManagedJudge:
    """The judge `cfg` describes: `.judge(requests, consistency, quality)`, `.stats()`, `.check()`, `.close()`."""
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"judge.backend: {cfg.backend!r} is not one of {sorted(BACKENDS)}")
    for key in ("max_concurrency", "timeout"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"judge.{key}: must be positive, got {getattr(cfg, key)}")
    for key in ("max_retries", "retry_backoff", "logprobs"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"judge.{key}: must be >= 0, got {getattr(cfg, key)}")
    return BACKENDS[cfg.backend](cfg)
