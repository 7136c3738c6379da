"""The model-family registry: every adapter module in models/ registers its family with `@register_family`.

A family says which checkpoints are its own (config.json `model_type`, or its `architectures`),
how to load one into its adapter (the class's `load`), and which `tiny:<name>` test models it can
build. `load_policy`, `model.family` validation and the tiny specs read this registry, so a new
family is one new module in models/: the modules are imported on first use of the registry, and
each keeps its heavy imports (transformers classes) inside its `load`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audiothinker.models.base import Policy

TinyBuilder = Callable[..., Path]  # (out_dir, *, seed) -> the directory written


@dataclass(frozen=True)
class Family:
    name: str
    load: Callable[[str, dict[str, Any]], Policy]  # (path, from_pretrained kwargs) -> the family's adapter
    model_types: tuple[str, ...] = ()  # config.json model_type values of this family
    architectures: tuple[str, ...] = ()  # or config.json architectures entries
    tiny: Mapping[str, TinyBuilder] = field(default_factory=dict)  # spec name after "tiny:" -> builder
    fallback: bool = False  # chosen when no family claims a checkpoint (the text adapter: any causal LM)
    cache_encoder: bool = False  # the audio tower's outputs may be memoised (models/feature_cache.py)
    # vLLM (rollout/vllm_engine.py): transformers -> vLLM parameter-name prefixes (None: the family does
    # not run under vLLM), and where vLLM's hf_overrides hold the language model's config.
    vllm_weight_prefixes: tuple[tuple[str, str], ...] | None = None
    vllm_text_config: tuple[str, ...] = ()
    # or the whole hf_overrides, from whether the trained LM head is tied (e.g. a callable making a full config)
    vllm_hf_overrides: Callable[[bool], Any] | None = None

    def claims(self, model_type: str, architectures: list[str]) -> bool:
        return model_type in self.model_types or bool(set(architectures) & set(self.architectures))


FAMILIES: dict[str, Family] = {}


def register_family(
    name: str, *, model_types: tuple[str, ...] = (), architectures: tuple[str, ...] = (),
    tiny: Mapping[str, TinyBuilder] | None = None, fallback: bool = False, cache_encoder: bool = False,
    vllm_weight_prefixes: tuple[tuple[str, str], ...] | None = None, vllm_text_config: tuple[str, ...] = (),
    vllm_hf_overrides: Callable[[bool], Any] | None = None,
) -> Callable[[type], type]:
    """Class decorator: make an adapter selectable as `model.family: <name>` and detectable from a checkpoint.

    The class needs a `load(path, model_kwargs)` classmethod; the decorator sets its `family` to `name`.
    """

    def add(cls: type) -> type:
        if name in FAMILIES and FAMILIES[name].load != cls.load:
            raise ValueError(f"model family {name!r} is registered twice")
        cls.family = name
        FAMILIES[name] = Family(name, cls.load, tuple(model_types), tuple(architectures), dict(tiny or {}),
                                fallback, cache_encoder, vllm_weight_prefixes, tuple(vllm_text_config),
                                vllm_hf_overrides)
        return cls

    return add


def families() -> dict[str, Family]:
    """Every registered family (importing the modules of models/ first, so each has registered)."""
    from audiothinker.plugins import import_submodules

    import_submodules("audiothinker.models")
    return FAMILIES


def family_names() -> list[str]:
    return sorted(families())


def family_choices() -> list[str]:
    """The values of `model.family`: auto (detected from the checkpoint) or a registered family."""
    return ["auto", *family_names()]


def get_family(name: str) -> Family:
    if name not in families():
        raise ValueError(f"unknown model family {name!r}; valid: {family_names()}")
    return FAMILIES[name]


def detect_family_of(model_type: str, architectures: list[str] | None = None) -> str:
    """The family claiming a checkpoint's model_type/architectures, else the fallback family."""
    found = [f.name for f in families().values() if f.claims(model_type, list(architectures or []))]
    if found:
        return found[0]
    fallback = [f.name for f in FAMILIES.values() if f.fallback]
    if not fallback:
        raise ValueError(f"no model family claims model_type {model_type!r}; known: {family_names()}")
    return fallback[0]


def tiny_builders() -> dict[str, TinyBuilder]:
    """`tiny:<name>` spec -> its builder, over every family."""
    return {f"tiny:{k}": b for f in families().values() for k, b in f.tiny.items()}


def builder_source(builder: TinyBuilder) -> str:
    """Source of the module a builder is defined in (partials unwrapped): a tiny model's cache key."""
    import inspect

    while isinstance(builder, functools.partial):
        builder = builder.func
    return inspect.getsource(inspect.getmodule(builder))
