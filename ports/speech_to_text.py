from __future__ import annotations

from typing import Protocol

from domain.messages import FinalTranscript, PartialTranscript


class SpeechToText(Protocol):
    """Transcribes 16 kHz int16 mono PCM. Partial and final are distinct calls with distinct
    result types, so a partial hypothesis can never stand in for the final transcript."""

    def warm_up(self) -> None:
        """Pays the first decode's one-off cost before the microphone opens."""
        ...

    def transcribe_partial(self, audio: bytes) -> PartialTranscript: ...

    def transcribe(self, audio: bytes) -> FinalTranscript: ...
