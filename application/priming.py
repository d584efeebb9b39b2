"""Reading the next prompt ahead, so the reply reads only what is new.

While the user speaks, each live transcript is offered with the history as the request the
reply will extend; after an exchange (or a summary) the history as it now stands is. A model
with a prompt cache (llama.cpp's server) reads it into that cache; others do nothing. One thread,
the newest offer wins, and a reply about to be asked for drops an offer not yet sent, which
would only delay it.
"""

from __future__ import annotations

import logging
import threading

from domain.messages import ChatMessage
from ports import LanguageModel
from ports.language_model import LanguageModelError

log = logging.getLogger(__name__)

POLL_S = 0.05


class Priming:
    def __init__(self, llm: LanguageModel) -> None:
        self._llm = llm
        self._lock = threading.Lock()
        self._offered = threading.Event()
        self._next: list[ChatMessage] | None = None
        self._last: list[ChatMessage] | None = None

    def offer(self, messages: list[ChatMessage]) -> None:
        with self._lock:
            self._next = messages
        self._offered.set()

    def drop(self) -> None:
        """A reply is being asked for: what was offered and not yet sent is moot."""
        with self._lock:
            self._next = None

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._offered.wait(POLL_S):
                continue
            self._offered.clear()
            with self._lock:
                messages, self._next = self._next, None
            if messages is None or messages == self._last:
                continue
            try:
                self._llm.prime(messages)
            except LanguageModelError as error:  # the reply reads its whole prompt instead
                log.debug("priming failed: %s", error)
                continue
            self._last = messages
