"""`build_judge(cfg.judge)`: the builder registered under `cfg.backend` (`judge.base.register_backend`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audiothinker.judge.base import JUDGE_BACKENDS, Judge

if TYPE_CHECKING:
    from audiothinker.config import JudgeConfig


def build_judge(cfg: JudgeConfig) -> Judge:
    """The judge `cfg` describes: `.judge(requests, consistency, quality)`, `.stats()`, `.check()`, `.close()`."""
    from audiothinker.config import ConfigError  # config validation reads the registry: imported late

    if cfg.backend not in JUDGE_BACKENDS:
        raise ConfigError(f"judge.backend: {cfg.backend!r} is not one of {sorted(JUDGE_BACKENDS)}")
    for key in ("max_concurrency", "timeout"):
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"judge.{key}: must be positive, got {getattr(cfg, key)}")
    for key in ("max_retries", "retry_backoff", "logprobs"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"judge.{key}: must be >= 0, got {getattr(cfg, key)}")
    return JUDGE_BACKENDS[cfg.backend](cfg)

