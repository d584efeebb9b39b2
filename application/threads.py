"""The conversation's threads: each loop guarded, so that a bug in a stage stops the
conversation with a fault instead of leaving the agent silently deaf, and all of them joined
within one budget at stop, whatever hangs (the daemon ones are left behind after it)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from application.reply_stream import ReplyStream

log = logging.getLogger(__name__)


class Threads:
    def __init__(self, stop: threading.Event) -> None:
        """`stop` is set when a stage crashes."""
        self._stop = stop
        self._stages: list[threading.Thread] = []
        self._replies: list[tuple[threading.Thread, ReplyStream]] = []
        self.fault: str | None = None  # why the conversation stopped on its own, if it did

    def stage(self, name: str, loop: Callable[[], None]) -> None:
        """A thread that runs as long as the conversation."""
        self._stages.append(self._start(name, loop))

    def reply(self, name: str, loop: Callable[[], None], stream: ReplyStream) -> None:
        """One turn's reply worker, and the stream it reads, both joined at stop."""
        self._replies = [(t, s) for t, s in self._replies if t.is_alive()]
        self._replies.append((self._start(name, loop), stream))

    def halt(self, fault: str) -> None:
        self.fault = self.fault or fault
        self._stop.set()

    def join(self, budget_s: float) -> None:
        deadline = time.monotonic() + budget_s

        def remaining() -> float:
            return max(0.0, deadline - time.monotonic())

        for thread in self._stages:
            if thread is not threading.current_thread():
                thread.join(remaining())
        for worker, stream in self._replies:
            worker.join(remaining())
            stream.join(remaining())

    def _start(self, name: str, loop: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                loop()
            except Exception:
                log.exception("the %s stage crashed; stopping the conversation", name)
                self.halt(f"the {name} stage crashed (a bug): see the log above")

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread
