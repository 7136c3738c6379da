"""Prompt texts (SPEC section 2) and the chat messages built from them."""

from __future__ import annotations

from typing import Any, Literal

PromptKind = Literal["adaptive", "think", "no_think"]

INSTRUCTIONS: dict[str, str] = {
    "adaptive": (
        "First, identify whether this problem requires thinking. If the problem requires thinking, "
        "output thinking process in <think> </think> and final answer inside <answer> </answer>. "
        "If no thinking is required, output the final answer in <answer> </answer>. "
        "Use the <answer></answer> tag whenever possible, while ensuring accuracy."
    ),
    "think": "Output the thinking process in <think> </think> and final answer in <answer> </answer>.",
    "no_think": "Output the final answer in <answer> </answer>.",
}


def question_text(question: str, choices: list[str], kind: str) -> str:
    """R1-AQA question body followed by the instruction of `kind`."""
    if kind not in INSTRUCTIONS:
        raise ValueError(f"unknown prompt kind {kind!r}; valid: {sorted(INSTRUCTIONS)}")
    options = ", ".join(choices)
    return f"{question} Please choose the answer from the following options: [{options}]. {INSTRUCTIONS[kind]}"


def chat_messages(question: str, choices: list[str], kind: str, audio_ref: Any = None) -> list[dict]:
    """One user turn: the audio first, then the text (the layout Qwen2-Audio and Qwen2.5-Omni expect).

    The audio item always carries an `audio` key: the published Qwen2-Audio template recognises an audio
    item only by an `audio` or `audio_url` key (`{% if 'audio' in content or 'audio_url' in content %}`),
    the Qwen2.5-Omni one by `type` or those keys. The waveforms themselves go to the processor apart, so
    the value is only a reference (the record's path) or None.
    """
    audio_item: dict[str, Any] = {"type": "audio", "audio": audio_ref}
    return [{"role": "user", "content": [audio_item, {"type": "text", "text": question_text(question, choices, kind)}]}]
