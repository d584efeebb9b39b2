from __future__ import annotations

from typing import Protocol


class VoiceActivity(Protocol):
    """Speech probability of one 512-sample block (16 kHz int16 PCM). Stateful across blocks."""

    def warm_up(self) -> None:
        """Pays the first inference's one-off cost, leaving the state as new."""
        ...

    def speech_probability(self, block: bytes) -> float: ...

    def reset(self) -> None:
        """Forget the recurrent state (between turns)."""
        ...
