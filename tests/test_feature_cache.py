"""model.cache_audio_features: cached mel features and frozen-encoder outputs equal the computed ones, bit for bit."""

import json

import numpy as np
import pytest
import torch

from audiothinker.config import ModelConfig
from audiothinker.data.synthetic import generate_items
from audiothinker.memo import Memo
from audiothinker.models import feature_cache
from audiothinker.models.loading import load_policy
from audiothinker.data.batching import prompt_batch


def test_trim_round_trip():
    rng = np.random.default_rng(0)
    feats = np.full((4, 50), -0.5, dtype=np.float32)
    feats[:, :17] = rng.normal(size=(4, 17))
    head, tail, frames = feature_cache.trim_frames(feats)
    assert head.shape == (4, 17) and frames == 50
    assert np.array_equal(feature_cache.stack_untrimmed([(head, tail, frames)])[0], feats)
    const = np.zeros((3, 5), dtype=np.float32)
    assert np.array_equal(feature_cache.stack_untrimmed([feature_cache.trim_frames(const)])[0], const)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from audiothinker.models.tiny import build_tiny_qwen2_audio

    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("fc") / "m", seed=3, hidden=32, layers=1, audio_layers=1)


def test_cached_prompts_and_embeddings_equal_the_computed_ones(tiny, tmp_path):
    items = generate_items(6, seed=2)
    plain = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32"))
    cached = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32", freeze_audio_tower=True,
                                     cache_audio_features=True))
    with torch.no_grad():
        ref = prompt_batch(plain, items, "adaptive", None)
        ref_emb = plain.prompt_embeds(plain.model, ref)
        before = dict(feature_cache.STATS)
        for _ in range(2):  # a miss, then a hit
            b = prompt_batch(cached, items, "adaptive", None)
            assert torch.equal(b.audio["input_features"], ref.audio["input_features"])
            assert torch.equal(cached.prompt_embeds(cached.model, b), ref_emb)
    assert feature_cache.STATS["prompt_hits"] - before["prompt_hits"] == 6  # the whole prompt, per row
    assert feature_cache.STATS["encoder_hits"] - before["encoder_hits"] == 6
    # The processor saves as published: no cache traces in its files.
    cached.processor.save_pretrained(tmp_path / "cached")
    plain.processor.save_pretrained(tmp_path / "plain")
    saved = json.loads((tmp_path / "cached" / "processor_config.json").read_text())
    assert saved == json.loads((tmp_path / "plain" / "processor_config.json").read_text())
    assert saved["feature_extractor"]["feature_extractor_type"] == "WhisperFeatureExtractor"


def test_memoized_prompts_are_the_processors_batch_bit_for_bit(tiny):
    """Hits and misses in one batch, prompts of different lengths, a clip twice: the memo's batch is the
    processor's, tensor by tensor and dtype by dtype."""
    items = generate_items(9, seed=4)  # easy, medium and hard questions: prompts of different lengths
    plain = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32"))
    cached = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32", freeze_audio_tower=True,
                                     cache_audio_features=True))
    prompt_batch(cached, items[:4], "think", None)  # rows 0-3 seen under "think" only
    before = dict(feature_cache.STATS)
    for kind, rows in (("think", [2, 5, 0, 7, 2]), ("adaptive", [0, 1, 8]), ("think", [8, 3, 6, 1])):
        recs = [items[i] for i in rows]
        ref, got = prompt_batch(plain, recs, kind, None), prompt_batch(cached, recs, kind, None)
        assert got.texts == ref.texts
        for name in ("input_ids", "attention_mask"):
            a, b = getattr(got, name), getattr(ref, name)
            assert a.dtype == b.dtype and torch.equal(a, b), name
        assert set(got.audio) == set(ref.audio)
        for name, value in ref.audio.items():
            assert got.audio[name].dtype == value.dtype and torch.equal(got.audio[name], value), name
    # hits: rows 2, 0, 2 again; 3, 1 (seen under "think"). misses: 5, 7; 0, 1, 8 (first under "adaptive"); 8, 6.
    assert feature_cache.STATS["prompt_hits"] - before["prompt_hits"] == 5
    assert feature_cache.STATS["prompt_misses"] - before["prompt_misses"] == 7


