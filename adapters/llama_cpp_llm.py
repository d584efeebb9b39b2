"""The embedded language model: llama.cpp's server in this process (adapters/llama_server.py),
spoken to through the chat-completions adapter, and kept fit for a machine that is not idle.

- **Threads follow the machine's load** (domain/generation_threads.py): chosen at start from
  what other programs leave free, fewer as soon as a load measure (every `load_period_s`) or a
  reply decoded too slowly says so, more once the machine has been quieter for a while. llama.cpp
  takes its thread count at start, so a change restarts the server at a quiet moment (no request
  in flight), and the conversation's prompt is read again.
- **A server that dies or is stuck is restarted**: the request that found it fails with
  `ModelRestarted` (the conversation apologises and says so), the next goes to the new server.
  Stuck means silent while its threads use no CPU: a server that is only slow (other programs
  take the cores) keeps what it has read, and the late request fails as a timeout.
- **Background work gives way to the conversation.** It runs in its own slot, starts only after
  the conversation's requests have left the server alone for `give_way_s`, and is paused the
  moment one arrives: its request is closed (the server notices within one batch of the prompt,
  and keeps what the slot read), then sent again once the conversation is quiet, with what it
  wrote so far as the start of the reply, which llama.cpp continues.
- **Tokens are counted by the server**, and the context of a slot is declared once with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from adapters.machine_load import MachineLoad
from adapters.openai_chat_completions import ChatCompletionsLanguageModel
from adapters.openai_common import ProviderTimeout, ProviderUnreachable
from domain.generation_threads import GenerationThreads, ThreadPlan
from domain.messages import ChatMessage
from ports.language_model import AnyOf, Cancellation, LanguageModelError, ModelRestarted

log = logging.getLogger(__name__)

LOAD_PERIOD_S = 2.0
# After the conversation's last request, background work waits this long: while the user speaks
# a prompt is read ahead every half second, and a summary started between two of them would hold
# the next one back.
GIVE_WAY_S = 1.0
# A conversation request waits this long for a restart to end (loading the model: seconds).
RESTART_WAIT_S = 60.0
# A conversation request waits this long for the slot (another session's reply: seconds).
SLOT_WAIT_S = 60.0
RETRY_RESTART_S = 5.0
WARM_UP_TOKENS = 16
# A slow first request is asked again for this long (as long as a start may take).
WARM_UP_WAIT_S = 180.0
# Left unused at the end of a slot's context: the reply's opening, and a rounding margin.
CONTEXT_MARGIN_TOKENS = 16
POLL_S = 0.1
# A server silent for a whole timeout that used less than this share of one core meanwhile is
# stuck (a stopped or deadlocked process); a starved one still gets a tenth of a core or more.
STUCK_CPU_SHARE = 0.01
HEALTH_WAIT_S = 2.0


class Server(Protocol):
    """What this adapter needs of a running llama.cpp server (adapters/llama_server.py)."""

    base_url: str
    api_key: str
    context_per_slot: int
    pid: int

    @property
    def running(self) -> bool: ...

    def cpu_s(self) -> float | None: ...

    def healthy(self, timeout_s: float = ...) -> bool: ...

    def tokens(self, text: str, timeout_s: float = ...) -> int: ...

    def close(self) -> None: ...


class LlamaCppLanguageModel:
    """`start(plan)` starts a server with the plan's threads and niceness; `connect(server)` makes
    the chat-completions client that speaks to it (pinned slots). `threads` decides the plan from
    `load` (None: the load is never measured) and the replies' pace. Call `close` when done."""

    def __init__(
        self,
        start: Callable[[ThreadPlan], Server],
        connect: Callable[[Server], ChatCompletionsLanguageModel],
        threads: GenerationThreads,
        *,
        load: MachineLoad | None = None,
        max_output_tokens: int,
        warm_up_prompt: Sequence[ChatMessage] = (ChatMessage("user", "Hi"),),
        give_way_s: float = GIVE_WAY_S,
        load_period_s: float = LOAD_PERIOD_S,
        warm_up_wait_s: float = WARM_UP_WAIT_S,
    ) -> None:
        self._start, self._connect = start, connect
        self._threads, self._load = threads, load
        self._max_output_tokens = max_output_tokens
        self._warm_up_prompt = list(warm_up_prompt)
        self._give_way_s, self._load_period_s = give_way_s, load_period_s
        self._warm_up_wait_s = warm_up_wait_s
        self._slot = threading.Lock()  # the conversation's slot, taken by one request
        self._changed = threading.Condition()  # guards everything below
        self._server = start(threads.plan)
        self._client = connect(self._server)
        self._in_flight = 0  # the conversation's requests on the server now
        self._quiet_since = time.monotonic()
        self._pauses: set[threading.Event] = set()  # one per background request in flight
        self._priming: threading.Event | None = None  # cancels the prime in flight
        self._last_primed: list[ChatMessage] | None = None
        self._restart_to: tuple[ThreadPlan, str, bool] | None = None  # plan, why, urgent
        self._restarting = False
        self._broken: str | None = None  # why the last restart failed
        self._closed = threading.Event()
        self._threads_alive = [
            threading.Thread(target=self._keep_up, name="llama-restarts", daemon=True),
            threading.Thread(target=self._watch_load, name="llama-load", daemon=True),
        ]
        for thread in self._threads_alive:
            thread.start()

    # -- the port ----------------------------------------------------------------------------

    @property
    def prompt_budget(self) -> int:
        return self._server.context_per_slot - self._max_output_tokens - CONTEXT_MARGIN_TOKENS

    @property
    def background_yields(self) -> bool:
        return True

    def processes(self) -> tuple[int, ...]:
        """The processes that are the agent's: this one and its server."""
        with self._changed:
            return (os.getpid(), self._server.pid)

    @property
    def plan(self) -> ThreadPlan:
        with self._changed:
            return self._threads.plan

    def count_tokens(self, text: str) -> int:
        with self._changed:
            server = self._server
        try:
            return server.tokens(text)
        except (OSError, ValueError, KeyError) as error:
            raise LanguageModelError(f"llama.cpp could not count tokens: {error}") from None

    def warm_up(self) -> None:
        """The first request, streamed: on a busy machine reading the system prompt may take
        seconds, and the server's progress through it shows it is not stuck. A server that is
        slow, not stuck, is asked again (it reads on from where it was) for `warm_up_wait_s`."""
        deadline = time.monotonic() + self._warm_up_wait_s
        while True:
            try:
                for _ in self._conversation(
                    self._warm_up_prompt, threading.Event(), max_output_tokens=WARM_UP_TOKENS
                ):
                    pass
                return
            except ProviderTimeout:
                if time.monotonic() > deadline:
                    raise
                log.info("the llama.cpp server is slow to answer its first request: waiting")

    def stream(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        background: bool = False,
        offer_tools: bool = True,
    ) -> Iterator[str]:
        if background:
            return self._background(messages, cancel)
        return self._conversation(messages, cancel, offer_tools=offer_tools)

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Read ahead in the conversation's slot; cancelled when a reply is asked for, which
        then finds what was read so far in the slot."""
        cancel = threading.Event()
        with self._changed:
            self._priming, self._last_primed = cancel, list(messages)
        for _ in self._conversation(messages, cancel, max_output_tokens=1, priming=True):
            pass

    def close(self) -> None:
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
            server = self._server
        for thread in self._threads_alive:
            thread.join(timeout=1.0)
        server.close()

    def __enter__(self) -> LlamaCppLanguageModel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the conversation's requests ---------------------------------------------------------

    def _conversation(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        max_output_tokens: int | None = None,
        priming: bool = False,
        offer_tools: bool = True,
    ) -> Iterator[str]:
        with self._in_flight_request(priming) as (server, client), self._slot_taken():
            if cancel.is_set():
                return  # cancelled while it waited for the slot
            times: list[float] = []
            heard = (time.monotonic(), server.cpu_s())  # the server's last sign of life
            try:
                for delta in client.stream(
                    messages, cancel, max_output_tokens=max_output_tokens, offer_tools=offer_tools
                ):
                    times.append(time.monotonic())
                    heard = (times[-1], server.cpu_s())
                    yield delta
            except (ProviderTimeout, ProviderUnreachable) as error:
                self._diagnose(error, server, heard)
                raise
        if not priming:
            self._paced(times)

    @contextmanager
    def _slot_taken(self) -> Iterator[None]:
        """The conversation's slot serves one request at a time: two at once (a reply and a
        read-ahead, or the served sessions' replies) corrupt each other in its prompt cache."""
        if not self._slot.acquire(timeout=SLOT_WAIT_S):
            raise LanguageModelError(f"the model was busy for {SLOT_WAIT_S:g} s")
        try:
            yield
        finally:
            self._slot.release()

    @contextmanager
    def _in_flight_request(
        self, priming: bool
    ) -> Iterator[tuple[Server, ChatCompletionsLanguageModel]]:
        with self._changed:
            deadline = time.monotonic() + RESTART_WAIT_S
            while self._restarting and not self._closed.is_set():
                if time.monotonic() > deadline:
                    raise ModelRestarted("the llama.cpp server is still restarting")
                self._changed.wait(POLL_S)
            if self._broken is not None:
                raise ModelRestarted(f"the llama.cpp server could not restart: {self._broken}")
            self._in_flight += 1
            for pause in self._pauses:
                pause.set()
            if not priming and self._priming is not None:
                self._priming.set()  # the reply reads on from where the prime stopped
            server, client = self._server, self._client
        try:
            yield server, client
        finally:
            with self._changed:
                self._in_flight -= 1
                self._quiet_since = time.monotonic()
                self._changed.notify_all()

    def _diagnose(
        self, error: LanguageModelError, server: Server, heard: tuple[float, float | None]
    ) -> None:
        """A server whose process ended has died; one that sent nothing for the whole timeout
        (progress included) while its threads used next to no CPU, or that cannot be reached and
        does not answer /health, is stuck. Either is restarted, and this request fails with
        `ModelRestarted`. A server that is only slow is kept: the request fails as it is. A
        server already replaced is not restarted again: its successor is starting."""
        with self._changed:
            if server is not self._server:
                raise ModelRestarted("the llama.cpp server was being restarted") from None
        if not server.running:
            why = "died"
        elif isinstance(error, ProviderUnreachable):
            if server.healthy(timeout_s=HEALTH_WAIT_S):
                return  # a connection lost on the way: the server itself is fine
            why = "stopped answering"
        elif self._working(server, heard):
            log.warning("the llama.cpp server is slow, not stuck (is the machine busy?): %s", error)
            return
        else:
            why = "stopped answering"
        self._restart(self.plan, f"the llama.cpp server {why} ({error})", urgent=True)
        raise ModelRestarted(f"the llama.cpp server {why}; it is being restarted") from None

    @staticmethod
    def _working(server: Server, heard: tuple[float, float | None]) -> bool:
        """Whether the server's threads used CPU since it was last heard from (unknown: no)."""
        since, cpu_then = heard
        cpu_now = server.cpu_s()
        if cpu_then is None or cpu_now is None:
            return False
        return cpu_now - cpu_then > STUCK_CPU_SHARE * (time.monotonic() - since)

    def _paced(self, times: list[float]) -> None:
        if len(times) < 2 or times[-1] <= times[0]:
            return
        rate = (len(times) - 1) / (times[-1] - times[0])
        with self._changed:
            plan = self._threads.pace(len(times), rate)
        if plan is not None:
            self._restart(plan, f"replies came at {rate:.1f} tokens/s", urgent=False)

    # -- background work ---------------------------------------------------------------------

    def _background(self, messages: Sequence[ChatMessage], cancel: Cancellation) -> Iterator[str]:
        written, tokens = "", 0
        while tokens < self._max_output_tokens:
            pause = self._quiet_turn(cancel)
            if pause is None:
                return  # cancelled, or the adapter closed
            with self._changed:
                client = self._client
            request = list(messages)
            if written:  # llama.cpp continues a reply that ends the request
                request.append(ChatMessage("assistant", written))
            try:
                for delta in client.stream(
                    request,
                    AnyOf(cancel, pause),
                    background=True,
                    max_output_tokens=self._max_output_tokens - tokens,
                ):
                    written, tokens = written + delta, tokens + 1
                    yield delta
            except LanguageModelError:
                if not pause.is_set():  # not cut by a pause or a restart
                    raise
            finally:
                with self._changed:
                    self._pauses.discard(pause)
            if not pause.is_set():
                return  # the whole reply, or cancelled

    def _quiet_turn(self, cancel: Cancellation) -> threading.Event | None:
        """Waits until the conversation has left the server alone for `give_way_s`; returns the
        event that pauses the background request about to be sent."""
        with self._changed:
            while not (cancel.is_set() or self._closed.is_set()):
                quiet_for = time.monotonic() - self._quiet_since
                if self._in_flight or self._restarting or quiet_for < self._give_way_s:
                    self._changed.wait(POLL_S)
                    continue
                pause = threading.Event()
                self._pauses.add(pause)
                return pause
        return None

    # -- restarts ----------------------------------------------------------------------------

    def _restart(self, plan: ThreadPlan, why: str, *, urgent: bool) -> None:
        """Urgent (the server is gone): requests wait for the new one from now on. Otherwise
        the restart waits for a moment without requests in flight."""
        with self._changed:
            if self._restart_to is None or urgent:
                self._restart_to = (plan, why, urgent)
            if urgent:
                self._restarting = True
            self._changed.notify_all()

    def _keep_up(self) -> None:
        while not self._closed.is_set():
            with self._changed:
                self._changed.wait_for(
                    lambda: self._restart_to is not None or self._closed.is_set()
                )
                if self._restart_to is None:
                    return
                plan, why, urgent = self._restart_to
                self._restart_to = None
                if not urgent:  # a moment with no request in flight: none is cut
                    self._changed.wait_for(lambda: not self._in_flight or self._closed.is_set())
                self._restarting = True
                for pause in self._pauses:
                    pause.set()
                old = self._server
            log.warning(
                "restarting the llama.cpp server on %d thread(s) at niceness %d: %s",
                plan.threads, plan.niceness, why,
            )  # fmt: skip
            self._replace(old, plan, prime=not urgent)

    def _replace(self, old: Server, plan: ThreadPlan, *, prime: bool) -> None:
        """`prime`: the new server reads the conversation's last prompt at once; not after a
        crash or a hang, which that prompt may be what caused."""
        old.close()
        while not self._closed.is_set():
            try:
                server = self._start(plan)
                client = self._connect(server)
            except Exception as error:  # a start that fails is tried again; requests are told
                with self._changed:
                    self._broken = str(error)
                    self._restarting = False
                    self._changed.notify_all()
                log.error("the llama.cpp server could not restart: %s", error)
                if self._closed.wait(RETRY_RESTART_S):
                    return
                with self._changed:
                    self._restarting = True
                continue
            with self._changed:
                if self._closed.is_set():  # closed while it started: nobody will close it
                    server.close()
                    return
                self._server, self._client = server, client
                self._broken, self._restarting = None, False
                primed = self._last_primed if prime else None
                self._changed.notify_all()
            if primed is not None:
                self._prime_again(primed)
            return

    def _prime_again(self, messages: list[ChatMessage]) -> None:
        """The new server has read nothing: the conversation's prompt, read again at once."""
        try:
            self.prime(messages)
        except LanguageModelError as error:
            log.debug("priming the restarted server failed: %s", error)

    # -- the machine's load ------------------------------------------------------------------

    def _watch_load(self) -> None:
        if self._load is None:
            return
        self._load.others(self.processes())  # the first measure starts here
        while not self._closed.wait(self._load_period_s):
            others = self._load.others(self.processes())
            with self._changed:
                plan = self._threads.load(time.monotonic(), others)
            if plan is not None:
                self._restart(plan, f"other programs use {others or 0:.1f} cores", urgent=False)
