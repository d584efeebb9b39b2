"""A reply streamed by the language model on a thread of its own, its deltas buffered.

Every reply runs this way, so that a provider that hangs holds only its own thread: the turn is
abandoned (the watchdog, the request timeout) and the next one starts on a new stream. A reply
may also be asked for during the pause that may end the turn, before the turn is known to be
over (the transcript of a pause is the whole turn if the silence goes on); it is kept until the
turn makes exactly that request, or dropped because the user spoke again.

With tools, a reply that is a call is never handed on: the call is run, its result goes back
to the model with the call, and the reply is what the model says then. A result may lead to
another call, up to the runner's `max_calls`; after that the model is asked without tools, and
if it still writes a call (small models repeat theirs), the last result is the answer, said as
soon as the call is sure rather than after the model has written it out. A reply
that says nothing when offered tools (the 1.5B's empty list of tools) is asked again without
them. A reply asked for ahead of its turn runs no tool until the turn claims it: a tool may act
on the world, and the user may not have finished. A slow tool has the reply say the runner's
notice ("One moment.") while it waits: the words go before the answer, as they were spoken.

A reply the agent knows in advance (a due reminder) streams the same way from `Said`, so that it
is spoken, interrupted and failed like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

from application.tool_calls import ERROR_PREFIX, ToolRunner
from domain.messages import ChatMessage
from domain.tools import CallWatch, ToolCall, spoken_result
from ports import Cancellation, Clock, LanguageModelError
from ports.language_model import AnyOf


class Streaming(Protocol):
    """What a reply needs of the language model."""

    def stream(
        self, messages: Sequence[ChatMessage], cancel: Cancellation, *, offer_tools: bool = True
    ) -> Iterator[str]: ...


class Said:
    """A reply known in advance, streamed as the model's would be."""

    def __init__(self, text: str) -> None:
        self._text = text

    def stream(
        self, messages: Sequence[ChatMessage], cancel: Cancellation, *, offer_tools: bool = True
    ) -> Iterator[str]:
        yield self._text


class ReplyStream:
    def __init__(
        self,
        llm: Streaming,
        messages: Sequence[ChatMessage],
        clock: Clock,
        tools: ToolRunner | None = None,
        *,
        claimed: bool = True,
    ) -> None:
        """`claimed` False: asked ahead of its turn; its tools wait for `claim`."""
        self.messages = list(messages)
        self.calls: list[tuple[ToolCall, str]] = []  # each call run, with its result
        self._tools = tools
        self._claimed = threading.Event()
        if claimed:
            self._claimed.set()
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

    def _run(self, llm: Streaming) -> None:
        messages = self.messages
        try:
            offer = True
            while True:
                watch, said = CallWatch(offered=self._tools is not None), False
                calls_again = threading.Event()  # answering from a result, it calls instead
                for delta in llm.stream(
                    messages, AnyOf(self._cancel, calls_again), offer_tools=offer
                ):
                    text = watch.feed(delta)
                    said = said or bool(text.strip())
                    self._put(text)
                    if not offer and self.calls and watch.calling:
                        calls_again.set()
                if calls_again.is_set():
                    self._put(self._last_result())
                    return
                call, held = watch.finish()
                if call is None:
                    if offer and self._tools is not None and not (said or held.strip()):
                        offer = False  # it said nothing, offered tools: asked again without
                        continue
                    self._put(held)
                    return
                if self._tools is None or not self._may_act():
                    return
                if not offer:
                    self._put(self._last_result())
                    return
                result = self._tools.run(call, say=self._put)
                self.calls.append((call, result))
                messages = [*messages, ChatMessage("assistant", call.written),
                            ChatMessage("tool", result)]  # fmt: skip
                offer = len(self.calls) < self._tools.max_calls
        except Exception as error:  # handed to whoever consumes the reply
            self._error = error
        finally:
            with self._changed:
                self._done = True
                self._changed.notify_all()

    def claim(self) -> None:
        """The turn took this reply: its tools may run."""
        self._claimed.set()

    def cancel(self) -> None:
        self._cancel.set()

    def _may_act(self) -> bool:
        """Waits for the claim; False once cancelled."""
        while not self._claimed.wait(0.05):
            if self._cancel.is_set():
                return False
        return not self._cancel.is_set()

    def _last_result(self) -> str:
        """Said as the answer when the model, asked to answer from it, called again."""
        result = self.calls[-1][1]
        if result.startswith(ERROR_PREFIX):
            raise LanguageModelError(f"the model answered a failed call with a call: {result}")
        return spoken_result(result)

    def _put(self, text: str) -> None:
        if not text or self._cancel.is_set():
            return
        with self._changed:
            if self.first_delta_at is None:
                self.first_delta_at = self._clock.now()
            self._deltas.append(text)
            self._changed.notify_all()

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