@pytest.mark.parametrize("window_s", [2, 30])
def test_windowed_mel_equals_the_whole_window_bit_for_bit(window_s):
    """The mel rows computed on the waveforms cut after their last sound equal those of the whole padded window:
    clips of many lengths, silent ones, a batch whose longest clip fills the window (no cut), and quiet ones."""
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=128, chunk_length=window_s)
    inner = type(fe)._torch_extract_fbank_features
    rng = np.random.default_rng(0)
    T = fe.n_samples
    for lengths in ([1, 160, 401, 4000], [0, 12345, T // 3], [T, 800], [int(x) for x in rng.integers(1, T // 2, 6)]):
        wav = np.zeros((len(lengths), T), dtype=np.float32)
        for i, n in enumerate(lengths):
            wav[i, :n] = rng.normal(0, rng.uniform(1e-4, 0.5), n)
        ref = feature_cache.whole_mel(inner, fe, wav, "cpu")
        end = max(len(feature_cache._trim_zeros(row)) for row in wav)
        got = feature_cache.windowed_mel(inner, fe, wav, "cpu", end)
        for (h1, t1, f1), (h2, t2, f2) in zip(ref, got):
            assert f1 == f2 and np.array_equal(h1, h2) and np.array_equal(t1, t2), lengths


def test_a_trainable_encoder_is_never_cached(tiny):
    policy = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32", cache_audio_features=True))
    items = generate_items(2, seed=4)
    b = prompt_batch(policy, items, "adaptive", None)
    before = dict(feature_cache.STATS)
    emb = policy.prompt_embeds(policy.model, b)
    emb.sum().backward()  # gradients reach the encoder
    assert feature_cache.STATS["encoder_hits"] == before["encoder_hits"]
    assert feature_cache.STATS["encoder_misses"] == before["encoder_misses"]
    tower = policy.model.model.audio_tower if hasattr(policy.model, "model") else policy.model.audio_tower
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.parameters())


def test_other_extractor_calls_fall_through_to_the_mel_cache(tiny):
    """padding="longest" makes a row depend on the batch: the call is not memoized, its mel rows are."""
    items = generate_items(3, seed=5)
    clips = [it.audio for it in items]
    plain = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32")).processor.feature_extractor
    fe = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32", freeze_audio_tower=True,
                                 cache_audio_features=True)).processor.feature_extractor
    ref = plain(clips, sampling_rate=16000, padding="longest", return_tensors="np")["input_features"]
    before = dict(feature_cache.STATS)
    for _ in range(2):
        out = fe(clips, sampling_rate=16000, padding="longest", return_tensors="np")["input_features"]
        assert np.array_equal(out, ref)
    assert feature_cache.STATS["call_hits"] == before["call_hits"]
    assert feature_cache.STATS["mel_hits"] - before["mel_hits"] == 3


def test_a_memo_holds_at_most_its_budget_least_recently_used_first():
    memo = Memo(250, feature_cache.nbytes)  # sized in bytes, as the feature memos
    a, b, c = (np.zeros(25, dtype=np.float32) for _ in range(3))  # 100 bytes each
    memo.put(b"a", a)
    memo.put(b"b", (b, {"mask": np.zeros(0)}))
    assert memo.get(b"a") is a  # a is now the most recently used
    memo.put(b"c", c)
    assert b"b" not in memo and memo.get(b"a") is a and memo.get(b"c") is c
    assert (memo.held, memo.evicted) == (200, 1)
    memo.put(b"big", np.zeros(100, dtype=np.float32))  # 400 bytes: larger than the whole budget, not kept
    assert b"big" not in memo and len(memo) == 2 and memo.held == 200
    memo.put(b"a", np.zeros(10, dtype=np.float32))  # a new value for a key replaces the old one's bytes
    assert memo.held == 140
    memo.shrink(100)  # a lower budget drops the least recently used past it
    assert list(memo.entries) == [b"a"] and memo.held == 40 and memo.evicted == 2
    assert feature_cache.nbytes((torch.zeros(3, dtype=torch.bfloat16), b"xy", "z", 7)) == 6 + 2 + 1


