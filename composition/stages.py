"""How each stage's adapter is built from the resolved configuration. Imports of adapter modules
are cheap (they load their libraries lazily); the models load when these functions run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from adapters.metrics_sinks import FanOut, JsonlMetrics, TurnLog
from adapters.system_clock import MonotonicClock
from adapters.terminal_console import TerminalConsole
from ports import AudioDuplex, LanguageModel, MetricsSink, SpeechToText, TextToSpeech, VoiceActivity


def clock() -> MonotonicClock:
    return MonotonicClock()


def console() -> TerminalConsole:
    return TerminalConsole()


def metrics(jsonl_path: str | None) -> MetricsSink:
    sinks: list[MetricsSink] = [TurnLog()]
    if jsonl_path:
        sinks.append(JsonlMetrics(jsonl_path))
    return FanOut(sinks)


def audio(config: Mapping[str, Any]) -> AudioDuplex:
    raise NotImplementedError


def vad(config: Mapping[str, Any]) -> VoiceActivity:
    raise NotImplementedError


def speech_to_text(config: Mapping[str, Any]) -> SpeechToText:
    raise NotImplementedError


def language_model(config: Mapping[str, Any]) -> Iterator[LanguageModel]:
    raise NotImplementedError


def text_to_speech(config: Mapping[str, Any]) -> TextToSpeech:
    raise NotImplementedError
