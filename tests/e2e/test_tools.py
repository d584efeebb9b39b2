"""Tools end to end: the real CLI against an OpenAI-compatible server on 127.0.0.1 that answers
as a model calling a tool does (the call streamed natively in pieces, then the answer from the
result), so every step is checked exactly: the tools offered, the call read and run, the call
and its result sent back; in text mode with the README's example module, and by voice (WAV
replay) with a timer, whose reminder the agent then says on its own."""

from __future__ import annotations

import http.server
import json
import re
import wave
from pathlib import Path
from typing import Any, ClassVar

import pytest

from benchmarks.spoken_questions import SAMPLE_RATE, synthesise_questions
from tests.adapters.llama_fixtures import http_serving
from tests.e2e.offline_agent import ROOT, run_agent, run_typed

EXAMPLE = ROOT / "examples" / "my_tools.py"


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
    return f"data: {json.dumps(event)}\n\n".encode()


class ToolCallingModel(http.server.BaseHTTPRequestHandler):
    """Calls `TOOL` with `ARGUMENTS` (streamed in pieces) when asked a question; answers from
    a tool result, as `ANSWER`, when it has one."""

    TOOL, ARGUMENTS, ANSWER = "roll_dice", ('{"sides"', ": 20}"), "You rolled {}."
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
        if not body.get("stream"):  # the warm-up
            self._send(
                "application/json",
                json.dumps(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": "Hello."},
                            }
                        ],
                    }
                ).encode(),
            )
            return  # fmt: skip
        if results:
            events = [chunk({"content": self.ANSWER.format(results[-1])}), chunk({}, "stop")]
        else:
            named = {"index": 0, "id": "call_x", "type": "function",
                     "function": {"name": self.TOOL, "arguments": ""}}  # fmt: skip
            pieces = [{"index": 0, "function": {"arguments": piece}} for piece in self.ARGUMENTS]
            events = [
                chunk({"tool_calls": [named]}),
                *[chunk({"tool_calls": [piece]}) for piece in pieces],
                chunk({}, "tool_calls"),
            ]
        self._send("text/event-stream", b"".join(events) + b"data: [DONE]\n\n")

    def _send(self, kind: str, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        pass


def test_the_readmes_tool_example_is_the_module_tested_here() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"```python\n# examples/my_tools.py[^\n]*\n(.*?)```", readme, re.DOTALL)
    assert shown is not None, "the README's tool example is gone"
    code = EXAMPLE.read_text().split('"""', 2)[2]  # past the module's docstring

    def lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.strip()]

    assert lines(shown.group(1)) == lines(code)


@pytest.mark.slow
def test_the_readmes_tool_module_is_offered_called_and_answered_from(tmp_path: Path) -> None:
    ToolCallingModel.requests = []
    with http_serving(ToolCallingModel) as url:
        run = run_typed(
            tmp_path, ["Roll a twenty sided die for me."], "--llm_backend", "chat-completions",
            "--responses_api_base_url", url, "--model_name", "m",
            "--tools_module", str(EXAMPLE),
        )  # fmt: skip
    (record,) = run.records
    assert record["outcome"] == "answered"
    rolled = re.fullmatch(r"You rolled (\d+)\.", record["assistant_text"])
    assert rolled is not None and 1 <= int(rolled.group(1)) <= 20
    assert record["tool_calls"] == [
        '<tool_call>{"name": "roll_dice", "arguments": {"sides": 20}}</tool_call>'
    ]
    asked, answered = ToolCallingModel.requests[-2:]
    offered = {tool["function"]["name"]: tool["function"] for tool in asked["tools"]}
    assert set(offered) == {"roll_dice", "fahrenheit"}
    assert offered["fahrenheit"]["parameters"]["required"] == ["celsius"]
    # Asked again with the call and its result, natively, and no tools (answer from it).
    call, result = answered["messages"][-2:]
    assert call["tool_calls"][0]["function"] == {"name": "roll_dice", "arguments": '{"sides": 20}'}
    assert result == {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"],
                      "content": rolled.group(1)}  # fmt: skip
    assert "tools" not in answered
    assert "ASSISTANT: You rolled" in run.stdout


class TimerSettingModel(ToolCallingModel):
    TOOL, ARGUMENTS, ANSWER = "set_timer", ('{"duration": ', '"four seconds"}'), "The timer is set."


@pytest.mark.slow
def test_a_spoken_timer_is_set_and_its_reminder_said_when_due(tmp_path: Path) -> None:
    question, replies = tmp_path / "q.wav", tmp_path / "r.wav"
    duration = synthesise_questions(1, gap_s=14.0, path=question, lead_s=1.0)
    TimerSettingModel.requests = []
    with http_serving(TimerSettingModel) as url:
        run = run_agent(
            tmp_path, question, duration, "--output_wav", str(replies), "--tools", "timer",
            "--llm_backend", "chat-completions", "--responses_api_base_url", url,
            "--model_name", "m",
        )  # fmt: skip
    asked, reminder = run.records
    assert asked["tool_calls"] == [
        '<tool_call>{"name": "set_timer", "arguments": {"duration": "four seconds"}}</tool_call>'
    ]
    assert (asked["outcome"], asked["assistant_text"]) == ("answered", "The timer is set.")
    results = [m["content"] for body in TimerSettingModel.requests for m in body["messages"]
               if m["role"] == "tool"]  # fmt: skip
    assert results == ["The timer is set: it will go off in 4 seconds."]
    assert reminder["agent_started"] and reminder["outcome"] == "answered"
    assert reminder["assistant_text"] == "Your timer for 4 seconds is done."
    # Said on its own, about four seconds after it was set, on the replay's timeline.
    assert 4.0 <= reminder["speech_end_s"] - asked["speech_end_s"] <= 9.0
    with wave.open(str(replies)) as wav:
        pcm = memoryview(wav.readframes(wav.getnframes())).cast("h")
    start = int(reminder["speech_end_s"] * SAMPLE_RATE)
    assert max(abs(s) for s in pcm[start : start + 3 * SAMPLE_RATE]) > 1000
