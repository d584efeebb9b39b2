"""What each stage's builder reads of the resolved configuration, as typed bundles: a builder
takes its stage's bundle, so mypy checks every setting it reads. Each field is named after the
setting it carries (a test holds them to the declaration), and a bundle is cut out of the
configuration in one place, `of`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from composition.backends import explicit_gen
from composition.settings import TIMER, chosen_tools, first_request
from domain.messages import ChatMessage
from domain.timers import SET_TIMER
from domain.tools import ToolSpec
from ports.tools import Toolbox

Bundle = TypeVar("Bundle", bound=attrs.AttrsInstance)

# Fields resolved beside the declared settings (composition/config.py): the generation options
# by prefix, and which settings the user set.
RESOLVED = frozenset({"llm_gen", "stt_gen", "explicit"})


def of(cls: type[Bundle], config: Mapping[str, Any], **derived: Any) -> Bundle:
    """The bundle `cls` of `config`, field by field; `derived` are fields that are no
    setting."""
    fields = attrs.fields(cls)
    return cls(**{f.name: config[f.name] for f in fields if f.name not in derived}, **derived)


@attrs.frozen
class AudioSettings:
    input_wav: str | None
    output_wav: str | None
    simulated_echo: bool
    aec: bool
    input_device: str | None
    output_device: str | None
    audio_latency: str
    text: bool  # typed turns: the speaker only, no microphone opened


@attrs.frozen
class SttSettings:
    faster_whisper_stt_model_name: str | None
    stt_model_name: str | None
    stt_device: str | None
    stt_torch_dtype: str | None
    stt_gen: Mapping[str, Any]
    language: str
    languages: str

    @property
    def allowed_languages(self) -> list[str]:
        return [code.strip() for code in self.languages.split(",") if code.strip()]


@attrs.frozen
class LlmSettings:
    model_name: str | None
    llm_device: str | None
    llm_torch_dtype: str | None
    llm_gen: Mapping[str, Any]
    llm_is_vlm: bool
    llm_threads: int
    llm_niceness: int
    llm_timeout_s: float
    responses_api_api_key: str | None
    responses_api_base_url: str | None
    responses_api_stream: bool
    responses_api_disable_thinking: bool
    responses_api_reasoning_effort: str | None
    explicit: list[str]
    # What the first request sends before the user's words: a local model's server reads it
    # while warming up.
    warm_up_prompt: list[ChatMessage]
    # The tools offered with the conversation's requests.
    tool_specs: tuple[ToolSpec, ...] = ()

    @property
    def chosen_gen(self) -> dict[str, Any]:
        """The generation options the user set (flag or environment), without the prefix."""
        return explicit_gen(self.llm_gen, self.explicit, "llm_gen_")


def llm_settings(config: Mapping[str, Any], toolbox: Toolbox | None = None) -> LlmSettings:
    tools = tuple(toolbox.specs) if toolbox is not None else ()
    if TIMER in chosen_tools(config["tools"]):
        tools += (SET_TIMER,)
    return of(LlmSettings, config, warm_up_prompt=first_request(config), tool_specs=tools)


def audio_settings(config: Mapping[str, Any]) -> AudioSettings:
    return of(AudioSettings, config)


def stt_settings(config: Mapping[str, Any]) -> SttSettings:
    return of(SttSettings, config)


def tts_settings(config: Mapping[str, Any]) -> TtsSettings:
    return of(TtsSettings, config)


@attrs.frozen
class TtsSettings:
    piper_voice: str | None
    tts_model_name: str | None
    tts_device: str | None
