"""Tool calls through the real containers and the real conversation, on fakes: a reply that is
a call is run and answered from its result; a tool that fails, hangs or is given bad arguments
becomes an error the model answers from; a reply asked for ahead of its turn runs no tool."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from application.reply_stream import ReplyStream
from application.tool_calls import Toolboxes, ToolRunner
from application.typing import converse_by_text
from domain.messages import ChatMessage
from domain.tools import ToolCall, ToolSpec
from ports.tools import ToolError
from tests.application.harness import Harness, make_harness
from tests.fakes import FakeClock, FakeLanguageModel

CALL = '{"name": "calculate", "arguments": {"expression": "17 * 23"}}'
TAGGED = f"<tool_call>{CALL}</tool_call>"


class FakeToolbox:
    """`calculate` answers from `results` in order: a string, an exception, or a wait on an
    event that never comes (a tool that hangs)."""

    specs: Sequence[ToolSpec] = (ToolSpec("calculate", "Arithmetic.", {
        "type": "object", "properties": {"expression": {"type": "string"}},
        "required": ["expression"]}),)  # fmt: skip

    def __init__(self, *results: str | Exception | threading.Event) -> None:
        self._results = list(results)
        self.calls: list[ToolCall] = []

    def run(self, call: ToolCall) -> str:
        self.calls.append(call)
        result = self._results.pop(0)
        if isinstance(result, Exception):
            raise result
        if isinstance(result, threading.Event):
            result.wait()
            return "too late"
        return result


def ask(replies: list[object], toolbox: FakeToolbox, *argv: str) -> Harness:
    done = threading.Event()
    harness = make_harness([done.is_set], {}, replies, argv=["--text", *argv], tools=toolbox)
    conversation = harness.conversation
    conversation.start()
    try:
        converse_by_text(conversation, ["What is seventeen times twenty three?"])
    finally:
        done.set()
        conversation.stop()
    return harness


def test_a_call_is_run_and_the_reply_answers_from_its_result() -> None:
    toolbox = FakeToolbox("391")
    harness = ask([CALL, "It is 391."], toolbox)
    assert toolbox.calls == [ToolCall("calculate", {"expression": "17 * 23"})]
    # The model is asked again with its call and the result, in the canonical form.
    assert harness.llm.requests[1][-2:] == [
        ChatMessage("assistant", TAGGED), ChatMessage("tool", "391")
    ]  # fmt: skip
    # Only the answer is said; the history keeps the question, the call and its result (the
    # backend reads them, and the model sees it called), and the answer.
    assert harness.spoken_replies == ["It is 391."]
    assert harness.conversation.memory.history[-4:] == [
        ChatMessage("user", "What is seventeen times twenty three?"),
        ChatMessage("assistant", TAGGED), ChatMessage("tool", "391"),
        ChatMessage("assistant", "It is 391."),
    ]  # fmt: skip
    (record,) = harness.metrics.records
    assert (record.outcome, record.assistant_text) == ("answered", "It is 391.")
    assert record.tool_calls == [TAGGED]


def test_a_tool_that_fails_is_an_error_for_the_model_and_the_turn_goes_on() -> None:
    harness = ask([TAGGED, "Sorry, I could not compute that."],
                  FakeToolbox(ToolError("calculate failed: boom")))  # fmt: skip
    assert harness.llm.requests[1][-1] == ChatMessage("tool", "error: calculate failed: boom")
    assert harness.metrics.records[0].outcome == "answered"


def test_a_tool_that_hangs_is_given_up_on_and_the_turn_goes_on() -> None:
    never = threading.Event()
    harness = ask([CALL, "The calculator did not answer."], FakeToolbox(never),
                  "--tool_timeout_s", "0.2")  # fmt: skip
    never.set()
    assert harness.llm.requests[1][-1] == ChatMessage(
        "tool", "error: calculate did not answer within 0.2 s"
    )
    assert harness.metrics.records[0].outcome == "answered"


def test_after_a_result_the_model_is_asked_to_answer_without_tools() -> None:
    harness = ask([CALL, "It is 391."], FakeToolbox("391"))
    assert harness.llm.offered_tools[-2:] == [True, False]


def test_a_model_that_calls_again_when_asked_to_answer_is_answered_by_the_result() -> None:
    """The 0.5B repeats its call after the result: the result is the answer, as soon as the
    repeated call is sure (the model is not left to write it out)."""
    toolbox = FakeToolbox("391")
    harness = ask([CALL, CALL], toolbox)
    assert len(toolbox.calls) == 1
    assert harness.spoken_replies == ["391"]
    assert harness.metrics.records[0].outcome == "answered"
    assert harness.llm.cancelled == [1]  # the repeated call, after its first words


def test_a_failed_call_repeated_ends_in_the_apology() -> None:
    harness = ask([CALL, CALL], FakeToolbox(ToolError("calculate failed: boom")))
    (record,) = harness.metrics.records
    assert record.outcome == "failed" and "boom" in (record.error or "")
    assert "boom" not in " ".join(harness.spoken_replies)  # an error is never said aloud


def test_chained_calls_go_up_to_the_bound() -> None:
    toolbox = FakeToolbox("4", "16")
    harness = ask([CALL, CALL, CALL, "It is 16."], toolbox, "--max_tool_calls", "2")
    assert len(toolbox.calls) == 2  # the third call, asked without tools, is answered by "16"
    assert harness.spoken_replies == ["16"]
    assert harness.llm.offered_tools[-3:] == [True, True, False]


def test_a_reply_asked_ahead_runs_no_tool_until_its_turn_claims_it() -> None:
    toolbox = FakeToolbox("391")
    runner = ToolRunner(toolbox, timeout_s=1.0, max_calls=1)
    llm = FakeLanguageModel([CALL, "It is 391."])
    request = [ChatMessage("user", "What is 17 times 23?")]
    dropped = ReplyStream(llm, request, FakeClock(), runner, claimed=False)
    dropped.cancel()
    dropped.join(2.0)
    assert toolbox.calls == []  # dropped before its turn: the tool never ran
    ahead = ReplyStream(FakeLanguageModel([CALL, "It is 391."]), request, FakeClock(), runner,
                        claimed=False)  # fmt: skip
    ahead.claim()
    assert "".join(ahead.deltas(threading.Event())) == "It is 391."
    assert toolbox.calls == [ToolCall("calculate", {"expression": "17 * 23"})]


def test_a_slow_tool_has_the_agent_say_one_moment_then_the_answer() -> None:
    class SlowToolbox(FakeToolbox):
        def run(self, call: ToolCall) -> str:
            self.calls.append(call)
            threading.Event().wait(1.0)
            return "391"

    harness = ask([CALL, "It is 391."], SlowToolbox(), "--tool_notice_s", "0.1")
    assert harness.spoken_replies == ["One moment.", "It is 391."]
    (record,) = harness.metrics.records
    assert record.assistant_text == "One moment. It is 391."  # as it was said


def test_a_quick_tool_says_nothing_before_its_answer() -> None:
    harness = ask([CALL, "It is 391."], FakeToolbox("391"), "--tool_notice_s", "1")
    assert harness.spoken_replies == ["It is 391."]


def test_the_notice_is_said_once_per_slow_call_and_never_when_off() -> None:
    class Sleepy(FakeToolbox):
        def run(self, call: ToolCall) -> str:
            threading.Event().wait(0.3)
            return "391"

    said: list[str] = []
    runner = ToolRunner(Sleepy(), timeout_s=2.0, max_calls=1, notice="Hm.", notice_after_s=0.05)
    assert runner.run(ToolCall("calculate", {"expression": "1"}), said.append) == "391"
    assert said == ["Hm. "]
    quiet = ToolRunner(Sleepy(), timeout_s=2.0, max_calls=1, notice_after_s=None)
    assert quiet.run(ToolCall("calculate", {"expression": "1"}), said.append) == "391"
    assert said == ["Hm. "]


def test_toolboxes_send_each_call_to_the_tool_that_has_it() -> None:
    class Clock:
        specs: Sequence[ToolSpec] = (ToolSpec("now", "The time.", {"type": "object"}),)

        def run(self, call: ToolCall) -> str:
            return "noon"

    joined = Toolboxes([FakeToolbox("391"), Clock()])
    assert [spec.name for spec in joined.specs] == ["calculate", "now"]
    assert joined.run(ToolCall("now", {})) == "noon"
    assert joined.run(ToolCall("calculate", {"expression": "1"})) == "391"
    with pytest.raises(ToolError, match="no tool named 'weather'"):
        joined.run(ToolCall("weather", {}))


def test_a_reply_that_says_nothing_when_offered_tools_is_asked_again_without() -> None:
    """The 1.5B now and then answers with its template's empty list of tools alone."""
    harness = ask(["<tools></tools>", "It is 391."], FakeToolbox())
    assert harness.llm.offered_tools[-2:] == [True, False]
    assert harness.spoken_replies == ["It is 391."]
    assert harness.metrics.records[0].outcome == "answered"
