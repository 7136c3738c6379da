"""In-process memo of a policy's audio front end: mel features, and the encoder's outputs when it is frozen.

With a published window (Qwen2-Audio: every clip padded to 30 s, 3000 mel frames, 1500 encoder
positions) the front end costs more than a tiny language model: ~60 ms of mel and ~50 ms per
encoder layer per clip on a CPU. SFT epochs, RL revisits and repeated evaluations see the same
clips again, so `model.cache_audio_features` memoizes both, keyed by content:

- the feature extractor's whole call, clip by clip, where each row of its output depends on its
  own clip only (`padding="max_length"`, which the Qwen2-Audio processor always asks for): by
  the clip's bytes, the call's options and the extractor's settings, so a hit skips the padding
  to 30 s, the STFT and the key of the padded waveform. Other calls fall through to:
- mel features: by the bytes of the (padded) waveform and the extractor's settings, computed on the
  waveforms cut after their last sound (`windowed_mel`: exact, and a 2 s clip in a 30 s window
  costs a fourteenth of the STFT). Both are stored trimmed: the frames after the last one that
  differs from the final (padding) frame are rebuilt from that frame, so a 2 s clip in a 30 s
  window costs ~0.1 MB, not 1.5 MB.
- encoder outputs: by the bytes of the features and a fingerprint of the encoder's weights, and
  only while no encoder parameter requires grad (`model.freeze_audio_tower`); a trainable encoder
  is always run. With dropout off (eval mode, or a dropout of 0 as in the published configs)
  the cached output is the output, bit for bit. A features tensor the prompt memo assembled comes with its rows'
  digests (`known_digests`), so it is keyed without scanning and hashing its rows again.

With the encoder memo, whole prompts too (`cache_prompts`): by each row's messages and clip, so a
prompt seen before skips the chat template, tokenizing and the extractor call.

Each memo holds at most `model.audio_cache_gb` bytes (per process; the least recently used entries go first):
the encoder memo's entries live on the encoder's device, and a real model's are large (Qwen2-Audio-7B: 1.9 MB
per clip in bf16, so a bound by entry count, 20,000 before, let it fill 38 GB of GPU memory on a large set).

These are overrides on the instances (`tower.forward`; the feature extractor's class, renamed as
itself; the policy's `build_prompts`): weight names, the saved checkpoint and the processor's files are
unchanged. The mel, call and encoder caches are process-global, so later stages of one process (cold start,
RL, evaluations) reuse them; the prompt memo is its policy's.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from audiothinker.memo import Memo
from audiothinker.models.base import Policy

GIB = 2 ** 30
DEFAULT_BUDGET = 2 * GIB
"""Bytes each memo may hold, per process (`model.audio_cache_gb`). An entry of the encoder memo is one clip's
encoder output, on the encoder's device: Qwen2-Audio-7B's is [750, 1280] (1500 positions pooled by 2), 1.9 MB
in bf16, so 2 GiB hold about 1100 clips (the bound of 20,000 entries before allowed 38 GB)."""


def nbytes(value: Any) -> int:
    """The bytes of the arrays, tensors and byte strings in `value` (nested tuples, lists and dicts; a str counts
    its length)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (bytes, str)):
        return len(value)
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    return 0


_MEL = Memo(DEFAULT_BUDGET, nbytes)  # values: trimmed features (head [M, k], tail frame [M], F)
_ENC = Memo(DEFAULT_BUDGET, nbytes)  # values: encoder outputs [A, H], on the encoder's device
_CALL = Memo(DEFAULT_BUDGET, nbytes)  # values: (trimmed features, the call's other outputs for the clip)
STATS = {"call_hits": 0, "call_misses": 0, "mel_hits": 0, "mel_misses": 0, "encoder_hits": 0, "encoder_misses": 0,
         "prompt_hits": 0, "prompt_misses": 0}


def set_budget(budget: int) -> None:
    """The byte budget of each process-wide memo (mel, extractor call, encoder output): the last policy set up
    with the memos sets it; each policy's prompt memo has its own."""
    for memo in (_MEL, _CALL, _ENC):
        memo.shrink(budget)


