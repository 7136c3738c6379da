"""A short GRPO run whose judge is a real `transformers serve` behind a fault-injecting proxy.

The tiny random policy almost never writes a <think> block, so the rollout engine is wrapped to
return canned think/no-think completions (tokenised for real, then scored, judged and trained on
like any rollout): the run must finish, with the judge's failures counted per step.
"""

from __future__ import annotations

import json

import pytest
import torch

from audiothinker.config import load_config
from audiothinker.rollout import HFEngine, Rollout, pad_after_eos

CANNED = [
    "<think>I hear a steady tone. It sounds high. So the answer is high.</think><answer>high</answer>",
    "<answer>low</answer>",
    "<think>Two beeps, then one more: three beeps in all.</think><answer>three</answer>",
    "<think>The loudest tone is the second one and it is low.</think><answer>low</answer>",
]


class CannedEngine(HFEngine):
    def generate(self, batch, num_generations, params):
        n = len(batch) * num_generations
        texts = [CANNED[i % len(CANNED)] for i in range(n)]
        tok = self.policy.tokenizer
        rows = [tok(t, add_special_tokens=False)["input_ids"] + [self.eos_ids[0]] for t in texts]
        width = max(map(len, rows))
        ids = torch.tensor([r + [self.pad_id] * (width - len(r)) for r in rows], device=batch.input_ids.device)
        ids, mask, truncated = pad_after_eos(ids, self.eos_ids, self.pad_id)
        return Rollout(ids, mask, tok.batch_decode(ids, skip_special_tokens=True), truncated)


@pytest.mark.server
def test_training_through_faulty_judge_counts_failures(fault_proxy, tiny_judge_dir, tmp_path, monkeypatch):
    import audiothinker.trainer.grpo as grpo
    import audiothinker.trainer.step as step_module

    monkeypatch.setattr(step_module, "build_engine", lambda name, policy, options=None: CannedEngine(policy))
    proxy = fault_proxy()  # healthy for the start-up check, faulty from the first rollout on
    build = grpo.build_judge_for

    def build_then_break(cfg, preset):
        judge = build(cfg, preset)
        proxy.faults = type(proxy.faults)(error500=0.5, drop=0.2, seed=3)
        return judge

    monkeypatch.setattr(grpo, "build_judge_for", build_then_break)
    cfg = load_config("recipes/tiny_cpu.yaml", [
        f"output_dir={tmp_path / 'run'}", "max_steps=2", "save_steps=0", "log.progress=false",
        "data.synthetic_size=8", "rollout.max_new_tokens=48", "train.per_device_batch_size=2",
        "train.gradient_accumulation_steps=1", "reward.preset=atar_cr_tr", "judge.backend=openai",
        f"judge.base_url={proxy.url}", f"judge.model={tiny_judge_dir}", "judge.max_retries=0", "judge.timeout=20",
        "judge.cache=false",
    ])
    final = grpo.train(cfg)
    assert (final / "model.safetensors").exists()
    steps = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    failures = sum(s["reward/no_score_consistency"] + s["reward/no_score_think_quality"] for s in steps)
    sent = sum(s.get("judge/requests_sent", 0) for s in steps)
    assert sent > 0 and proxy.count() > 0
    assert failures > 0, "half the requests got a 500 and none were retried: some scores must be missing"
    for s in steps:  # a missing score never turns into NaN or stops training
        assert s["reward/total_mean"] == s["reward/total_mean"]


def test_training_with_local_judge(tmp_path, monkeypatch):
    import audiothinker.trainer.grpo as grpo
    import audiothinker.trainer.step as step_module
    from audiothinker.judge.tiny import build_tiny_judge

    monkeypatch.setattr(step_module, "build_engine", lambda name, policy, options=None: CannedEngine(policy))
    judge_dir = build_tiny_judge(tmp_path / "judge", answer="1")
    cfg = load_config("recipes/tiny_cpu.yaml", [
        f"output_dir={tmp_path / 'run'}", "max_steps=1", "save_steps=0", "log.progress=false",
        "data.synthetic_size=4", "rollout.max_new_tokens=48", "train.per_device_batch_size=2",
        "train.gradient_accumulation_steps=1", "reward.preset=atar_cr", "judge.backend=local",
        f"judge.model={judge_dir}",
    ])
    grpo.train(cfg)
    (step,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # The wired judge answers "1" to every consistency question: every correct completion keeps R_c_eff = 1.
    assert step["judge/requests_sent"] > 0
    assert step["reward/no_score_consistency"] == 0


def test_train_stops_before_the_first_rollout_when_the_judge_is_unreachable(tmp_path, capsys):
    from audiothinker.cli import main
    from audiothinker.judge.tiny import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    rc = main([
        "train", "--config", "recipes/tiny_cpu.yaml", "--set", f"output_dir={tmp_path / 'run'}",
        "--set", "judge.backend=openai", "--set", f"judge.base_url={url}", "--set", "judge.max_retries=0",
        "--set", "judge.timeout=2", "--set", "data.synthetic_size=4",
    ])
    assert rc == 2
    assert url in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # no step ran
