"""A tiny judge model and a `transformers serve` process around it, for tests and benchmarks.

No hub access needed: the tokenizer is trained on the spot on the judge's own prompts, the
Qwen2 weights are random. With `answer` set, the output head is wired so that greedy decoding
emits that token and then end-of-text whatever the prompt (the layers' outputs are zeroed):
the plumbing then yields real verdicts, which a random model would almost never produce.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from audiothinker.judge.base import JudgeRequest
from audiothinker.judge.prompts import COMPONENTS, NUMBER_WORDS, build_prompt

EOS = "<|endoftext|>"


def _corpus() -> list[str]:
    req = JudgeRequest("Which sound is louder, the first or the second?", ("first", "second"),
                       "The second sound has a higher amplitude, so it is louder.", "second")
    texts = [build_prompt(req, c, nonce="0123456789ab") for c in COMPONENTS]
    texts += [" ".join(NUMBER_WORDS), " ".join(str(i) for i in range(11)), "0123456789abcdef"]
    return texts * 4


def build_tiny_judge(path: str | Path, answer: str | None = "1", seed: int = 0) -> Path:
    """Save a tiny random Qwen2 causal LM + locally trained tokenizer at `path`; return it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS)
    hf_tok.save_pretrained(path)

    torch.manual_seed(seed)
    eos_id = hf_tok.convert_tokens_to_ids(EOS)
    cfg = Qwen2Config(
        vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=8192,  # heads 32 wide (vLLM CPU: >= 32)
        tie_word_embeddings=False, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
    )
    model = Qwen2ForCausalLM(cfg).eval()
    if answer is not None:
        ids = hf_tok.encode(answer, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"answer {answer!r} is not a single token of the tiny tokenizer: {ids}")
        _wire_answer(model, ids[0], eos_id)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = eos_id
    model.save_pretrained(path)
    return path


def _wire_answer(model, answer_id: int, eos_id: int) -> None:
    """Greedy output: `answer_id` after any token but itself, end-of-text after it."""
    import torch

    with torch.no_grad():
        for layer in model.model.layers:  # residual stream = token embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        emb = model.model.embed_tokens.weight  # [V, H]
        emb[:, 0], emb[:, 1] = 1.0, 0.0
        emb[answer_id, 0], emb[answer_id, 1] = 0.0, 1.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[:2] = 1.0
        head = model.lm_head.weight  # [V, H]
        head.zero_()
        head[answer_id, 0] = 10.0
        head[eos_id, 1] = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """`transformers serve MODEL_DIR` on loopback; a context manager that waits for readiness and stops it."""

    def __init__(self, model_dir: str | Path, port: int | None = None, startup_timeout: float = 180.0, log_path: str | Path | None = None):
        self.model_dir = str(model_dir)
        self.port = port or free_port()
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path else Path(self.model_dir) / "serve.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ServeProcess:
        exe = Path(sys.executable).parent / "transformers"
        cmd = [str(exe) if exe.exists() else (shutil.which("transformers") or "transformers"), "serve", self.model_dir,
               "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--log-level", "warning"]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"transformers serve not ready on port {self.port} after {self.startup_timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
