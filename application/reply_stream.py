"""A reply streamed by the language model on a thread of its own, its deltas buffered.

Every reply runs this way, so that a provider that hangs holds only its own thread: the turn is
abandoned (the watchdog, the request timeout) and the next one starts on a new stream. A reply
may also be asked for during the pause that may end the turn, before the turn is known to be
over (the transcript of a pause is the whole turn if the silence goes on); it is kept until the
turn makes exactly that request, or dropped because the user spoke again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from domain.messages import ChatMessage
from ports import Cancellation, Clock, LanguageModel


class ReplyStream:
    def __init__(self, llm: LanguageModel, messages: Sequence[ChatMessage], clock: Clock) -> None:
        self.messages = list(messages)
        self._clock = clock
        self.started_at = clock.now()
        self.first_delta_at: float | None = None
        self._cancel = threading.Event()
        self._changed = threading.Condition()
        self._deltas: list[str] = []
        self._done = False
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(llm,), name="reply-stream")
        self._thread.daemon = True
        self._thread.start()

    def _run(self, llm: LanguageModel) -> None:
        try:
            for delta in llm.stream(self.messages, self._cancel):
                with self._changed:
                    if self.first_delta_at is None:
                        self.first_delta_at = self._clock.now()
                    self._deltas.append(delta)
                    self._changed.notify_all()
        except Exception as error:  # handed to whoever consumes the reply
            self._error = error
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def deltas(self, cancel: Cancellation, start: int = 0) -> Iterator[str]:
        """The reply from delta `start` on: what was buffered, then the rest as it comes; a
        provider failure is raised here, as `LanguageModel.stream` would."""
        taken = start
        while True:
            with self._changed:
                while taken == len(self._deltas) and not self._done and not cancel.is_set():
                    self._changed.wait(0.05)
                if cancel.is_set():
                    self._cancel.set()
                    return
                if taken == len(self._deltas):
                    if self._error is not None:
                        raise self._error
                    return
                delta = self._deltas[taken]
                taken += 1
            yield delta
