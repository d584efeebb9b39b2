"""ResponsesLanguageModel (`/v1/responses`) against llama.cpp's real server (the SmolLM2 GGUF)
on 127.0.0.1, through a proxy that records what the server received."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from adapters.llama_server import LlamaServer
from adapters.openai_responses import ResponsesLanguageModel
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
) -> ResponsesLanguageModel:
    return ResponsesLanguageModel(
        base_url=proxy.url, api_key=server.api_key, max_output_tokens=48, **options
    )


def test_streams_a_real_reply_in_deltas(proxy: RecordingProxy, llama_server: LlamaServer) -> None:
    deltas = list(make_model(proxy, llama_server).stream(HISTORY, threading.Event()))

    assert len(deltas) > 1
    assert "".join(deltas).strip()
    sent = proxy.last_body
    assert sent["stream"] is True
    assert sent["max_output_tokens"] == 48


def test_sends_the_whole_history_as_typed_messages(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    assert whole_reply(make_model(proxy, llama_server), HISTORY)

    sent = proxy.last_body
    assert sent["input"] == [
        {"type": "message", "role": m.role, "content": m.content} for m in HISTORY
    ]
    assert "previous_response_id" not in sent  # llama.cpp rejects it
    assert sent["store"] is False


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
    assert "reasoning" not in proxy.last_body


def test_a_configured_reasoning_effort_is_sent_instead(
    proxy: RecordingProxy, llama_server: LlamaServer
) -> None:
    assert whole_reply(make_model(proxy, llama_server, reasoning_effort="low"), HISTORY)

    assert proxy.last_body["reasoning"] == {"effort": "low"}
    assert "chat_template_kwargs" not in proxy.last_body


def test_thinking_can_be_left_alone(proxy: RecordingProxy, llama_server: LlamaServer) -> None:
    assert whole_reply(make_model(proxy, llama_server, disable_thinking=False), HISTORY)

    assert "chat_template_kwargs" not in proxy.last_body


def test_openai_itself_gets_the_effort_but_never_template_kwargs(
    official_requests: list[dict[str, Any]],
) -> None:
    for effort in (None, "low"):
        model = ResponsesLanguageModel(api_key="sk-test", reasoning_effort=effort)
        with pytest.raises(LanguageModelError):
            whole_reply(model, HISTORY)

    plain, with_effort = (request["body"] for request in official_requests)
    assert official_requests[0]["url"] == "https://api.openai.com/v1/responses"
    assert plain["model"] == "gpt-5.4-mini"
    assert "chat_template_kwargs" not in plain
    assert "reasoning" not in plain
    assert with_effort["reasoning"] == {"effort": "low"}


class TestProviderContract(ProviderContract):
    model_class = ResponsesLanguageModel
