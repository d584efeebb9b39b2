from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from domain.messages import ChatMessage


class Cancellation(Protocol):
    """Set when the turn is abandoned (stop, interruption); a `threading.Event` satisfies it."""

    def is_set(self) -> bool: ...


class AnyOf:
    """A cancellation set when any of `cancellations` is (a turn's, and a pause's)."""

    def __init__(self, *cancellations: Cancellation) -> None:
        self._cancellations = cancellations

    def is_set(self) -> bool:
        return any(cancellation.is_set() for cancellation in self._cancellations)


class LanguageModel(Protocol):
    @property
    def prompt_budget(self) -> int | None:
        """The most tokens a request's messages may take: the model's context less the room
        its reply may write. None where the context is not known (a provider's API)."""
        ...

    @property
    def background_yields(self) -> bool:
        """True when background work (`stream(..., background=True)`) never holds a request
        of the conversation back: the adapter pauses it for them, or the provider serves both
        at once. False: the conversation cancels it when a reply is asked for."""
        ...

    def count_tokens(self, text: str) -> int | None:
        """How many of the model's tokens `text` takes; None where it cannot tell. Raises
        `LanguageModelError` like `stream`."""
        ...

    def warm_up(self) -> None:
        """Pays the first generation's one-off cost (or, for a server, proves it answers)
        before the microphone opens; raises `LanguageModelError` like `stream`."""
        ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        background: bool = False,
        offer_tools: bool = True,
    ) -> Iterator[str]:
        """Text deltas of the reply, in order. Stops early once `cancel` is set. Raises on a
        provider failure (the application apologises and keeps going). `background`: not part
        of the conversation (history compaction), so a prompt cache kept for the conversation
        is left alone, and no tool is offered. The adapter's tools, if it was given any, are
        offered unless `offer_tools` is False (the model must answer from a result); a call
        comes as its canonical text (domain/tools.py), and `messages` may hold calls (the
        assistant's, in that form) and their results (role "tool")."""
        ...

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Reads `messages` ahead of the reply that will extend them (the user's words so far),
        where a cache keeps what was read: that reply then reads only what is new. Does nothing
        where nothing is cached between requests. Raises `LanguageModelError` like `stream`."""
        ...


class LanguageModelError(RuntimeError):
    """A provider failure (connection, HTTP status, timeout, stream cut). The message is short and
    never carries a credential."""


class ModelRestarted(LanguageModelError):
    """The local model's server died or stopped answering, and is being started again: this
    request is lost, the next one goes to the new server."""
