"""ChatCompletionsLanguageModel against llama.cpp's real server (the SmolLM2 GGUF) on 127.0.0.1,
through a proxy that records what the server received."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import pytest

from adapters.llama_server import LlamaServer
from adapters.openai_chat_completions import ChatCompletionsLanguageModel
from domain.messages import ChatMessage
from ports.language_model import LanguageModelError
from tests.adapters.llama_fixtures import (
    HISTORY,
    ProviderContract,
    RecordingProxy,
    llama_server,
    official_requests,
    proxy,
)
from tests.replies import whole_reply

pytestmark = pytest.mark.slow
__all__ = ["llama_server", "official_requests", "proxy"]  # fixtures, used by name


def make_model(
    proxy: RecordingProxy, server: LlamaServer, **options: Any
) -> ChatCompletionsLanguageModel:
    return ChatCompletionsLanguageModel(
        base_url=proxy.url, api_key=server.api_key, max_output_tokens=48, **options
    )


def test_streams_a_real_reply_in_deltas(proxy: RecordingProxy, llama_server: LlamaServer) -> None:
    deltas = list(make_model(proxy, llama_server).stream(HISTORY, threading.Event()))

    assert len(deltas) > 1
    assert "".join(deltas).strip()
    sent = proxy.last_body
    assert sent["stream"] is True
    assert sent["messages"] == [{"role": m.role, "content": m.content} for m in HISTORY]
    assert sent["max_completion_tokens"] == 48


def test_without_streaming_the_reply_comes_as_one_delta(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    deltas = list(make_model(proxy, llama_server, stream=False).stream(HISTORY, threading.Event()))

    assert len(deltas) == 1
    assert deltas[0].strip()
    assert proxy.last_body.get("stream", False) is False


def test_complete_returns_the_whole_reply(proxy: RecordingProxy, llama_server: LlamaServer) -> None:
    assert whole_reply(make_model(proxy, llama_server), HISTORY).strip()


def test_a_local_server_is_asked_to_skip_thinking(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    assert whole_reply(make_model(proxy, llama_server), HISTORY)

    assert proxy.last_body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "reasoning_effort" not in proxy.last_body


def test_a_configured_reasoning_effort_is_sent_instead(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    assert whole_reply(make_model(proxy, llama_server, reasoning_effort="low"), HISTORY)

    assert proxy.last_body["reasoning_effort"] == "low"
    assert "chat_template_kwargs" not in proxy.last_body


def test_thinking_can_be_left_alone(proxy: RecordingProxy, llama_server: LlamaServer) -> None:
    assert whole_reply(make_model(proxy, llama_server, disable_thinking=False), HISTORY)

    assert "chat_template_kwargs" not in proxy.last_body


def test_openai_itself_gets_the_effort_but_never_template_kwargs(
    official_requests: list[dict[str, Any]],
) -> None:
    for effort in (None, "low"):
        model = ChatCompletionsLanguageModel(api_key="sk-test", reasoning_effort=effort)
        with pytest.raises(LanguageModelError):
            whole_reply(model, HISTORY)

    plain, with_effort = (request["body"] for request in official_requests)
    assert official_requests[0]["url"] == "https://api.openai.com/v1/chat/completions"
    assert plain["model"] == "gpt-5.4-mini"
    assert "chat_template_kwargs" not in plain
    assert "reasoning_effort" not in plain
    assert with_effort["reasoning_effort"] == "low"


class TestProviderContract(ProviderContract):
    model_class = ChatCompletionsLanguageModel


def test_top_k_and_the_repeat_penalty_reach_llama_cpp_only_when_given(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    assert whole_reply(make_model(proxy, llama_server), HISTORY)
    assert "top_k" not in proxy.last_body and "repeat_penalty" not in proxy.last_body

    model = make_model(proxy, llama_server, temperature=0.0, top_k=20, repeat_penalty=1.1)
    assert whole_reply(model, HISTORY).strip()
    assert (proxy.last_body["top_k"], proxy.last_body["repeat_penalty"]) == (20, 1.1)
    # Beside the thinking switch, not instead of it.
    assert proxy.last_body["chat_template_kwargs"] == {"enable_thinking": False}


def server_timings(
    server: LlamaServer, messages: list[ChatMessage], slot: int | None = None
) -> dict[str, Any]:
    """llama.cpp's own account of a request (sent to `slot` when given): `prompt_n` prompt
    tokens it read, `cache_n` those it did not have to."""
    request_body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in messages], "max_tokens": 1
    }  # fmt: skip
    if slot is not None:
        request_body["id_slot"] = slot
    body = json.dumps(request_body).encode()
    request = urllib.request.Request(
        f"{server.base_url}/chat/completions", data=body,
        headers={"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"},
    )  # fmt: skip
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        timings: dict[str, Any] = json.load(response)["timings"]
    return timings


def test_warming_up_with_the_system_prompt_leaves_it_read_for_the_first_reply(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    # A prompt no other test sends: only this warm-up can have left it in the server's cache.
    system = ChatMessage("system", "You answer questions about the weather in Lisbon, briefly.")
    model = make_model(proxy, llama_server, warm_up_prompt=[system, ChatMessage("user", "Hi")])

    model.warm_up()

    assert proxy.last_body["messages"][0] == {"role": "system", "content": system.content}
    first = server_timings(llama_server, [system, ChatMessage("user", "Will it rain today?")])
    assert first["cache_n"] > 10  # the system prompt's tokens, read once at warm-up


TRAINS = ChatMessage("system", "You tell people about trains in Portugal, in one sentence.")
WORDS_SO_FAR = "Which train goes from Lisbon to Porto, and how long"


def test_primed_words_are_not_read_again_by_the_reply(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    model = make_model(proxy, llama_server, pinned_slots=True)
    question = ChatMessage("user", WORDS_SO_FAR + " does it take?")
    # The same question under a system prompt never sent before: what a reply reads unprimed.
    unprimed = server_timings(
        llama_server, [ChatMessage("system", "You know Portuguese trains."), question], slot=0
    )

    model.prime([TRAINS, ChatMessage("user", WORDS_SO_FAR)])

    assert proxy.last_body["id_slot"] == 0
    assert proxy.last_body["max_completion_tokens"] == 1
    primed = server_timings(llama_server, [TRAINS, question], slot=0)
    assert primed["prompt_n"] * 3 <= unprimed["prompt_n"]  # only "does it take?" and the tail


def test_background_work_goes_to_its_own_slot_and_leaves_the_conversation_read(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    model = make_model(proxy, llama_server, pinned_slots=True)
    conversation = [TRAINS, ChatMessage("user", "And the one to Faro?")]
    model.prime(conversation)

    summary = [ChatMessage("user", "Summarise: we talked about trains.")]
    assert "".join(model.stream(summary, threading.Event(), background=True))
    assert proxy.last_body["id_slot"] == 1
    again = server_timings(llama_server, conversation, slot=0)
    assert again["prompt_n"] <= 1  # all of it still in the conversation's slot
    assert "".join(model.stream(conversation, threading.Event()))
    assert proxy.last_body["id_slot"] == 0


def test_without_pinned_slots_priming_sends_nothing(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    sent = len(proxy.requests)
    make_model(proxy, llama_server).prime([TRAINS, ChatMessage("user", WORDS_SO_FAR)])
    assert len(proxy.requests) == sent
