from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class TextToSpeech(Protocol):
    def warm_up(self) -> None:
        """Pays the first synthesis's one-off cost before the first reply."""
        ...

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        """16 kHz int16 mono PCM for `text`, in chunks of any length, the first one handed on
        as soon as it exists."""
        ...
