"""The embedded language model on a real llama.cpp server (SmolLM2 from its wheel): tokens
counted by the server, background work that gives way to the conversation, restarts after the
server dies or is stuck (not when it is only slow), threads that follow the machine's load."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

import attrs
import pytest

from adapters.llama_cpp_llm import LlamaCppLanguageModel, Server
from adapters.llama_server import LlamaServer
from adapters.openai_chat_completions import ChatCompletionsLanguageModel
from adapters.openai_common import ProviderTimeout
from domain.generation_threads import GenerationThreads, ThreadPlan, ThreadsConfig
from domain.messages import ChatMessage
from ports.language_model import ModelRestarted
from tests.adapters.llama_fixtures import late_proxy, silent_server

pytestmark = pytest.mark.slow

MAX_TOKENS = 48
QUESTION = [ChatMessage("user", "Name three colours.")]
# A summary's request: long enough that reading it takes many of the server's batches.
LONG = [
    ChatMessage("system", "Summarise the conversation."),
    ChatMessage("user", " ".join(f"User: tell me about town {i}. Assistant: Town {i} is "
                                 "old and pretty, with a river." for i in range(60))),
]  # fmt: skip


class Client(ChatCompletionsLanguageModel):
    """The real client, noting what it sends: (background, the last message's role)."""

    sent: ClassVar[list[tuple[bool, str]]] = []
    conversation_streams: ClassVar[list[int]] = [0, 0]  # now, most at once

    def stream(self, messages: Sequence[ChatMessage], cancel: Any, **options: Any) -> Iterator[str]:
        counted = not options.get("background")
        if counted:
            Client.conversation_streams[0] += 1
            Client.conversation_streams[1] = max(Client.conversation_streams)
        try:
            yield from super().stream(messages, cancel, **options)
        finally:
            Client.conversation_streams[0] -= counted

    def _create(self, messages: Sequence[ChatMessage], **options: Any) -> Any:
        background = options.get("extra_body", {}).get("id_slot") == 1
        Client.sent.append((background, messages[-1].role))
        return super()._create(messages, **options)


def connect(server: Server, timeout_s: float = 10.0) -> ChatCompletionsLanguageModel:
    return Client(
        model="smollm2", api_key=server.api_key, base_url=server.base_url,
        max_output_tokens=MAX_TOKENS, temperature=0.0, timeout_s=timeout_s, pinned_slots=True,
    )  # fmt: skip


@attrs.define
class Starts:
    """The server factory, noting each plan it was asked for."""

    plans: list[ThreadPlan] = attrs.Factory(list)

    def __call__(self, plan: ThreadPlan) -> Server:
        self.plans.append(plan)
        return LlamaServer(threads=plan.threads, niceness=plan.niceness)


class Loads:
    """A machine whose other programs use what the test says."""

    def __init__(self) -> None:
        self.now = 0.0

    def others(self, ours: Iterable[int] = ()) -> float:
        return self.now


def threads(most: int = 1, settle_s: float = 30.0) -> GenerationThreads:
    return GenerationThreads(ThreadsConfig(cores=2, most=most, settle_s=settle_s), others=0.0)


@pytest.fixture
def llm() -> Iterator[LlamaCppLanguageModel]:
    Client.sent = []
    with LlamaCppLanguageModel(Starts(), connect, threads(), max_output_tokens=MAX_TOKENS) as model:
        yield model


def reply(llm: LlamaCppLanguageModel, messages: Sequence[ChatMessage] = QUESTION) -> str:
    return "".join(llm.stream(messages, threading.Event()))


def wait_until(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_tokens_are_counted_by_the_server_and_the_budget_leaves_room_for_the_reply(
    llm: LlamaCppLanguageModel,
) -> None:
    assert llm.count_tokens("Hello") == 1
    assert llm.prompt_budget == 4096 - MAX_TOKENS - 16
    assert llm.background_yields


def test_background_work_gives_way_to_a_reply_and_goes_on_where_it_stopped(
    llm: LlamaCppLanguageModel,
) -> None:
    written: list[str] = []
    background = threading.Thread(
        target=lambda: written.extend(llm.stream(LONG, threading.Event(), background=True))
    )
    background.start()
    wait_until(lambda: Client.sent)  # the summary is being read
    time.sleep(0.2)
    started = time.monotonic()
    answer = reply(llm)
    took = time.monotonic() - started
    background.join(60)
    assert answer and took < 3.0
    assert len(written) > 4
    background_requests = [sent for sent in Client.sent if sent[0]]
    assert len(background_requests) >= 2  # paused, then sent again
    assert all(role == "user" for _, role in background_requests[:1])


def test_the_conversations_slot_serves_one_request_at_a_time(
    llm: LlamaCppLanguageModel,
) -> None:
    """Two at once corrupt each other in the slot's prompt cache: a served session was once
    answered with the end of another session's reply."""
    Client.conversation_streams[:] = [0, 0]
    replies: list[str] = []

    def converse(messages: Sequence[ChatMessage]) -> None:
        llm.prime([*messages[:-1], ChatMessage("user", "Name")])
        replies.append(reply(llm, messages))

    talks = [threading.Thread(target=converse, args=(messages,))
             for messages in (QUESTION, [ChatMessage("user", "Count to five.")])]  # fmt: skip
    for talk in talks:
        talk.start()
    for talk in talks:
        talk.join(60)
    assert len(replies) == 2 and all(replies)
    assert Client.conversation_streams == [0, 1]


def test_a_server_that_dies_is_started_again() -> None:
    starts = Starts()
    with LlamaCppLanguageModel(starts, connect, threads(), max_output_tokens=MAX_TOKENS) as llm:
        assert reply(llm)
        os.kill(llm.processes()[1], signal.SIGKILL)
        with pytest.raises(ModelRestarted, match="died"):
            reply(llm)
        assert reply(llm)  # waits for the new server, which answers
    assert len(starts.plans) == 2


def test_a_server_stopped_by_a_signal_is_started_again() -> None:
    starts = Starts()
    with LlamaCppLanguageModel(
        starts, lambda s: connect(s, timeout_s=2.0), threads(), max_output_tokens=MAX_TOKENS
    ) as llm:
        assert reply(llm)
        os.kill(llm.processes()[1], signal.SIGSTOP)  # alive, and silent
        with pytest.raises(ModelRestarted, match="stopped answering"):
            reply(llm)
        assert reply(llm)
    assert len(starts.plans) == 2


@attrs.define
class Silent:
    """A server whose /health answers and whose threads use `cpu`; its slots answer at
    `base_url` (nothing, or late)."""

    base_url: str
    cpu: Callable[[], float]
    api_key: str = "key"
    context_per_slot: int = 4096
    pid: int = os.getpid()
    running: bool = True

    def cpu_s(self) -> float | None:
        return self.cpu()

    def healthy(self, timeout_s: float = 1.0) -> bool:
        return True

    def tokens(self, text: str, timeout_s: float = 5.0) -> int:
        return 0

    def close(self) -> None:
        pass


def first_silent(silent: Silent, starts: Starts) -> Callable[[ThreadPlan], Server]:
    first = [silent]
    return lambda plan: first.pop() if first else starts(plan)


def test_a_server_that_is_stuck_is_started_again() -> None:
    with silent_server() as url:
        starts = Starts()
        with LlamaCppLanguageModel(
            first_silent(Silent(url, cpu=lambda: 0.0), starts),  # stopped: no CPU used
            lambda s: connect(s, timeout_s=1.0), threads(), max_output_tokens=MAX_TOKENS,
        ) as llm:  # fmt: skip
            with pytest.raises(ModelRestarted, match="stopped answering"):
                reply(llm)
            assert reply(llm)
        assert len(starts.plans) == 1  # the real server, after the stuck one


def test_a_server_that_is_slow_but_working_keeps_what_it_read() -> None:
    with silent_server() as url:
        starts = Starts()
        with LlamaCppLanguageModel(
            first_silent(Silent(url, cpu=time.monotonic), starts),  # a core's worth of work
            lambda s: connect(s, timeout_s=1.0), threads(), max_output_tokens=MAX_TOKENS,
        ) as llm:  # fmt: skip
            with pytest.raises(ProviderTimeout):
                reply(llm)
            with pytest.raises(ProviderTimeout):
                reply(llm)  # still the same server
        assert starts.plans == []


def test_the_warm_up_waits_for_a_server_that_is_slow() -> None:
    with LlamaServer(threads=1) as real, late_proxy(real.address, late=2, late_s=1.5) as url:
        starts = Starts()
        with LlamaCppLanguageModel(
            first_silent(Silent(url, cpu=time.monotonic, api_key=real.api_key), starts),
            lambda s: connect(s, timeout_s=1.0), threads(), max_output_tokens=MAX_TOKENS,
        ) as llm:  # fmt: skip
            llm.warm_up()  # two requests too late, the third answered
        assert starts.plans == []


def test_threads_follow_the_machines_load() -> None:
    starts, loads = Starts(), Loads()
    with LlamaCppLanguageModel(
        starts, connect, threads(most=2, settle_s=1.0), load=loads,  # type: ignore[arg-type]
        max_output_tokens=MAX_TOKENS, load_period_s=0.1,
    ) as llm:  # fmt: skip
        assert llm.plan.threads == 2
        loads.now = 1.0  # a program keeps a core busy
        wait_until(lambda: len(starts.plans) == 2)
        assert reply(llm)
        assert llm.plan.threads == 1
        loads.now = 0.0  # it ended; after a quiet second the thread comes back
        wait_until(lambda: len(starts.plans) == 3)
        llm.prime(QUESTION)  # the new server reads (on a busy test machine 2 threads crawl)
    assert [plan.threads for plan in starts.plans] == [2, 1, 2]
