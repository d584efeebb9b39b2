"""Barge-in through the real containers and the real application, on fakes.

The fake microphone has no echo (the simulated room and the canceller are the adapters' and the
e2e tests' business): here speech during the reply is the user's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from domain.heard_reply import INTERRUPTED_MARK
from domain.listening import Phase
from domain.messages import ChatMessage, FinalTranscript
from tests.application.harness import Harness, make_harness
from tests.fakes import FakeTextToSpeech, silence_blocks, speech, utterance_codes

LONG_REPLY = (
    "Once upon a time a fox lived at the edge of a quiet forest. Every morning she walked down "
    "to the river to drink and watch the herons fish. One winter the river froze solid, and "
    "the herons flew south without a word. The fox waited by the ice for many weeks, hungry "
    "and alone. In spring the water ran again, the birds came home, and she learned that "
    "patience is sometimes the only path through a hard season."
)
QUESTION = "Tell me a long story."


def playing_for(ref: list[Harness], blocks: int) -> Callable[[], bool]:
    """A script step: the mic holds until the reply has played this many blocks."""
    return lambda: len(ref[0].audio.played) >= blocks


def listening_again(ref: list[Harness]) -> Callable[[], bool]:
    return lambda: ref[0].conversation.phase is Phase.LISTENING


def over_the_reply(ref: list[Harness], after_blocks: int, *user: object) -> list[object]:
    """The question, then `user` once the reply has played `after_blocks`, then the end."""
    return [
        *speech(1, 1.0),
        *silence_blocks(0.5),  # min_silence_ms: the turn ends on the last of these blocks
        playing_for(ref, after_blocks),
        *user,
        listening_again(ref),
        *silence_blocks(0.3),
    ]


def reply_blocks(harness: Harness) -> int:
    level = FakeTextToSpeech.LEVEL.to_bytes(2, "little", signed=True)
    return sum(1 for b in harness.audio.played if b[:2] == level)


def test_the_user_interrupting_stops_the_reply_and_is_answered() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        over_the_reply(ref, 40, *speech(2, 1.2), *silence_blocks(0.8)),  # past the warm-up
        {1: QUESTION, 2: "Stop. What time is it?"},
        [LONG_REPLY, "It is noon."],
    )
    ref.append(harness)
    harness.run()

    first, second = harness.metrics.records
    assert (first.outcome, first.interrupted) == ("interrupted", True)
    # The fake detector hears the first block: paused after exactly min_interruption_ms.
    assert first.interruption_latency_ms == 128.0
    assert harness.audio.pauses == [True, False]
    # What was heard: a non-empty beginning of the reply, and not all of it.
    assert first.spoken_text and LONG_REPLY.startswith(first.spoken_text)
    assert len(first.spoken_text) < len(LONG_REPLY) / 2
    assert second.outcome == "answered" and second.user_text == "Stop. What time is it?"
    assert harness.conversation.memory.history == [
        ChatMessage("user", QUESTION),
        ChatMessage("assistant", f"{first.spoken_text} {INTERRUPTED_MARK}"),
        ChatMessage("user", "Stop. What time is it?"),
        ChatMessage("assistant", "It is noon."),
    ]
    # The rest of the long reply never played: the reply stopped within a few blocks of the
    # user's speech (40 played before it, 4 to detect it), then only the answer played.
    answer_blocks = -(-640 * 3 // 512)
    assert reply_blocks(harness) <= 40 + 4 + 2 + answer_blocks
    # Cut at the last word heard: the fake voice takes 40 ms a word, so the blocks of the long
    # reply that played hold this many words, give or take the one they ended in.
    words_played = (reply_blocks(harness) - answer_blocks) * 512 / 640
    assert abs(len(first.spoken_text.split()) - words_played) <= 1.5
    # The user's turn kept its start: the recogniser got their speech from the pre-roll on.
    assert harness.llm.requests[1][-1] == ChatMessage("user", "Stop. What time is it?")


def test_a_cough_pauses_the_reply_which_then_resumes_where_it_stopped() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        over_the_reply(ref, 40, *speech(3, 0.3)),  # long enough to pause, no words in it
        {1: QUESTION, 3: ""},
        [LONG_REPLY],
    )
    ref.append(harness)
    harness.run()

    (record,) = harness.metrics.records
    assert record.outcome == "answered" and not record.interrupted
    assert record.false_interruptions == 1
    assert harness.audio.pauses == [True, False]
    # The question's start and end, then the cough: heard, then no turn of its own.
    assert harness.console.speech == ["started", "stopped", "started", "resumed"]
    assert harness.conversation.memory.history[-1] == ChatMessage("assistant", LONG_REPLY)
    # Every block of the reply played, once: resumed where it paused.
    assert reply_blocks(harness) == -(-640 * len(LONG_REPLY.split()) // 512)


def test_a_short_interruption_that_ends_is_the_next_turn_at_once() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        over_the_reply(ref, 40, *speech(2, 0.45), *silence_blocks(1.0)),
        {1: QUESTION, 2: "Stop."},
        [LONG_REPLY, "Okay."],
    )
    ref.append(harness)
    harness.run()

    first, second = harness.metrics.records
    assert first.outcome == "interrupted"
    assert (second.user_text, second.assistant_text) == ("Stop.", "Okay.")
    assert harness.conversation.memory.history[-2:] == [
        ChatMessage("user", "Stop."),
        ChatMessage("assistant", "Okay."),
    ]


def test_confirmed_while_speaking_the_finished_turn_is_still_transcribed_whole() -> None:
    """The words said so far confirm the interruption only after the user has finished (a slow
    recogniser): their whole turn, held meanwhile, is still the next turn."""
    ref: list[Harness] = []
    finished = threading.Event()

    def user_done() -> bool:
        finished.set()
        return True

    harness = make_harness(
        over_the_reply(ref, 40, *speech(2, 0.9), *silence_blocks(0.8), user_done),
        {1: QUESTION, 2: "Stop. What time is it?"},
        [LONG_REPLY, "It is noon."],
    )
    transcribe = harness.stt.transcribe

    def slow_transcribe(audio: bytes) -> FinalTranscript:
        if 2 in utterance_codes(audio):
            finished.wait(5)
        return transcribe(audio)

    harness.stt.transcribe = slow_transcribe  # type: ignore[method-assign]
    ref.append(harness)
    harness.run()
    first, second = harness.metrics.records
    assert first.outcome == "interrupted"
    assert (second.user_text, second.outcome) == ("Stop. What time is it?", "answered")


def test_speech_in_the_warm_up_does_not_interrupt() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        over_the_reply(ref, 1, *speech(2, 0.16)),  # long enough, but in the 250 ms warm-up
        {1: QUESTION, 2: "Hello?"},
        [LONG_REPLY],
    )
    ref.append(harness)
    harness.run()
    assert harness.audio.pauses == []
    assert [r.outcome for r in harness.metrics.records] == ["answered"]


def test_words_too_short_for_a_turn_cancel_the_reply_and_the_agent_listens_again() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        # Enough to pause (128 ms), too short for the segmenter's min_speech_ms (384 ms); the
        # recogniser still finds a word in it.
        over_the_reply(ref, 40, *speech(2, 0.2), *silence_blocks(1.0)),
        {1: QUESTION, 2: "Hey."},
        [LONG_REPLY],
    )
    ref.append(harness)
    harness.run()
    assert [r.outcome for r in harness.metrics.records] == ["interrupted"]
    assert harness.conversation.phase is Phase.LISTENING


def test_half_duplex_stays_available() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        over_the_reply(ref, 40, *speech(2, 1.2), *silence_blocks(0.8)),
        {1: QUESTION, 2: "Stop. What time is it?"},
        [LONG_REPLY, "It is noon."],
        argv=["--barge_in", "false"],
    )
    ref.append(harness)
    harness.run()
    assert harness.audio.pauses == []
    # Deaf while it spoke: the speech over the reply is lost, the whole reply played.
    assert [(r.outcome, r.user_text) for r in harness.metrics.records] == [("answered", QUESTION)]
    assert harness.conversation.memory.history[-1] == ChatMessage("assistant", LONG_REPLY)
