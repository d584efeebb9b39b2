from __future__ import annotations

from typing import Protocol


class EndOfTurn(Protocol):
    """Whether the speaker has finished their turn, judged from how the turn sounds (intonation,
    an unfinished phrase), not from the length of the silence after it."""

    def complete_probability(self, audio: bytes) -> float:
        """P(the turn is complete) for `audio`, the turn so far: 16 kHz int16 mono PCM ending
        in the silence being judged. Stateless: each call judges the audio it is given."""
        ...

    def warm_up(self) -> None:
        """One call on silence, so the first real question is not the one that pays for it."""
        ...