PROMPT_AUDIO_KEYS = ("input_features", "feature_attention_mask")
"""The audio of a prompt batch that `cache_prompts` memoizes (Qwen2-Audio's: one fixed window per clip)."""


def has_entries() -> bool:
    """Whether this process has cached any audio features yet (a process forked later inherits them)."""
    return bool(_CALL or _MEL or _ENC)


def _digest(*parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p)
    return h.digest()


def _clip_parts(clip: np.ndarray) -> tuple[bytes, bytes, bytes]:
    """What identifies a 1-D clip in a key: its dtype, length and samples."""
    return str(clip.dtype).encode(), str(len(clip)).encode(), np.ascontiguousarray(clip).tobytes()


def _fetch(cache: Memo, keys: list[bytes], compute: Callable[[list[int]], Any], stat: str) -> list[Any]:
    """The value of every key: hits from `cache`, misses computed once per distinct key by
    `compute(rows)` (rows: the first row of each missing key; returns their values in order).
    Hits are read before any insertion, so a full cache never evicts a value this call returns."""
    found = {}
    for k in keys:
        if k not in found and (value := cache.get(k)) is not None:
            found[k] = value
    hits = sum(k in found for k in keys)
    STATS[f"{stat}_hits"] += hits
    STATS[f"{stat}_misses"] += len(keys) - hits
    first: dict[bytes, int] = {}
    for i, k in enumerate(keys):
        if k not in found:
            first.setdefault(k, i)
    if first:
        for k, value in zip(first, compute(list(first.values()))):
            found[k] = value
            cache.put(k, value)
    return [found[k] for k in keys]


def _trim_zeros(row: np.ndarray) -> np.ndarray:
    """The waveform up to its last nonzero sample (the padding is zeros; the length is keyed separately)."""
    nz = np.flatnonzero(row)
    return row[: int(nz[-1]) + 1] if len(nz) else row[:0]


def _feature_key(fingerprint: bytes, features: np.ndarray) -> bytes:
    """Key of a features row [M, F] in the encoder memo: the encoder's fingerprint and `features_digest`."""
    return _digest(fingerprint, features_digest(trim_frames(features)))


def features_digest(trimmed: tuple[np.ndarray, np.ndarray, int]) -> bytes:
    """Digest of a trimmed features row (`trim_frames`): its frames up to the padding, the padding frame and
    the shape; a row and its trimmed form get the same one, as `trim_frames` is canonical."""
    head, tail, frames = trimmed
    return _digest(repr(head.shape + (frames,)).encode(), head.tobytes(), tail.tobytes())


_ROW_DIGESTS: dict[int, tuple[weakref.ref, list[bytes]]] = {}
"""id(features tensor [B, M, F]) -> (weak reference to it, `features_digest` of each row): what `_assemble`
knows of the batch it built, so the encoder memo keys it without scanning and hashing every row again (the
cold start's prompts all come from the prompt memo: measured, the rows' keys were 6 % of its step). Nothing
writes to a prompt batch's features in place; a copy or any tensor derived from it has another id and is hashed."""


def _note_digests(features: torch.Tensor, digests: list[bytes]) -> None:
    key = id(features)
    _ROW_DIGESTS[key] = (weakref.ref(features, lambda _: _ROW_DIGESTS.pop(key, None)), digests)


def known_digests(features: torch.Tensor) -> list[bytes] | None:
    """The row digests noted for this very tensor (`_assemble`), else None (any other tensor, e.g. a copy)."""
    entry = _ROW_DIGESTS.get(id(features))
    return entry[1] if entry is not None and entry[0]() is features else None