def test_a_full_cache_never_drops_an_entry_the_batch_needs(tiny):
    """Misses inserted into a full memo evict the least recently used entries, which may be this batch's own
    hits; the encoder memo holds no more bytes than its budget."""
    items = generate_items(5, seed=6)
    plain = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32"))
    cached = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32", freeze_audio_tower=True,
                                     cache_audio_features=True))
    try:
        with torch.no_grad():
            ref = plain.prompt_embeds(plain.model, prompt_batch(plain, items, "adaptive", None))
            one = prompt_batch(plain, items[:1], "adaptive", None).audio
            entry = feature_cache.nbytes(plain.audio_tower(one["input_features"]).last_hidden_state[0])
            feature_cache.set_budget(2 * entry)  # two encoder outputs
            assert feature_cache._ENC.held <= 2 * entry
            evicted = feature_cache._ENC.evicted
            prompt_batch(cached, items[:2], "adaptive", None)  # two entries, the oldest first
            cached.prompt_embeds(cached.model, prompt_batch(cached, items[:2], "adaptive", None))
            b = prompt_batch(cached, items, "adaptive", None)  # hits on 0-1, then three misses evict them
            assert torch.equal(cached.prompt_embeds(cached.model, b), ref)
            assert feature_cache._ENC.held == 2 * entry and feature_cache._ENC.evicted >= evicted + 3
    finally:
        feature_cache.set_budget(feature_cache.DEFAULT_BUDGET)


def test_the_prompt_memo_hands_the_encoder_memo_its_rows_keys(tiny):
    """A batch the prompt memo put together is keyed in the encoder memo from the digests it noted (no row
    scanned or hashed again), to the same keys as hashing its rows; a copy of it is hashed row by row."""
    import gc
    from unittest import mock

    from audiothinker.models.base import PromptBatch

    items = generate_items(7, seed=5)
    plain = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32"))
    cached = load_policy(ModelConfig(name_or_path=str(tiny), dtype="float32", freeze_audio_tower=True,
                                     cache_audio_features=True))
    with torch.no_grad():
        prompt_batch(cached, items[:4], "adaptive", None)  # rows 0-3 seen once
        recs = [items[i] for i in (5, 2, 0, 6, 2, 3)]  # hits and misses, a clip twice, out of order
        ref = prompt_batch(plain, recs, "adaptive", None)
        got = prompt_batch(cached, recs, "adaptive", None)
        feats = got.audio["input_features"]
        digests = feature_cache.known_digests(feats)
        assert digests == [feature_cache.features_digest(feature_cache.trim_frames(r.numpy())) for r in feats]
        assert feature_cache.known_digests(feats.clone()) is None
        with mock.patch.object(feature_cache, "_feature_key", wraps=feature_cache._feature_key) as hashed:
            assert torch.equal(cached.prompt_embeds(cached.model, got), plain.prompt_embeds(plain.model, ref))
            assert hashed.call_count == 0
            copy = PromptBatch(got.input_ids, got.attention_mask, {**got.audio, "input_features": feats.clone()},
                               got.texts)
            before = feature_cache.STATS["encoder_hits"]
            assert torch.equal(cached.prompt_embeds(cached.model, copy), plain.prompt_embeds(plain.model, ref))
            assert hashed.call_count == len(recs) and feature_cache.STATS["encoder_hits"] - before == len(recs)
    key = id(feats)
    del got, feats, copy
    gc.collect()
    assert key not in feature_cache._ROW_DIGESTS  # a tensor gone takes its note with it


def test_the_encoder_memo_takes_a_bfloat16_tower(tiny):
    """The real models run in bf16, which numpy cannot hold: the tower's fingerprint reads its raw bytes, and the
    cached embeddings (from the prompt memo's noted rows, and from a copy hashed row by row) equal the plain ones."""
    items = generate_items(3, seed=8)
    plain = load_policy(ModelConfig(name_or_path=str(tiny), dtype="bfloat16"))
    cached = load_policy(ModelConfig(name_or_path=str(tiny), dtype="bfloat16", freeze_audio_tower=True,
                                     cache_audio_features=True))
    with torch.no_grad():
        ref = plain.prompt_embeds(plain.model, prompt_batch(plain, items, "adaptive", None))
        b = prompt_batch(cached, items, "adaptive", None)
        assert ref.dtype == torch.bfloat16 and torch.equal(cached.prompt_embeds(cached.model, b), ref)
        b.audio["input_features"] = b.audio["input_features"].clone()  # not noted: its rows are hashed
        assert torch.equal(cached.prompt_embeds(cached.model, b), ref)
