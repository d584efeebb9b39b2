from __future__ import annotations

from typing import Protocol


class Console(Protocol):
    """What the user sees in the terminal."""

    def live(self, text: str) -> None:
        """Replace the one updating line (live transcription)."""
        ...

    def user(self, text: str) -> None:
        """`USER: ...`, ending the live line."""
        ...

    def assistant(self, text: str) -> None:
        """`ASSISTANT: ...` for text about to be spoken."""
        ...

    def notice(self, text: str) -> None:
        """A one-line status message (listening, errors)."""
        ...

    def reply_ended(self, cut_short: bool = False) -> None:
        """The reply shown so far is whole (its turn closed, or an apology follows);
        `cut_short`: it was not said to its end (an interruption, a fault)."""
        ...

    def speech_started(self) -> None:
        """The user started speaking (a new turn, or over the reply)."""
        ...

    def speech_stopped(self, turn_ended: bool = True) -> None:
        """The user stopped speaking: their turn ended, and its transcript follows; or
        (`turn_ended` False) a sound over the reply that was no interruption, which goes on."""
        ...
