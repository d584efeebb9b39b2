"""What the sound-device tests share: the adapter for each way to the sound server, reading its
events until one is wanted, and its log lines."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from adapters.pulse_audio import PulseAudio
from adapters.sounddevice_audio import SounddeviceAudio
from domain.audio import AudioEvent, MicBlock
from ports.audio import AudioDuplex
from ports.echo_canceller import EchoCanceller


def wait_for(
    audio: AudioDuplex, wanted: Callable[[AudioEvent], bool], timeout_s: float
) -> list[AudioEvent]:
    """Events until one is `wanted` (the last of the list); fails after `timeout_s`."""
    events: list[AudioEvent] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        event = audio.next_event(timeout_s=0.05)
        if event is not None:
            events.append(event)
            if wanted(event):
                return events
    kinds = [type(event).__name__ for event in events[-3:]]
    raise AssertionError(f"nothing wanted within {timeout_s} s; {len(events)} events: {kinds}")


def audio_log(caplog: pytest.LogCaptureFixture, audio: object) -> list[str]:
    """What the adapter of `audio` logged."""
    return [r.getMessage() for r in caplog.records if r.name == type(audio).__module__]


def is_mic(event: AudioEvent) -> bool:
    return isinstance(event, MicBlock)


APIS = ("portaudio", "pulse")


def server_audio(
    api: str, echo_canceller: EchoCanceller | None = None, capture: bool = True
) -> SounddeviceAudio | PulseAudio:
    """The sound-device adapter for `api` on the server `PULSE_SERVER` names, its default
    microphone (unless not `capture`) and speaker: PortAudio through ALSA's "pulse" device, or
    PulseAudio's client."""
    if api == "portaudio":
        return SounddeviceAudio("pulse", "pulse", capture=capture, echo_canceller=echo_canceller)
    return PulseAudio(capture=capture, echo_canceller=echo_canceller)


def healthy(audio: AudioDuplex) -> bool:
    """Nothing went wrong inside the adapter's audio thread."""
    if isinstance(audio, SounddeviceAudio):
        return audio.callback_errors == 0
    assert isinstance(audio, PulseAudio)
    return audio.failure is None
