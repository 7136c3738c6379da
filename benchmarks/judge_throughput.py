"""Judge throughput on one rollout batch: naive sequential scoring vs LLMJudge.

    HF_HUB_OFFLINE=1 python benchmarks/judge_throughput.py

Starts `transformers serve` with a tiny judge model on loopback (CPU), scores one rollout batch
(16 prompts x 8 completions, half of them think-mode, some completions repeated, as short ones
are under sampling) three ways, and stops the server:
  naive     one request per completion per reward component, no-think completions included,
            sent one after another;
  no cache  LLMJudge with the cache off: think completions only, all requests of the batch at once;
  ours      LLMJudge as trained with: think completions only, duplicates answered once, all at once.
The model is tiny, so the figures measure the plumbing (request count, overlap), not the model.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from audiothinker.config import JudgeConfig
from audiothinker.judge import JudgeRequest, build_judge
from audiothinker.judge.prompts import COMPONENTS, build_prompt
from audiothinker.judge.tiny import ServeProcess, build_tiny_judge

PROMPTS, G = 16, 8


def rollout_batch() -> list[tuple[JudgeRequest, bool]]:
    """(request, thinks) for 16 x 8 completions: per group 4 think (one repeated) and 4 no-think."""
    batch = []
    for q in range(PROMPTS):
        question, choices = f"Question {q}: which sound comes first?", ("bell", "horn", "drum")
        thinks = [f"Group {q}, sample {k}: the bell rings before the horn, so the bell." for k in (0, 1, 0, 2)]
        batch += [(JudgeRequest(question, choices, t, "bell"), True) for t in thinks]
        batch += [(JudgeRequest(question, choices, "", "bell"), False) for _ in range(G - len(thinks))]
    return batch


def naive(url: str, model: str, batch) -> tuple[int, float]:
    from openai import OpenAI

    client = OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    sent, t0 = 0, time.perf_counter()
    for req, _ in batch:
        for comp in COMPONENTS:
            client.completions.create(model=model, prompt=build_prompt(req, comp), max_tokens=3, temperature=0.0, stop=["\n"])
            sent += 1
    return sent, time.perf_counter() - t0


def ours(url: str, model: str, batch, cache: bool, concurrency: int) -> tuple[int, float]:
    judge = build_judge(JudgeConfig(backend="openai", base_url=url, model=model, cache=cache, max_concurrency=concurrency))
    think = [req for req, thinks in batch if thinks]  # the trainer sends think completions only
    try:
        judge.check()  # warm the connection pool, as the trainer does before step 1
        before = judge.stats()["requests_sent"]
        t0 = time.perf_counter()
        verdicts = judge.judge(think)
        wall = time.perf_counter() - t0
        assert all(v.consistency is not None and v.quality is not None for v in verdicts), judge.stats()
        return judge.stats()["requests_sent"] - before, wall
    finally:
        judge.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=32, help="judge.max_concurrency for ours")
    args = ap.parse_args()
    batch = rollout_batch()
    with tempfile.TemporaryDirectory() as tmp:
        model = str(build_tiny_judge(f"{tmp}/judge"))
        with ServeProcess(model) as server:
            naive(server.url, model, batch[:2])  # warm-up
            rows = [
                ("naive sequential", *naive(server.url, model, batch)),
                ("ours, no cache", *ours(server.url, model, batch, cache=False, concurrency=args.concurrency)),
                ("ours, cache + concurrency", *ours(server.url, model, batch, cache=True, concurrency=args.concurrency)),
            ]
    n_think = sum(t for _, t in batch)
    print(f"batch: {len(batch)} completions ({n_think} think, {len({r for r, t in batch if t})} unique think), "
          f"2 reward components; transformers serve, tiny Qwen2, CPU")
    print(f"{'method':<28}{'requests':>10}{'wall s':>10}{'req ratio':>11}{'speed-up':>10}")
    base_n, base_t = rows[0][1], rows[0][2]
    for name, n, t in rows:
        print(f"{name:<28}{n:>10}{t:>10.2f}{n / base_n:>11.2f}{base_t / t:>9.1f}x")


if __name__ == "__main__":
    main()
