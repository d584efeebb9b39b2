from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ports.audio import AudioDuplex
from ports.console import Console
from ports.text_to_speech import TextToSpeech


class Agent(Protocol):
    """One conversation, driven by a client that is not this machine's terminal (a Realtime
    session): its audio and console are the client's, its models are shared."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def idle(self) -> bool:
        """Listening, with no turn in flight."""
        ...

    def typed(self, text: str) -> object:
        """The user's words came as text: answered as a spoken turn would be."""
        ...

    def cancel_reply(self) -> bool:
        """Ends the reply in flight, keeping what was heard of it; False when there is none."""
        ...

    def instruct(self, instructions: str) -> None:
        """The system prompt from the next request on."""
        ...


# Builds a session's conversation around the client's audio, console and voice.
AgentFactory = Callable[[AudioDuplex, Console, TextToSpeech], Agent]
