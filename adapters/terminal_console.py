"""The terminal the user watches: one updating line for live transcription, then USER/ASSISTANT.

Spoken, each batch of the reply gets its own line as it goes to the voice. Typed (`joined`),
the reply is one line that grows batch by batch, as it would in a chat window."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class TerminalConsole:
    def __init__(self, stream: TextIO | None = None, *, joined: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._interactive = self._stream.isatty()
        self._joined = joined
        self._lock = threading.Lock()  # stages print from their own threads
        self._live_shown = False
        self._reply_open = False  # joined: a reply line waits for more

    def live(self, text: str) -> None:
        if not self._interactive:
            return  # a log file wants the final lines, not every hypothesis
        with self._lock:
            self._stream.write(f"\r\x1b[K… {text}" if text else "\r\x1b[K")
            self._stream.flush()
            self._live_shown = bool(text)

    def user(self, text: str) -> None:
        self._line(f"USER: {text}")

    def assistant(self, text: str) -> None:
        if not self._joined:
            self._line(f"ASSISTANT: {text}")
            return
        with self._lock:
            self._stream.write(f" {text}" if self._reply_open else f"ASSISTANT: {text}")
            self._stream.flush()
            self._reply_open = True

    def reply_ended(self, cut_short: bool = False) -> None:
        with self._lock:
            self._end_reply()

    def speech_started(self) -> None:
        """The live line shows it."""

    def speech_stopped(self, turn_ended: bool = True) -> None:
        """The USER line follows."""

    def notice(self, text: str) -> None:
        self._line(text)

    def _line(self, text: str) -> None:
        with self._lock:
            self._end_reply()
            prefix = "\r\x1b[K" if self._live_shown else ""
            self._live_shown = False
            self._stream.write(f"{prefix}{text}\n")
            self._stream.flush()

    def _end_reply(self) -> None:
        if self._reply_open:
            self._stream.write("\n")
            self._stream.flush()
            self._reply_open = False
