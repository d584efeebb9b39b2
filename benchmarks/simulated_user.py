"""A person at a real sound device: speaks a question into the private PulseAudio server's
microphone, listens at its speaker, waits for the whole reply, then speaks the next question.

Voice-to-voice is timed where a person meets it: from the last sample of the question going into
the microphone to the first sample of the reply coming out of the speaker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs
import numpy as np

from tests.adapters.pulse_server import PulseServer

SAMPLE_RATE = 16_000
BLOCK_SAMPLES = 512
# Above the agent's dither (+-1) and a Piper voice's breath, below any spoken syllable.
VOICED = 500
# A reply has ended when the agent has closed its turn and the speaker has been quiet this long
# (a person hears the end; the benchmark asks the agent too, as generation can pause longer).
REPLY_ENDED_S = 0.5
REPLY_WAIT_S = 15.0  # no reply this long after the question: the agent missed it
REPLY_MAX_S = 60.0
THINK_S = 0.8  # a person's pause between hearing the reply and speaking again
POLL_S = 0.005


@attrs.frozen
class Exchange:
    question: str
    voice_to_voice_ms: float | None  # None: no reply came
    reply_s: float
    longest_gap_ms: float = 0.0  # the longest silence inside the reply: a starved speaker shows


def longest_gap_ms(pcm: bytes) -> float:
    """The longest run of 10 ms frames without a voiced sample, between the first and the last
    voiced one (Piper's pause between two sentences is about 150-350 ms)."""
    frame = SAMPLE_RATE // 100
    samples = np.abs(np.frombuffer(pcm, dtype=np.int16).astype(np.int32))
    frames = samples[: samples.size // frame * frame].reshape(-1, frame).max(axis=1) > VOICED
    voiced = np.flatnonzero(frames)
    if voiced.size < 2:
        return 0.0
    return float(np.diff(voiced).max() - 1) * 10


def last_voiced_sample(pcm: bytes) -> int:
    samples = np.frombuffer(pcm, dtype=np.int16)
    voiced = np.flatnonzero(np.abs(samples.astype(np.int32)) > VOICED)
    return int(voiced[-1]) if voiced.size else 0


class SimulatedUser:
    """`turns_closed` counts the turns the agent has closed so far (its metrics lines)."""

    def __init__(self, pulse: PulseServer, turns_closed: Callable[[], int]) -> None:
        self._pulse = pulse
        self._turns_closed = turns_closed

    def ask(self, question: str, pcm: bytes) -> Exchange:
        closed_before = self._turns_closed()
        heard_from = len(self._pulse.heard())
        self._pulse.say(pcm)
        while self._pulse.saying:
            time.sleep(POLL_S)
        end = last_voiced_sample(pcm)
        said_at = self._pulse.said_at()
        spoken_end = said_at[end // BLOCK_SAMPLES] + (end % BLOCK_SAMPLES) / SAMPLE_RATE
        onset = self._wait_voiced(heard_from, time.monotonic() + REPLY_WAIT_S)
        if onset is None:
            return Exchange(question, None, 0.0)
        onset_at = self._pulse.heard_at(onset)
        assert onset_at is not None
        ended_at = self._wait_quiet(onset, closed_before)
        gap_ms = longest_gap_ms(self._pulse.heard(onset))
        time.sleep(THINK_S)
        return Exchange(
            question, round((onset_at - spoken_end) * 1000, 1), ended_at - onset_at, gap_ms
        )

    def _wait_voiced(self, heard_from: int, deadline: float) -> int | None:
        """The byte offset in `heard()` of the first voiced sample after `heard_from`."""
        while time.monotonic() < deadline:
            heard = np.frombuffer(self._pulse.heard(heard_from), dtype=np.int16)
            voiced = np.flatnonzero(np.abs(heard.astype(np.int32)) > VOICED)
            if voiced.size:
                return heard_from + 2 * int(voiced[0])
            time.sleep(POLL_S)
        return None

    def _wait_quiet(self, onset: int, closed_before: int) -> float:
        """When the reply that began at byte `onset` stopped (its last voiced sample played)."""
        deadline = time.monotonic() + REPLY_MAX_S
        quiet_bytes = int(2 * SAMPLE_RATE * REPLY_ENDED_S)
        while time.monotonic() < deadline:
            heard = self._pulse.heard(onset)
            samples = np.frombuffer(heard, dtype=np.int16).astype(np.int32)
            voiced = np.flatnonzero(np.abs(samples) > VOICED)
            last = onset + 2 * int(voiced[-1]) if voiced.size else onset
            if onset + len(heard) - last >= quiet_bytes and self._turns_closed() > closed_before:
                return self._pulse.heard_at(last) or time.monotonic()
            time.sleep(0.05)
        return time.monotonic()
