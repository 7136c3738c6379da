"""Transport to any OpenAI-compatible completions endpoint (vLLM, `transformers serve`, ...).

All prompts of a batch go out at once (bounded by a semaphore) from one background event
loop, so the synchronous trainer can call `generate()` and the HTTP client's connection pool
lives across batches. Each attempt is bounded by `timeout`; connection errors, timeouts,
malformed responses, 5xx and 429 are retried with exponential backoff and jitter; other 4xx
(a bad request, a wrong model name) are not: retrying cannot fix them. A prompt that still
fails is None.

The API key is read from the environment variable named in the config, handed to the
client and nowhere else: it is not in repr, stats, logs or error messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from audiothinker.judge.base import register_backend
from audiothinker.judge.prompts import Generation
from audiothinker.judge.scoring import LLMJudge, Transport

if TYPE_CHECKING:
    from audiothinker.config import JudgeConfig

log = logging.getLogger(__name__)

DUMMY_API_KEY = "EMPTY"  # local servers ignore the key, but the client wants one
MAX_BACKOFF_S = 30.0


_URL_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")
_BEARER = re.compile(r"(Bearer\s+)(?!\*\*\*)[^\s\"',}]+", re.IGNORECASE)


def mask_secret(text: str, secret: str | None) -> str:
    """`text` with the API key and any `Bearer <token>` replaced by ***.

    Call it on the whole text BEFORE cutting it short: a key cut in two by truncation no
    longer matches, and all but its last characters would be shown.
    """
    if secret and secret != DUMMY_API_KEY:
        text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)  # http://user:password@host
    return _BEARER.sub(r"\1***", text)


class _BadResponse(Exception):
    """A 2xx response that is not a completion (a broken proxy, a truncated body)."""


class _LoopThread:
    """An asyncio loop on a daemon thread; `run()` blocks the caller until the coroutine ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="judge-http", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        if not self.thread.is_alive():
            self.loop.close()


@register_backend("openai")
def build_openai_judge(cfg: JudgeConfig) -> LLMJudge:
    """`judge.backend: openai`: any OpenAI-compatible completions server at `judge.base_url`."""
    from audiothinker.config import ConfigError

    if not cfg.base_url:
        raise ConfigError("judge.base_url: required with judge.backend=openai (e.g. http://127.0.0.1:8000/v1)")
    transport = OpenAITransport(
        cfg.base_url, cfg.model, api_key_env=cfg.api_key_env, max_concurrency=cfg.max_concurrency,
        timeout=cfg.timeout, max_retries=cfg.max_retries, retry_backoff=cfg.retry_backoff, logprobs=cfg.logprobs,
    )
    return LLMJudge(transport, cache=cfg.cache)


