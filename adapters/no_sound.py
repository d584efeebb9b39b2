"""Text mode without speech: no sound device at all. Nothing is captured; what would be played
is dropped, and each mark is echoed at once, so a turn closes as soon as its reply is written
out. The voice that would speak the reply is `Unspoken`: it synthesises nothing. Typed turns
need no ears either, spoken aloud or not: `Unheard` stands in for the voice detector and the
recogniser, so neither model loads."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

from domain.audio import AudioEvent, PlaybackMark, ReplyMark
from domain.messages import FinalTranscript, PartialTranscript


class NoSound:
    def __init__(self) -> None:
        self._started = time.monotonic()
        self._echoes: queue.SimpleQueue[AudioEvent] = queue.SimpleQueue()

    def check(self) -> None:
        """Nothing to check: no device is opened."""

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def next_event(self, timeout_s: float) -> AudioEvent | None:
        try:
            return self._echoes.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def play(self, block: bytes) -> None:
        """Dropped: nobody listens."""

    def mark(self, mark: ReplyMark) -> None:
        self._echoes.put(PlaybackMark(mark, time.monotonic() - self._started))

    def clear_playback(self) -> int:
        return 0

    def pause_playback(self, paused: bool) -> None:
        """Nothing plays."""


class Unheard:
    """The `VoiceActivity` and `SpeechToText` of a conversation that does not listen: nothing
    reaches them, and a decode asked for all the same is a fault, not a silent empty turn."""

    def warm_up(self) -> None:
        """Nothing to load."""

    def speech_probability(self, block: bytes) -> float:
        return 0.0

    def reset(self) -> None:
        """No state."""

    def transcribe_partial(self, audio: bytes) -> PartialTranscript:
        raise RuntimeError("typed turns have no recogniser")

    def transcribe(self, audio: bytes) -> FinalTranscript:
        raise RuntimeError("typed turns have no recogniser")


class Unspoken:
    def warm_up(self) -> None:
        """Nothing to load."""

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        return iter(())
