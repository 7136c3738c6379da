"""Transport running the judge model in-process with transformers (single-machine runs).

Prompts are generated greedily in batches (left padding); the top log-probs of every
generated token are read from the raw logits, so scores come from the allowed answers'
probabilities exactly as with a vLLM server. Loaded lazily on the first call. A batch that
raises (out of memory, ...) gives None for its prompts; training goes on.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

from audiothinker.judge.base import register_backend
from audiothinker.judge.prompts import Generation
from audiothinker.judge.scoring import LLMJudge, Transport

if TYPE_CHECKING:
    from audiothinker.config import JudgeConfig

log = logging.getLogger(__name__)


@register_backend("local")
def build_local_judge(cfg: JudgeConfig) -> LLMJudge:
    """`judge.backend: local`: the judge model `judge.model` in this process (transformers, loaded on first use)."""
    transport = LocalTransport(cfg.model, device=cfg.device, batch_size=cfg.max_concurrency,
                               top_logprobs=max(cfg.logprobs, 1))
    return LLMJudge(transport, cache=cfg.cache)


class LocalTransport(Transport):
    """`model_path`: a local directory or hub id of a causal LM (a base model, like the server's)."""

    def __init__(
        self,
        model_path: str,
        device: str = "auto",
        batch_size: int = 8,
        max_new_tokens: int = 3,
        top_logprobs: int = 20,
        trust_remote_code: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.top_logprobs = top_logprobs
        self.trust_remote_code = trust_remote_code
        self._model = None
        self._tok = None
        self._last_error: str | None = None
        self._counts = {"requests_sent": 0, "errors": 0, "latency_s_sum": 0.0, "latency_count": 0}

    def __repr__(self) -> str:
        return f"LocalTransport(model_path={self.model_path!r}, device={self.device!r})"

    def describe(self) -> str:
        return f"local model {self.model_path}"

    def stats(self) -> dict[str, float]:
        """requests_sent: prompts generated; latency: per batch of prompts."""
        return dict(self._counts)

    def last_error(self) -> str | None:
        return self._last_error

    def close(self) -> None:
        self._model = self._tok = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        tok = AutoTokenizer.from_pretrained(self.model_path, trust_remote_code=self.trust_remote_code)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype, trust_remote_code=self.trust_remote_code)
        self._model, self._tok = model.to(device).eval(), tok

    def generate(self, prompts: list[str]) -> list[Generation | None]:
        self._last_error = None
        if not prompts:
            return []
        try:
            if self._model is None:
                self._load()
        except Exception as e:  # noqa: BLE001
            self._last_error = f"loading {self.model_path} failed: {type(e).__name__}: {e}"[:500]
            self._counts["errors"] += len(prompts)
            return [None] * len(prompts)
        out: list[Generation | None] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            self._counts["requests_sent"] += len(chunk)
            t0 = time.perf_counter()
            try:
                out.extend(self._generate_batch(chunk))
            except Exception as e:  # noqa: BLE001 - a failed batch is "no score", not a crash
                self._last_error = f"{type(e).__name__}: {e}"[:500]
                log.debug("local judge batch failed: %s", self._last_error)
                self._counts["errors"] += len(chunk)
                out.extend([None] * len(chunk))
                continue
            self._counts["latency_s_sum"] += time.perf_counter() - t0
            self._counts["latency_count"] += 1
        return out

    def _generate_batch(self, prompts: list[str]) -> list[Generation]:
        import torch

        tok, model = self._tok, self._model
        enc = tok(prompts, return_tensors="pt", padding=True).to(model.device)
        with torch.no_grad():
            res = model.generate(
                **enc, max_new_tokens=self.max_new_tokens, do_sample=False, output_logits=True,
                return_dict_in_generate=True, pad_token_id=tok.pad_token_id,
            )
        new = res.sequences[:, enc["input_ids"].shape[1] :]  # [B, T]
        logprobs = torch.stack(res.logits, dim=1).float().log_softmax(-1)  # [B, T, V]
        k = max(1, min(self.top_logprobs, logprobs.shape[-1]))
        top_lp, top_ids = logprobs.topk(k, dim=-1)  # [B, T, k]
        stop_ids = {tok.eos_token_id, tok.pad_token_id}
        gens = []
        for b in range(len(prompts)):
            tokens, tops = [], []
            for t, tid in enumerate(new[b].tolist()):
                if tid in stop_ids:
                    break
                piece = tok.decode([tid])
                if "\n" in piece:  # the completions endpoint's stop=["\n"]
                    piece = piece.split("\n", 1)[0]
                    if piece:
                        tokens.append(piece)
                        tops.append(self._top(top_lp[b, t], top_ids[b, t]))
                    break
                tokens.append(piece)
                tops.append(self._top(top_lp[b, t], top_ids[b, t]))
            gens.append(Generation("".join(tokens), tuple(tokens), tuple(tops)))
        return gens

    def _top(self, lps, ids) -> dict[str, float]:
        """Candidate string -> log-prob; ids that decode to the same string pool their mass."""
        top: dict[str, float] = {}
        for lp, i in zip(lps.tolist(), ids.tolist()):
            s = self._tok.decode([i])
            top[s] = lp if s not in top else max(top[s], lp) + math.log1p(math.exp(-abs(top[s] - lp)))
        return top
