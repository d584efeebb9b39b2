"""The recogniser's calls, each bounded in time: a decode that hangs (a stuck model, a device
that never answers) is abandoned after `timeout_s` with the thread running it, and the next
decode goes to a fresh one. One bad decode costs its own job, never every job after it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

R = TypeVar("R")


class DecodeTimedOut(Exception):
    """The recogniser gave no answer in time; the decode was abandoned."""


class _Call(Generic[R]):
    def __init__(self, decode: Callable[[bytes], R], audio: bytes) -> None:
        self._decode, self._audio = decode, audio
        self.done = threading.Event()
        self.result: R
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.result = self._decode(self._audio)
        except Exception as error:  # handed to the caller, on its own thread
            self.error = error
        finally:
            self.done.set()


Inbox = queue.SimpleQueue[Callable[[], None] | None]  # None: end the worker


def _work(inbox: Inbox) -> None:
    while (run := inbox.get()) is not None:
        run()


class Decoder:
    """Runs decodes on a worker thread, one at a time, for one caller thread. A decode that
    outlasts `timeout_s` raises DecodeTimedOut; its worker, a daemon thread, is left to finish
    it (or not) and then ends, its result read by nobody."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._inbox: Inbox | None = None
        self._thread: threading.Thread | None = None
        self._workers = 0

    def __call__(self, decode: Callable[[bytes], R], audio: bytes) -> R:
        call = _Call(decode, audio)
        self._worker().put(call.run)
        if not call.done.wait(self._timeout_s):
            self._let_go()
            log.warning(
                "speech-to-text gave no answer within %g s: decode abandoned, the next one "
                "goes to a fresh thread", self._timeout_s,
            )  # fmt: skip
            raise DecodeTimedOut(f"no answer within {self._timeout_s:g} s (abandoned)")
        if call.error is not None:
            raise call.error
        return call.result

    def close(self, timeout_s: float = 0.5) -> None:
        """The worker ends; waited for up to `timeout_s` (it is between two decodes)."""
        thread = self._thread
        self._let_go()
        if thread is not None:
            thread.join(timeout_s)

    def _let_go(self) -> None:
        """The worker ends after its current decode, if that ever ends: nobody waits for it."""
        if self._inbox is not None:
            self._inbox.put(None)
            self._inbox, self._thread = None, None

    def _worker(self) -> Inbox:
        if self._inbox is None:
            self._workers += 1
            self._inbox = queue.SimpleQueue()
            name = f"stt-decode-{self._workers}"
            self._thread = threading.Thread(
                target=_work, args=(self._inbox,), name=name, daemon=True
            )
            self._thread.start()
        return self._inbox
