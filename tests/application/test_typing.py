"""Text mode through the real containers and the real conversation, on fakes: typed lines are
turns, answered in order, with the history, the apology and the metrics of spoken ones."""

import threading

from application.typing import converse_by_text
from domain.messages import ChatMessage
from ports.language_model import LanguageModelError
from tests.application.harness import Harness, make_harness
from tests.fakes import silence_blocks, speech


def typed(harness: Harness, lines: list[str]) -> None:
    """Type `lines` to a started conversation; the mic holds (silence) until they are done."""
    conversation = harness.conversation
    conversation.start()
    try:
        converse_by_text(conversation, lines)
    finally:
        conversation.stop()


def holding_mic(done: threading.Event) -> list[object]:
    """Speech that a listening agent would take for a turn, then silence until `done`."""
    return [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8), done.is_set]


def test_typed_lines_are_turns_answered_in_order_and_kept_in_the_history() -> None:
    done = threading.Event()
    harness = make_harness(
        holding_mic(done), {1: "Something the microphone heard."},
        ["Paris is the capital. It is lovely.", "Madrid."], argv=["--text"],
    )  # fmt: skip
    typed(harness, ["What is the capital of France?\n", "   \n", "And of Spain?\n"])
    done.set()

    assert harness.conversation.memory.history == [
        ChatMessage("user", "What is the capital of France?"),
        ChatMessage("assistant", "Paris is the capital. It is lovely."),
        ChatMessage("user", "And of Spain?"),
        ChatMessage("assistant", "Madrid."),
    ]
    assert harness.llm.requests[1][1:] == harness.conversation.memory.history[:3]
    # The microphone's speech made no turn: text mode does not listen.
    assert not any("microphone" in line for line in harness.console.lines)
    assert [line for line in harness.console.lines if line.startswith("USER")] == [
        "USER: What is the capital of France?", "USER: And of Spain?"
    ]  # fmt: skip
    assert harness.console.replies_ended >= 2
    first, second = harness.metrics.records
    assert [(r.outcome, r.error) for r in (first, second)] == [("answered", None)] * 2
    assert first.stt_ms is None  # nothing was recognised
    assert first.llm_ttft_ms is not None


def test_a_failed_reply_is_apologised_for_in_text_and_the_next_line_is_answered() -> None:
    done = threading.Event()
    harness = make_harness(
        [done.is_set], {}, [LanguageModelError("HTTP 503"), "Madrid."], argv=["--text"]
    )
    typed(harness, ["What is the capital of France?", "And of Spain?"])
    done.set()

    apology = harness.agent.settings().apology
    assert f"ASSISTANT: {apology}" in harness.console.lines
    assert harness.console.lines[-1] == "ASSISTANT: Madrid."
    failed, answered = harness.metrics.records
    assert failed.outcome == "failed" and "503" in (failed.error or "")
    assert answered.outcome == "answered"
    # The failed exchange left nothing half-kept behind.
    assert harness.conversation.memory.history == [
        ChatMessage("user", "And of Spain?"), ChatMessage("assistant", "Madrid.")
    ]  # fmt: skip


def test_typing_stops_when_the_conversation_does() -> None:
    done = threading.Event()
    harness = make_harness([done.is_set], {}, ["One."], argv=["--text"])
    conversation = harness.conversation
    conversation.start()
    conversation.stop()
    lines = iter(["Are you there?"])
    converse_by_text(conversation, lines)
    done.set()
    assert harness.llm.requests == []


def test_typed_words_are_in_the_configured_language() -> None:
    done = threading.Event()
    harness = make_harness(
        [done.is_set], {}, ["Paris."], argv=["--text", "--language", "fr",
                                             "--enable_lang_prompt", "true"],
    )  # fmt: skip
    typed(harness, ["Quelle est la capitale de la France ?"])
    done.set()
    (record,) = harness.metrics.records
    assert record.language == "fr"
    assert "French" in harness.llm.requests[0][-1].content  # the reply-language instruction
