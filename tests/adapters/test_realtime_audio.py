"""A Realtime session's input buffers stay bounded whatever the client sends: audio it never
commits, or sends far faster than real time, loses its oldest part, said once in the log."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from adapters.realtime_audio import MAX_HELD_S, MAX_WAITING_S, WIRE_RATE, SessionAudio
from domain.audio import SAMPLE_RATE


def wire_audio(seconds: float, start: int = 0) -> bytes:
    """24 kHz pcm16 counting up from `start`, so the part kept can be told from the part lost."""
    return np.full(int(seconds * WIRE_RATE), start, dtype="<i2").tobytes()


def test_audio_never_committed_keeps_only_its_latest_part(caplog: pytest.LogCaptureFixture) -> None:
    audio = SessionAudio(send=lambda pcm: None)  # not opened: no clock takes the input
    audio.hear(False)  # turn detection off: held for the client's commit
    with caplog.at_level(logging.WARNING):
        for second in range(int(MAX_HELD_S) + 30):
            audio.append(wire_audio(1.0, start=second))
    held = np.frombuffer(audio.take_held(), dtype="<i2")
    assert abs(held.size - MAX_HELD_S * SAMPLE_RATE) <= SAMPLE_RATE // 100  # the resampler's lag
    # The oldest went and the newest stayed (but for the few samples the resampler still holds).
    assert held[0] >= 29 and held[-1] >= int(MAX_HELD_S) + 28
    dropped = [r for r in caplog.records if "the oldest is dropped" in r.getMessage()]
    assert len(dropped) == 1 and "without a commit" in dropped[0].getMessage()


def test_audio_sent_far_faster_than_real_time_is_bounded_too() -> None:
    audio = SessionAudio(send=lambda pcm: None)
    audio.append(wire_audio(MAX_WAITING_S + 10))
    audio.append(wire_audio(1.0, start=7))
    with audio._lock:  # what the clock thread would take from, block by block
        waiting = np.frombuffer(bytes(audio._input), dtype="<i2")
    assert waiting.size == MAX_WAITING_S * SAMPLE_RATE and waiting[-1] == 7
