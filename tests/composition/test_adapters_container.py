"""The adapters container as data: each stage's provider selects the adapter its flag names; the
stages open once, in order, each model warmed up right after it opens, and close in the reverse
order, also when one of them fails to open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from dependency_injector import containers, providers

from adapters.errors import SetupError
from composition import backends, stages
from composition.config import resolve
from composition.containers import (
    STAGES,
    Adapters,
    adapter_selector,
    build_agent,
    opened_resource,
)
from composition.local import StopOnSignal, open_stages
from composition.settings import SETTINGS_BY_NAME
from composition.stage_settings import (
    RESOLVED,
    AudioSettings,
    LlmSettings,
    SttSettings,
    TtsSettings,
    audio_settings,
    llm_settings,
    stt_settings,
    tts_settings,
)
from tests.application.harness import FakeAdapters


class Recorder:
    def __init__(self, name: str, journal: list[str], fail_warm_up: bool) -> None:
        self.name, self.journal, self.fail_warm_up = name, journal, fail_warm_up

    def warm_up(self) -> None:
        self.journal.append(f"warm {self.name}")
        if self.fail_warm_up:
            raise SetupError(f"{self.name} failed its warm-up")


def recording(name: str, journal: list[str], fail: str | None) -> stages.Builder:
    def build(config: Any) -> Iterator[Recorder]:
        journal.append(f"open {name}")
        if fail == f"open {name}":
            raise SetupError(f"{name} cannot open")
        try:
            yield Recorder(name, journal, fail_warm_up=fail == f"warm {name}")
        finally:
            journal.append(f"close {name}")

    return build


def recording_adapters(journal: list[str], fail: str | None = None) -> Any:
    """The stages of the real container, each a recording adapter selected the same way."""
    adapters = containers.DynamicContainer()
    adapters.config = providers.Configuration()
    adapters.tools = providers.Object(None)
    adapters.metrics = providers.Object(None)
    for name, label in STAGES:
        backends = {"recorder": recording(name, journal, fail)}
        selector = adapter_selector(providers.Object("recorder"), backends, adapters.config,
                                    warm=label is not None)  # fmt: skip
        setattr(adapters, name, selector)
    return adapters


def provides(resource: providers.Resource[Any]) -> Any:
    """The function a Resource runs (dependency-injector may wrap it)."""
    return getattr(resource.provides, "__wrapped__", resource.provides)


def open_and_close(adapters: Any) -> None:
    with open_stages({"llm_backend": "llama-cpp"}, adapters, StopOnSignal()):
        pass


def test_stages_open_in_order_warm_up_and_close_in_reverse() -> None:
    journal: list[str] = []
    open_and_close(recording_adapters(journal))
    assert journal == [
        "open audio",
        "open llm", "warm llm", "open vad", "warm vad", "open end_of_turn", "warm end_of_turn",
        "open stt", "warm stt", "open tts", "warm tts",
        "close tts", "close stt", "close end_of_turn", "close vad", "close llm", "close audio",
    ]  # fmt: skip


@pytest.mark.parametrize("fail", ["open stt", "warm stt"])
def test_a_stage_that_fails_closes_what_opened_before_it(fail: str) -> None:
    journal: list[str] = []
    with pytest.raises(SetupError, match="stt"):
        open_and_close(recording_adapters(journal, fail))
    opened = journal.index(fail) + 1
    assert "open tts" not in journal
    assert journal[opened:] == (["close stt"] if fail == "warm stt" else []) + [
        "close end_of_turn", "close vad", "close llm", "close audio"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "setting", "builders"),
    [("stt", "stt", stages.STT_BUILDERS), ("llm", "llm_backend", stages.LLM_BUILDERS),
     ("tts", "tts", stages.TTS_BUILDERS),
     ("end_of_turn", "turn_detection", stages.END_OF_TURN_BUILDERS)],
)  # fmt: skip
def test_each_stage_selects_the_adapter_its_flag_names(
    stage: str, setting: str, builders: dict[str, stages.Builder]
) -> None:
    for name, build in builders.items():
        adapters = Adapters(config=resolve([f"--{setting}", name], environ={}))
        resource = opened_resource(adapters, stage)
        assert resource is not None
        assert (provides(resource), resource.args[0]) == (stages.warmed, build)


@pytest.mark.parametrize(
    ("builders", "declared"),
    [(stages.STT_BUILDERS, backends.STT), (stages.LLM_BUILDERS, backends.LLM),
     (stages.TTS_BUILDERS, backends.TTS),
     (stages.END_OF_TURN_BUILDERS, backends.END_OF_TURN_MODELS)],
)  # fmt: skip
def test_every_declared_backend_has_a_builder_and_no_other(
    builders: dict[str, stages.Builder], declared: dict[str, backends.Backend]
) -> None:
    assert list(builders) == list(declared)


@pytest.mark.parametrize(
    "bundle", [AudioSettings, SttSettings, LlmSettings, TtsSettings], ids=lambda b: b.__name__
)
def test_every_field_of_a_stage_bundle_is_a_declared_setting(bundle: type) -> None:
    derived = {"warm_up_prompt", "tool_specs"}
    names = {field.name for field in attrs.fields(bundle)} - derived
    assert names <= set(SETTINGS_BY_NAME) | RESOLVED
    config = resolve([], environ={})
    built = {
        "AudioSettings": audio_settings,
        "SttSettings": stt_settings,
        "LlmSettings": llm_settings,
        "TtsSettings": tts_settings,
    }[bundle.__name__](config)
    assert all(getattr(built, name) == config[name] for name in names)


def test_silence_ending_turns_needs_no_end_of_turn_adapter() -> None:
    adapters = Adapters(config=resolve(["--turn_detection", "silence"], environ={}))
    assert opened_resource(adapters, "end_of_turn") is None
    assert adapters.end_of_turn() is None


@pytest.mark.parametrize("flags", [["--text"], ["--text", "--speak"]])
def test_typed_turns_load_no_voice_detector_recogniser_or_end_of_turn_model(
    flags: list[str],
) -> None:
    from adapters.no_sound import Unheard

    adapters = Adapters(config=resolve([*flags, "--turn_detection", "smart-turn"], environ={}))
    assert [opened_resource(adapters, s) for s in ("vad", "stt", "end_of_turn")] == [None] * 3
    assert isinstance(adapters.vad(), Unheard) and adapters.stt() is adapters.vad()
    assert adapters.end_of_turn() is None


def test_the_audio_is_a_wav_file_or_the_devices() -> None:
    wav = opened_resource(Adapters(config=resolve(["--input_wav", "in.wav"], environ={})), "audio")
    device = opened_resource(Adapters(config=resolve([], environ={})), "audio")
    assert wav is not None and device is not None
    assert (provides(wav), provides(device)) == (stages.wav_audio, stages.device_audio)


def test_the_application_checks_its_dependencies_at_start_up() -> None:
    partial = FakeAdapters()  # none of its providers is given an adapter
    with pytest.raises(Exception, match="undefined dependencies"):
        build_agent(resolve([], environ={}), partial)


@pytest.mark.parametrize(
    ("flags", "server", "source"),
    [
        (["--input_wav", "q.wav"], True, "wav"),
        ([], True, "pulse"),  # auto: the sound server answers, no device named
        ([], False, "device"),  # auto: no server (macOS, a bare ALSA machine): PortAudio
        (["--input_device", "3"], True, "device"),  # a PortAudio index: PortAudio
        (["--audio_api", "portaudio"], True, "device"),
        (["--audio_api", "pulse", "--input_device", "mic"], False, "pulse"),  # check() says why
        (["--text", "--speak"], True, "pulse"),  # asked for a speaker, no microphone
        (["--text"], True, "none"),
    ],
)
def test_the_audio_api_is_chosen_by_flag_or_by_the_sound_server(
    flags: list[str], server: bool, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []  # whether a microphone was opened to ask

    def server_answers(capture: bool) -> bool:
        asked.append(capture)
        return server

    monkeypatch.setattr("adapters.pulse_audio.server_answers", server_answers)
    config = resolve(flags, environ={})
    assert stages.audio_source(config) == source
    # The server is asked only when auto has to choose, with a microphone only to listen.
    assert asked == ([not config["text"]] if flags in ([], ["--text", "--speak"]) else [])
