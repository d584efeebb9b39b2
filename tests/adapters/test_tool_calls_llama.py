"""Tool calls through both OpenAI-compatible adapters against llama.cpp's real server with the
default model (Qwen2.5-Coder-0.5B, whose chat template takes tools): the tools go out in the
API's own form, the model's call comes back in the canonical form, and the call with its result
goes back natively, so the model answers from it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.builtin_tools import calculate, current_time
from adapters.llama_server import LlamaServer
from adapters.model_files import model_path
from adapters.openai_chat_completions import ChatCompletionsLanguageModel
from adapters.openai_common import OpenAICompatibleModel
from adapters.openai_responses import ResponsesLanguageModel
from adapters.python_tools import PythonToolbox
from application.reminders import Reminders
from composition.config import resolve
from composition.settings import first_request
from domain.arithmetic import evaluate
from domain.messages import ChatMessage
from domain.timers import SET_TIMER
from domain.tools import parse_call
from tests.adapters.llama_fixtures import RecordingProxy, recording_proxy
from tests.fakes import FakeClock

pytestmark = pytest.mark.slow
TOOLBOX = PythonToolbox([calculate, current_time])
QUESTION = "What is 144 divided by 12?"  # digits: the 0.5B calls the calculator for these


@pytest.fixture(scope="module")
def qwen() -> Iterator[LlamaServer]:
    with LlamaServer(model_path("qwen2.5-coder-0.5b").path, threads=2) as server:
        yield server


@pytest.fixture
def proxy(qwen: LlamaServer) -> Iterator[RecordingProxy]:
    with recording_proxy(qwen.address) as proxy:
        yield proxy


@pytest.mark.parametrize("adapter", [ChatCompletionsLanguageModel, ResponsesLanguageModel])
def test_a_call_comes_back_canonical_and_its_result_goes_back_natively(
    proxy: RecordingProxy, qwen: LlamaServer, adapter: type[OpenAICompatibleModel]
) -> None:
    llm = adapter(base_url=proxy.url, api_key=qwen.api_key, temperature=0.0,
                  max_output_tokens=64, tools=TOOLBOX.specs)  # fmt: skip
    system = first_request(resolve(["--tools", "time,calculator"], environ={}))[0]
    request = [system, ChatMessage("user", QUESTION)]
    call = parse_call("".join(llm.stream(request, threading.Event())))
    assert call is not None and call.name == "calculate"
    assert evaluate(str(call.arguments["expression"])) == 12
    offered: Any = proxy.last_body["tools"]
    assert {tool.get("name") or tool["function"]["name"] for tool in offered} == {
        "calculate", "current_time"
    }  # fmt: skip

    answered = [*request, ChatMessage("assistant", call.written),
                ChatMessage("tool", TOOLBOX.run(call))]  # fmt: skip
    answer = "".join(llm.stream(answered, threading.Event(), offer_tools=False))
    assert "12" in answer or "twelve" in answer.lower()
    sent = proxy.last_body
    assert "tools" not in sent
    items = sent.get("messages") or sent["input"]
    kinds = [item.get("role") or item.get("type") for item in items[-2:]]
    assert kinds in (["assistant", "tool"], ["function_call", "function_call_output"])


def test_the_default_model_sets_the_timer_it_is_asked_for(
    proxy: RecordingProxy, qwen: LlamaServer
) -> None:
    """With `--tools timer` alone: the call, read and run by the conversation's own timers."""
    llm = ChatCompletionsLanguageModel(base_url=proxy.url, api_key=qwen.api_key,
                                       temperature=0.0, max_output_tokens=64,
                                       tools=[SET_TIMER])  # fmt: skip
    system = first_request(resolve(["--tools", "timer"], environ={}))[0]
    asked = [system, ChatMessage("user", "Remind me in two minutes to check the oven.")]
    call = parse_call("".join(llm.stream(asked, threading.Event())))
    assert call is not None and call.name == "set_timer"
    reminders = Reminders(FakeClock())
    assert reminders.run(call) == "The timer is set: it will go off in 2 minutes."
    (timer,) = reminders.pending
    assert "oven" in timer.reminder.lower()