class OpenAITransport(Transport):
    """Completions over HTTP with bounded concurrency, per-attempt timeout and retries."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "AUDIOTHINKER_JUDGE_API_KEY",
        max_concurrency: int = 32,
        timeout: float = 60.0,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        logprobs: int = 20,
        max_tokens: int = 3,
    ):
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.logprobs = logprobs
        self.max_tokens = max_tokens
        self._secret = os.environ.get(api_key_env) or DUMMY_API_KEY
        self._loop: _LoopThread | None = None
        self._client = None
        self._last_error: str | None = None
        self._counts = {
            "requests_sent": 0,  # HTTP attempts, retries included
            "retries": 0,  # attempts after the first
            "errors": 0,  # prompts given up on (None)
            "latency_s_sum": 0.0,  # wall time of successful attempts
            "latency_count": 0,
        }
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAITransport(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def describe(self) -> str:
        return mask_secret(f"{self.base_url} (model {self.model})", self._secret)

    def stats(self) -> dict[str, float]:
        with self._lock:
            return dict(self._counts)

    def last_error(self) -> str | None:
        """The last error of the most recent `generate()` call (None if all its prompts succeeded)."""
        return self._last_error

    # -- the event loop and client, created on first use

    def _ensure_started(self) -> None:
        if self._loop is None:
            self._loop = _LoopThread()
            self._loop.run(self._make_client())

    async def _make_client(self) -> None:
        from openai import AsyncOpenAI

        # Our own retry loop (below) decides what is retried; the client's is off.
        self._client = AsyncOpenAI(base_url=self.base_url, api_key=self._secret, max_retries=0, timeout=self.timeout)
        self._sem = asyncio.Semaphore(self.max_concurrency)

    def close(self) -> None:
        if self._loop is not None:
            try:
                self._loop.run(self._client.close())
            finally:
                self._loop.stop()
                self._loop, self._client = None, None

    # -- requests

    def ping(self) -> list[str]:
        """GET /models once (no retry, at most 10 s): the served model ids. Raises if the server is unreachable."""
        self._ensure_started()

        async def _list() -> list[str]:
            import openai

            try:
                page = await asyncio.wait_for(self._client.models.list(timeout=min(self.timeout, 10.0)), min(self.timeout, 10.0) + 1)
            except openai.APIStatusError:  # it answered: reachable, just without /models
                return []
            return [m.id for m in page.data]

        try:
            return self._loop.run(_list())
        except Exception as e:
            self._fail(e, 0, False)
            raise

    def generate(self, prompts: list[str]) -> list[Generation | None]:
        self._last_error = None
        if not prompts:
            return []
        self._ensure_started()
        return self._loop.run(self._generate_all(prompts))

    async def _generate_all(self, prompts: list[str]) -> list[Generation | None]:
        return list(await asyncio.gather(*(self._generate_one(p) for p in prompts)))

    async def _generate_one(self, prompt: str) -> Generation | None:
        async with self._sem:
            for attempt in range(self.max_retries + 1):
                if attempt:
                    self._count("retries", 1)
                    delay = min(self.retry_backoff * 2 ** (attempt - 1), MAX_BACKOFF_S)
                    await asyncio.sleep(delay * (0.5 + random.random()))  # jitter: retries don't arrive in lockstep
                self._count("requests_sent", 1)
                t0 = time.perf_counter()
                try:
                    gen = await asyncio.wait_for(self._complete(prompt), self.timeout)
                except Exception as e:  # noqa: BLE001 - every failure becomes "no score", never a crash
                    retry = _retryable(e)
                    self._fail(e, attempt, retry)
                    if retry:
                        continue
                    break
                self._count("latency_s_sum", time.perf_counter() - t0)
                self._count("latency_count", 1)
                return gen
            self._count("errors", 1)
            return None

    async def _complete(self, prompt: str) -> Generation:
        kwargs: dict[str, Any] = {}
        if self.logprobs > 0:
            kwargs["logprobs"] = self.logprobs
        resp = await self._client.completions.create(
            model=self.model, prompt=prompt, max_tokens=self.max_tokens, temperature=0.0, stop=["\n"], **kwargs
        )
        return _to_generation(resp)

    # -- bookkeeping

    def _count(self, key: str, value: float) -> None:
        with self._lock:
            self._counts[key] += value

    def _fail(self, e: BaseException, attempt: int, retry: bool) -> None:
        msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        body = getattr(e, "body", None)  # a server's error detail, e.g. {"detail": "Server is pinned to ..."}
        if body and str(body)[:40] not in msg:
            msg += f" {body}"
        if e.__cause__ is not None and str(e.__cause__):  # "Connection error." alone says little
            msg += f" ({type(e.__cause__).__name__}: {e.__cause__})"
        msg = mask_secret(msg, self._secret)  # masked whole, then cut: never half a key
        self._last_error = msg if len(msg) <= 500 else msg[:497] + "..."
        log.debug("judge request to %s failed (attempt %d, %s): %s", self.base_url, attempt + 1,
                  "retrying" if retry else "giving up", self._last_error)


def _retryable(e: BaseException) -> bool:
    """Transient: connection trouble, timeouts, broken bodies, 5xx, 429. Not: other 4xx, our own bugs."""
    import openai

    if isinstance(e, (asyncio.TimeoutError, _BadResponse, openai.APIConnectionError, openai.APIResponseValidationError)):
        return True
    if isinstance(e, openai.APIStatusError):
        return e.status_code >= 500 or e.status_code == 429
    return isinstance(e, ValueError)  # e.g. a JSON body cut short


def _to_generation(resp: Any) -> Generation:
    """A Completion response -> Generation; anything else is a _BadResponse."""
    choices = getattr(resp, "choices", None)
    if not choices or not isinstance(getattr(choices[0], "text", None), str):
        raise _BadResponse(f"not a completion: {str(resp)!r}")  # cut in _fail, after the key is masked
    choice = choices[0]
    lp = getattr(choice, "logprobs", None)
    tokens = getattr(lp, "tokens", None) if lp is not None else None
    top = getattr(lp, "top_logprobs", None) if lp is not None else None
    if tokens and top and len(tokens) == len(top) and all(isinstance(t, dict) for t in top):
        try:
            return Generation(choice.text, tuple(map(str, tokens)), tuple({str(k): float(v) for k, v in t.items()} for t in top))
        except (TypeError, ValueError):  # odd log-prob values: fall back to the text
            pass
    return Generation(choice.text)