def trim_frames(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """features [M, F] -> (head [M, k], tail frame [M], F): frames k.. all equal the tail frame."""
    last = features[:, -1]
    differs = np.flatnonzero((features != last[:, None]).any(axis=0))  # frame indices unlike the padding
    k = int(differs[-1]) + 1 if len(differs) else 0
    return features[:, :k].copy(), last.copy(), features.shape[1]


def stack_untrimmed(rows: list[tuple[np.ndarray, np.ndarray, int]]) -> np.ndarray:
    """Trimmed rows (`trim_frames`) of one shape -> [B, M, F], each written once into the batch (a stack of
    rebuilt rows copies every 30 s window twice)."""
    head, _, frames = rows[0]
    out = np.empty((len(rows), head.shape[0], frames), dtype=head.dtype)  # [B, M, F]
    for i, (h, t, f) in enumerate(rows):
        if f != frames or h.shape[0] != head.shape[0]:
            raise ValueError(f"rows of different shapes: {h.shape[0]} x {f} and {head.shape[0]} x {frames}")
        out[i, :, : h.shape[1]] = h
        out[i, :, h.shape[1] :] = t[:, None]
    return out


def whole_mel(inner: Callable, extractor: Any, wav: np.ndarray, device: str) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Trimmed mel rows of `wav` [B, T], the STFT over every sample (the reference `windowed_mel` equals)."""
    return [trim_frames(r) for r in np.asarray(inner(extractor, wav, device))]


def windowed_mel(inner: Callable, extractor: Any, wav: np.ndarray, device: str,
                 end: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Trimmed mel rows of `wav` [B, T] (zero-padded clips), computed on the waveforms cut three STFT windows
    after `end`, the last nonzero sample of any row plus one (`_trim_zeros`, which the caller's keys already
    found), not on all T samples: a 2 s clip in a 30 s window costs a fourteenth of the STFT and mel work.
    Exact: every frame of the cut waveform sees the same samples as in the whole one (the centre padding
    reflects zeros), the frames after it all see zeros only and equal the cut waveform's last frame, and
    Whisper's floor (row maximum - 8) comes from the same frames."""
    n_fft, hop = int(extractor.n_fft), int(extractor.hop_length)
    cut = -(-(end + 3 * n_fft) // hop) * hop
    if cut >= wav.shape[1] or wav.shape[1] % hop:
        return whole_mel(inner, extractor, wav, device)
    short = np.asarray(inner(extractor, np.ascontiguousarray(wav[:, :cut]), device))  # [B, M, cut / hop]
    frames = wav.shape[1] // hop  # Whisper drops the STFT's last frame: T / hop frames
    return [(head, tail, frames) for head, tail, _ in map(trim_frames, short)]  # the padding frames: the tail


def _mel_memo(cls: type, settings: bytes) -> Any:
    """`_torch_extract_fbank_features(waveform [B, T], device) -> [B, M, F]`, memoized row by row."""
    inner = cls._torch_extract_fbank_features

    def extract(self: Any, waveform: np.ndarray, device: str = "cpu") -> np.ndarray:
        wav = np.asarray(waveform, dtype=np.float32)
        if wav.ndim == 1:
            return inner(self, waveform, device)
        sounds = [_trim_zeros(row) for row in wav]
        keys = [_digest(settings, str(len(row)).encode(), sound.tobytes()) for row, sound in zip(wav, sounds)]
        rows = _fetch(_MEL, keys, lambda miss: windowed_mel(inner, self, wav[miss], device,
                                                            max(len(sounds[i]) for i in miss)), "mel")
        return stack_untrimmed(rows)

    return extract


def _call_memo(cls: type, settings: bytes) -> Any:
    """`feature_extractor(clips, **options)`, memoized clip by clip where a row depends on its clip only."""
    from transformers import BatchFeature

    inner = cls.__call__

    def call(self: Any, raw_speech: Any, *args: Any, **kwargs: Any) -> Any:
        rows = raw_speech if isinstance(raw_speech, (list, tuple)) else None
        if (args or not rows or kwargs.get("padding", "max_length") != "max_length"
                or not all(isinstance(r, np.ndarray) and r.ndim == 1 for r in rows)):
            return inner(self, raw_speech, *args, **kwargs)
        tensors = kwargs.pop("return_tensors", None)
        options = repr(sorted((k, repr(v)) for k, v in kwargs.items())).encode()
        keys = [_digest(settings, options, *_clip_parts(r)) for r in rows]
        def compute(miss: list[int]) -> list[tuple[tuple[np.ndarray, np.ndarray, int], dict[str, np.ndarray]]]:
            out = inner(self, [rows[i] for i in miss], **kwargs, return_tensors="np")
            return [(trim_frames(np.asarray(out["input_features"][j])),
                     {name: np.asarray(v[j]) for name, v in out.items() if name != "input_features"})
                    for j in range(len(miss))]

        entries = _fetch(_CALL, keys, compute, "call")
        data = {"input_features": stack_untrimmed([feats for feats, _ in entries])}
        for name in entries[0][1]:
            data[name] = np.stack([rest[name] for _, rest in entries])
        return BatchFeature(data, tensor_type=tensors)

    return call


def cache_mel(feature_extractor: Any) -> None:
    """Memoize the extractor's call per clip (`padding="max_length"`) and, below it, its mel features per row."""
    settings = repr(sorted((k, str(v)) for k, v in feature_extractor.to_dict().items())).encode()
    # A subclass of the same name rather than an instance attribute: `save_pretrained` writes the instance's
    # attributes and the class name to preprocessor_config.json, which must stay as published.
    cls = type(feature_extractor)
    feature_extractor.__class__ = type(cls.__name__, (cls,), {
        "_torch_extract_fbank_features": _mel_memo(cls, settings),
        "__call__": _call_memo(cls, settings),
        "__module__": cls.__module__, "__qualname__": cls.__qualname__,
    })


def _tensor_bytes(t: torch.Tensor) -> bytes:
    """A tensor's dtype, shape and raw bytes, whatever its dtype (numpy has no bfloat16, the real models' dtype)."""
    raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return repr((str(t.dtype), tuple(t.shape))).encode() + raw


def cache_encoder(tower: torch.nn.Module) -> None:
    """Memoize `tower(input_features [B, M, F], attention_mask=...)` per row while the tower is frozen."""
    from transformers.modeling_outputs import BaseModelOutput

    inner = tower.forward
    fingerprint = _digest(*(_tensor_bytes(p) for p in tower.parameters()))

    def forward(input_features: torch.Tensor, attention_mask: Any = None, **kwargs: Any) -> Any:
        """attention_mask may be a function of the rows to run (`lazy_mask`): it is built only for misses."""
        def mask_for(rows: list[int] | None) -> Any:  # the mask of these rows (None: all of them)
            if callable(attention_mask):
                return attention_mask(rows)
            if rows is None or not isinstance(attention_mask, torch.Tensor):
                return attention_mask
            return attention_mask[rows]

        frozen = not any(p.requires_grad for p in tower.parameters())
        if not frozen or kwargs or (tower.training and float(getattr(tower.config, "dropout", 0.0)) > 0):
            return inner(input_features, attention_mask=mask_for(None), **kwargs)
        digests = known_digests(input_features)
        keys = ([_digest(fingerprint, d) for d in digests] if digests is not None
                else [_feature_key(fingerprint, row.detach().cpu().numpy()) for row in input_features])

        def compute(miss: list[int]) -> list[torch.Tensor]:
            with torch.no_grad():
                out = inner(input_features[miss], attention_mask=mask_for(miss)).last_hidden_state  # [b, A, H]
            return [row.detach().clone() for row in out]

        return BaseModelOutput(last_hidden_state=torch.stack(_fetch(_ENC, keys, compute, "encoder")))

    tower.forward = forward
    tower.lazy_mask = True  # `forward` takes attention_mask as a function of the rows it runs


def cache_prompts(policy: Policy, budget: int = DEFAULT_BUDGET) -> None:
    """Memoize `policy.build_prompts(messages, clips)` row by row, by each row's messages and clip, in at most
    `budget` bytes.

    A prompt seen before (SFT epochs, RL revisits, repeated evaluations) skips the chat template, the
    processor's text expansion and tokenizing, and the feature memo's lookup; the batch is put together
    as the processor pads it (the ids by the tokenizer's own `pad`, features one fixed window per clip).
    Calls of another shape (no pad token, clips that are not 1-D arrays, audio other than
    `PROMPT_AUDIO_KEYS`) fall through to the processor.
    """
    import json

    inner = policy.build_prompts
    # rows (text, ids, trimmed features, their digest, feature mask): the features are the clip's entry in
    # `features`, counted there (half the budget each)
    memo = Memo(budget // 2, size=lambda row: nbytes((row[0], row[1], row[3], row[4])))
    features = Memo(budget // 2, nbytes)  # clip -> (trimmed features, their digest)
    state = {"on": True}

    def build_prompts(messages: list[list[dict]], audios: list[Any]) -> Any:
        tok = policy.tokenizer
        if (not state["on"] or tok.pad_token_id is None or len(messages) != len(audios)
                or not all(isinstance(a, np.ndarray) and a.ndim == 1 for a in audios)):
            return inner(messages, audios)
        clips = [_digest(*_clip_parts(a)) for a in audios]
        keys = [_digest(json.dumps(m, sort_keys=True, default=str).encode(), c) for m, c in zip(messages, clips)]

        def compute(miss: list[int]) -> list[Any]:
            batch = inner([messages[i] for i in miss], [audios[i] for i in miss])
            if set(batch.audio) != set(PROMPT_AUDIO_KEYS) or batch.audio["input_features"].dim() != 3:
                raise _Unsupported
            rows = []
            for j in range(len(miss)):
                ids = batch.input_ids[j][batch.attention_mask[j].bool()].clone()
                known = features.get(clips[miss[j]])
                if known is None:
                    trimmed = trim_frames(batch.audio["input_features"][j].numpy())
                    known = (trimmed, features_digest(trimmed))
                features.put(clips[miss[j]], known)  # the same clip under another prompt shares it
                rows.append((batch.texts[j], ids, *known, batch.audio["feature_attention_mask"][j].clone()))
            return rows

        try:
            rows = _fetch(memo, keys, compute, "prompt")
        except _Unsupported:
            state["on"] = False
            return inner(messages, audios)
        return _assemble(rows, tok)

    policy.build_prompts = build_prompts


class _Unsupported(Exception):
    """A prompt batch of another layout than `cache_prompts` puts together."""


def _assemble(rows: list[tuple[str, torch.Tensor, tuple[np.ndarray, np.ndarray, int], bytes, torch.Tensor]],
              tokenizer: Any) -> Any:
    """The prompt batch of memoized rows (text, ids, trimmed features, their digest, feature mask), padded by the
    tokenizer as the processor pads it; the features' row digests are noted for the encoder memo."""
    from audiothinker.models.base import PromptBatch

    text = tokenizer.pad({"input_ids": [r[1].tolist() for r in rows]}, padding=True, return_tensors="pt")
    feats = torch.from_numpy(stack_untrimmed([r[2] for r in rows]))  # [B, M, F]
    _note_digests(feats, [r[3] for r in rows])
    audio = {"input_features": feats, "feature_attention_mask": torch.stack([r[4] for r in rows])}
    return PromptBatch(text["input_ids"], text["attention_mask"], audio, [r[0] for r in rows])


def install(policy: Policy, audio_tower: torch.nn.Module | None, budget: int = DEFAULT_BUDGET) -> None:
    """Both caches on a policy with a Whisper-style feature extractor (the encoder one, and the prompt memo
    `cache_prompts`, if `audio_tower`), each memo holding at most `budget` bytes (`set_budget`)."""
    set_budget(budget)
    fe = getattr(policy.processor, "feature_extractor", None)  # a text adapter's processor is its tokenizer
    if fe is not None and hasattr(fe, "_torch_extract_fbank_features"):
        cache_mel(fe)
    if audio_tower is not None:
        cache_encoder(audio_tower)
        cache_prompts(policy, budget)
