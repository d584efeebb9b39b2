"""Whole conversations on fakes, through the real dependency-injector containers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from dependency_injector import containers, providers

from application.conversation import Conversation
from composition.config import resolve
from composition.containers import Application, build_agent
from tests.fakes import (
    FakeAudio,
    FakeClock,
    FakeConsole,
    FakeLanguageModel,
    FakeMetrics,
    FakeSpeechToText,
    FakeTextToSpeech,
    FakeVoiceActivity,
    block_level,
)


class FakeAdapters(containers.DeclarativeContainer):
    """Same provider names as every profile container, holding fakes."""

    audio: providers.Dependency[Any] = providers.Dependency()
    vad: providers.Dependency[Any] = providers.Dependency()
    end_of_turn: providers.Dependency[Any] = providers.Dependency()
    stt: providers.Dependency[Any] = providers.Dependency()
    llm: providers.Dependency[Any] = providers.Dependency()
    tts: providers.Dependency[Any] = providers.Dependency()
    console: providers.Dependency[Any] = providers.Dependency()
    clock: providers.Dependency[Any] = providers.Dependency()
    metrics: providers.Dependency[Any] = providers.Dependency()
    tools: providers.Provider[Any] = providers.Object(None)  # no tools unless given


@attrs.define
class Harness:
    agent: Application
    audio: FakeAudio
    vad: FakeVoiceActivity
    stt: FakeSpeechToText
    llm: FakeLanguageModel
    tts: FakeTextToSpeech
    console: FakeConsole
    clock: FakeClock
    metrics: FakeMetrics
    end_of_turn: Any = None
    tools: Any = None

    @property
    def conversation(self) -> Conversation:
        return self.agent.conversation()

    def heard(self) -> list[str]:
        """What came out of the speaker, block by block: "reply", "apology" (fake TTS levels)."""
        names = {FakeTextToSpeech.LEVEL: "reply", FakeTextToSpeech.APOLOGY_LEVEL: "apology"}
        return [names.get(block_level(block), "?") for block in self.audio.played]

    def heard_runs(self) -> list[str]:
        """`heard()` with repeats folded: ["reply", "apology", "reply"]."""
        runs: list[str] = []
        for name in self.heard():
            if not runs or runs[-1] != name:
                runs.append(name)
        return runs

    @property
    def spoken_replies(self) -> list[str]:
        """What was synthesised after the apology and the restart notice, which start()
        prepares first."""
        settings = self.agent.settings()
        assert self.tts.spoken[:2] == [settings.apology, settings.restart_notice]
        return self.tts.spoken[2:]

    def run(self, timeout_s: float = 10.0) -> None:
        """Start, wait for the end of the scripted input, stop."""
        self.conversation.start()
        finished = self.conversation.wait(timeout_s)
        self.conversation.stop()
        assert finished, "the conversation did not finish its script in time"


def make_harness(
    script: Sequence[Any],
    transcripts: dict[int, str],
    replies: Sequence[Any],
    argv: Sequence[str] = (),
    end_of_turn: Any = None,
    tools: Any = None,
    tts: FakeTextToSpeech | None = None,
    **llm_kwargs: Any,
) -> Harness:
    fakes = {
        "audio": FakeAudio(script),
        "vad": FakeVoiceActivity(),
        "end_of_turn": end_of_turn,
        "stt": FakeSpeechToText(transcripts),
        "llm": FakeLanguageModel(replies, **llm_kwargs),
        "tts": tts or FakeTextToSpeech(),
        "console": FakeConsole(),
        "clock": FakeClock(),
        "metrics": FakeMetrics(),
        "tools": tools,
    }
    adapters = FakeAdapters(**{name: providers.Object(fake) for name, fake in fakes.items()})
    if "--turn_detection" not in argv:
        # The transcript's judgement waits on the recogniser's thread, which audio driven as fast
        # as the agent asks does not; its tests freeze the audio clock until it came.
        argv = [*argv, "--turn_detection", "silence"]
    agent = build_agent(resolve(argv, environ={}), adapters=adapters)
    return Harness(agent, **fakes)
