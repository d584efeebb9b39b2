"""Timers through the real containers and the real conversation, on fakes: the model sets one
with a tool call; when it is due the agent says it on its own, in a turn like any other, which
the user can cut and which a fault ends with the apology, and never while the user talks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from application.reminders import Reminders
from application.typing import converse_by_text
from domain.audio import BLOCK_SECONDS
from domain.listening import Phase
from domain.messages import ChatMessage, TurnMetrics
from domain.timers import QUIET_S, Timer
from domain.tools import ToolCall
from ports.tools import ToolError
from tests.application.harness import Harness, make_harness
from tests.fakes import FakeClock, FakeTextToSpeech, silence_blocks, speech

SET = '<tool_call>{"name": "set_timer", "arguments": {"duration": "3 seconds"}}</tool_call>'
ASKED = "Set a timer for three seconds."
ANNOUNCEMENT = "Your timer for 3 seconds is done."


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    tick = threading.Event()
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return True
        tick.wait(0.01)
    return condition()


class GatedVoice(FakeTextToSpeech):
    """Says the announcement (its first words) only once `release` is set, or fails on it."""

    def __init__(self, fails: bool = False) -> None:
        super().__init__()
        self.saying = threading.Event()
        self.release = threading.Event()
        self._fails = fails

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        if ANNOUNCEMENT.startswith(text):
            self.saying.set()
            if self._fails:
                raise RuntimeError("the voice broke")
            self.release.wait(5.0)
        return super().synthesize(text, language)


class TimerSet:
    """A text conversation in which the model set a three-second timer."""

    def __init__(self, replies: list[object], voice: FakeTextToSpeech | None = None) -> None:
        self.done = threading.Event()
        self.harness: Harness = make_harness(
            [self.done.is_set], {}, [SET, "The timer is set.", *replies],
            argv=["--text", "--tools", "timer"], tts=voice,
        )  # fmt: skip
        self.conversation = self.harness.conversation
        self.conversation.start()
        converse_by_text(self.conversation, [ASKED])

    def records(self, count: int) -> list[TurnMetrics]:
        assert wait_until(lambda: len(self.harness.metrics.records) >= count)
        return list(self.harness.metrics.records)

    def stop(self) -> None:
        self.done.set()
        self.conversation.stop()


def test_a_due_timer_is_said_in_a_turn_the_agent_starts() -> None:
    timer = TimerSet([])
    try:
        assert timer.harness.metrics.records[0].tool_calls == [SET]
        assert len(timer.records(1)) == 1  # not due yet: nothing is said
        timer.harness.clock.advance(3.0)
        _, reminder = timer.records(2)
    finally:
        timer.stop()
    # Said as any reply is (the first words cut early), after the answer that set it.
    assert " ".join(timer.harness.spoken_replies) == f"The timer is set. {ANNOUNCEMENT}"
    assert (reminder.outcome, reminder.assistant_text) == ("answered", ANNOUNCEMENT)
    assert reminder.agent_started and reminder.voice_to_voice_ms is None
    # The history keeps the user's exchange (with its call) and nothing of the reminder.
    assert timer.conversation.memory.history[-4:] == [
        ChatMessage("user", ASKED),
        ChatMessage("assistant", SET),
        ChatMessage("tool", "The timer is set: it will go off in 3 seconds."),
        ChatMessage("assistant", "The timer is set."),
    ]


def test_a_timer_still_running_when_the_agent_stops_is_said_to_be_lost() -> None:
    timer = TimerSet([])
    timer.records(1)
    timer.harness.clock.advance(1.0)
    timer.stop()
    assert timer.harness.console.lines[-1] == (
        "Your timer for 3 seconds ends with the agent, 2 seconds before it was due."
    )


def test_the_user_can_cut_a_reminder_and_is_answered() -> None:
    voice = GatedVoice()
    timer = TimerSet(["Hello again."], voice)
    try:
        timer.harness.clock.advance(3.0)
        assert voice.saying.wait(5.0)
        converse_by_text(timer.conversation, ["Hello?"])
        voice.release.set()
        _, reminder, answered = timer.records(3)
    finally:
        voice.release.set()
        timer.stop()
    assert (reminder.outcome, reminder.agent_started) == ("interrupted", True)
    assert answered.outcome == "answered"
    # The reminder cut is not in the history: the user's two exchanges are.
    assert [m.role for m in timer.conversation.memory.history][-6:] == [
        "user", "assistant", "tool", "assistant", "user", "assistant"
    ]  # fmt: skip
    assert timer.conversation.memory.history[-2].content == "Hello?"


def test_a_reminder_that_fails_ends_in_the_apology_and_the_next_turn_works() -> None:
    voice = GatedVoice(fails=True)
    timer = TimerSet(["Hello again."], voice)
    try:
        timer.harness.clock.advance(3.0)
        _, reminder = timer.records(2)
        converse_by_text(timer.conversation, ["Hello?"])
        *_, answered = timer.records(3)
    finally:
        timer.stop()
    assert reminder.outcome == "failed" and "voice broke" in (reminder.error or "")
    apology = f"ASSISTANT: {timer.harness.agent.settings().apology}"
    assert timer.harness.console.lines.count(apology) == 1
    assert answered.outcome == "answered"


def test_a_timer_due_while_the_user_talks_waits_for_a_quiet_moment() -> None:
    ref: list[Harness] = []

    def due_now() -> bool:  # a script step: the timer falls due, mid-sentence
        ref[0].clock.advance(3.0)
        return True

    def reminded() -> bool:
        return len(ref[0].metrics.records) >= 3

    script = [
        *silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8),
        lambda: ref[0].conversation.phase is Phase.LISTENING,
        *silence_blocks(0.3), *speech(2, 0.6), due_now, *speech(2, 1.0), *silence_blocks(0.8),
        reminded,
    ]  # fmt: skip
    harness = make_harness(
        script, {1: ASKED, 2: "And what is the capital of Spain?"},
        [SET, "The timer is set.", "Madrid."], argv=["--tools", "timer"],
    )  # fmt: skip
    ref.append(harness)
    harness.run()
    asked, answered, reminder = harness.metrics.records
    assert asked.tool_calls == [SET]
    assert (answered.user_text, answered.outcome) == ("And what is the capital of Spain?",
                                                      "answered")  # fmt: skip
    assert reminder.agent_started and reminder.assistant_text == ANNOUNCEMENT
    # Said once the user's turn was answered and they had been quiet for a while (counted from
    # their last voiced block, which the turn's speech end may follow by a block).
    assert reminder.speech_end_s >= answered.speech_end_s + QUIET_S - BLOCK_SECONDS


def test_the_timer_tool_reads_the_duration_and_refuses_what_it_cannot() -> None:
    clock = FakeClock(step_s=0.0)
    reminders = Reminders(clock)
    set_for = reminders.run  # as the tool runner calls it
    assert set_for(ToolCall("set_timer", {"duration": "an hour and a half",
                                         "reminder": "stretch"})) == (
        "The timer is set: it will go off in 1 hour 30 minutes."
    )  # fmt: skip
    assert set_for(ToolCall("set_timer", {"duration": 90})).endswith("1 minute 30 seconds.")
    for bad in ({"duration": "soon"}, {"reminder": "tea"}, {"duration": ["5"]}):
        with pytest.raises(ToolError, match="set_timer"):
            set_for(ToolCall("set_timer", bad))
    assert [(t.seconds, t.reminder) for t in reminders.pending] == [(90, ""), (5400, "stretch")]
    clock.advance(90.0)
    assert reminders.take_due() == Timer(90, "", 90.0)
    assert reminders.take_due() is None
