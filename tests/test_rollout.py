"""Rollout helpers: masking completions after their first EOS, and the engine registry."""

from __future__ import annotations

import pytest
import torch

from audiothinker.rollout import SamplingParams, build_engine, pad_after_eos

EOS, PAD = 2, 0


def test_pad_after_eos_by_hand():
    ids = torch.tensor([
        [5, 7, 2, 9, 2],  # EOS at 2: keep 5 7 2, pad the rest (a second EOS is padding too)
        [5, 5, 5, 5, 5],  # no EOS: all kept, truncated
        [2, 3, 4, 6, 8],  # EOS first: only the EOS token counts
        [3, 4, 5, 6, 2],  # EOS as the last token: not truncated
    ])
    out, mask, truncated = pad_after_eos(ids, [EOS], PAD)
    assert out.tolist() == [[5, 7, 2, 0, 0], [5, 5, 5, 5, 5], [2, 0, 0, 0, 0], [3, 4, 5, 6, 2]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert truncated.tolist() == [False, True, False, False]
    assert mask.dtype == torch.long and truncated.dtype == torch.bool
    assert ids[0, 3] == 9  # the input is not modified in place


def test_pad_after_eos_several_eos_ids():
    # Qwen stops on <|im_end|> or <|endoftext|>: the first of either ends the completion.
    ids = torch.tensor([[4, 6, 5, 2, 7], [4, 4, 2, 6, 7], [4, 4, 4, 4, 4]])
    out, mask, truncated = pad_after_eos(ids, [2, 6], pad_id=1)
    assert out.tolist() == [[4, 6, 1, 1, 1], [4, 4, 2, 1, 1], [4, 4, 4, 4, 4]]
    assert mask.sum(1).tolist() == [2, 3, 5]
    assert truncated.tolist() == [False, False, True]


def test_pad_id_equal_to_eos_keeps_the_mask_right():
    # pad == eos (tokenizers without a pad token): the mask, not the ids, says where the completion ends.
    ids = torch.tensor([[5, 2, 2, 2]])
    out, mask, truncated = pad_after_eos(ids, [2], pad_id=2)
    assert out.tolist() == [[5, 2, 2, 2]]
    assert mask.tolist() == [[1, 1, 0, 0]]
    assert not truncated.item()


def test_build_engine_errors():
    with pytest.raises(ValueError, match="'hf', 'vllm'"):
        build_engine("sglang", policy=None)


def test_registering_an_engine_is_one_decorator(monkeypatch):
    # The registry is the single list: build_engine, config validation and the eval CLI read it.
    from audiothinker.config import Config, ConfigError, validate
    from audiothinker.eval.runner import add_parser
    from audiothinker.rollout import ENGINES, register_engine

    monkeypatch.setattr("audiothinker.rollout.base.ENGINES", dict(ENGINES))
    import audiothinker.rollout.base as base

    @register_engine("echo")
    class Echo:
        name = "echo"

        def __init__(self, policy, options):
            self.policy, self.options = policy, options

        def sync_weights(self, model):
            pass

        def generate(self, prompts, num_generations, params):
            raise NotImplementedError

        def close(self):
            pass

    assert base.ENGINES["echo"] is Echo
    engine = build_engine("echo", policy="p")
    assert isinstance(engine, Echo) and engine.policy == "p"
    cfg = Config()
    cfg.rollout.engine = "echo"
    validate(cfg)  # accepted without touching config.py
    cfg.rollout.engine = "nope"
    with pytest.raises(ConfigError, match="rollout.engine: 'nope'"):
        validate(cfg)
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    p = add_parser(sub)
    engine_arg = next(a for a in p._actions if a.dest == "engine")
    assert "echo" in engine_arg.choices


def test_sampling_params_defaults_follow_the_paper():
    p = SamplingParams()
    assert (p.temperature, p.top_p, p.top_k, p.max_new_tokens, p.do_sample) == (1.0, 1.0, 0, 256, True)
