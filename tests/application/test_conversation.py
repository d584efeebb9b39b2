"""Whole conversations through the real containers and the real application, on fakes."""

import threading
import time
from collections.abc import Iterator

from domain.audio import RESPONSE_DONE_MARK, VOICED_MARK
from domain.chat_window import SUMMARY_QUESTION
from domain.listening import Phase
from domain.messages import ChatMessage
from ports.language_model import LanguageModelError
from tests.application.harness import Harness, make_harness
from tests.fakes import Failing, FakeConsole, FakeTextToSpeech, silence_blocks, speech


def listening_again(harness_ref: list[Harness]) -> object:
    """A script step: the mic holds until the agent listens again."""
    return lambda: harness_ref[0].conversation.phase is Phase.LISTENING


def two_turn_script(ref: list[Harness]) -> list[object]:
    return [
        *silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8),
        listening_again(ref),
        *silence_blocks(0.3), *speech(2, 1.0), *silence_blocks(0.8),
    ]  # fmt: skip


def test_two_turns_end_to_end() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref),
        {1: "What is the capital of France?", 2: "And of Spain?"},
        ["Paris is the capital. It is lovely.", "Madrid."],
    )
    ref.append(harness)
    harness.run()

    assert harness.conversation.history == [
        ChatMessage("user", "What is the capital of France?"),
        ChatMessage("assistant", "Paris is the capital. It is lovely."),
        ChatMessage("user", "And of Spain?"),
        ChatMessage("assistant", "Madrid."),
    ]
    # The second request carried the first exchange, after the system prompt.
    assert harness.llm.requests[1][0].role == "system"
    assert harness.llm.requests[1][1:] == harness.conversation.history[:3]
    # Everything synthesised was played, in exact 512-sample blocks, and nothing else.
    assert harness.tts.spoken == ["Paris is the capital.", "It is lovely.", "Madrid."]
    level = FakeTextToSpeech.LEVEL.to_bytes(2, "little", signed=True)
    assert all(len(b) == 1024 for b in harness.audio.played)
    samples_played = b"".join(harness.audio.played).count(level)
    assert samples_played == 640 * (4 + 3 + 1)
    assert [(m.turn_id, m.label) for m in harness.audio.marks] == [
        (1, VOICED_MARK), (1, RESPONSE_DONE_MARK), (2, VOICED_MARK), (2, RESPONSE_DONE_MARK)
    ]  # fmt: skip
    assert "USER: What is the capital of France?" in harness.console.lines
    assert "ASSISTANT: Madrid." in harness.console.lines
    # One metrics record per turn, every stage measured.
    first, second = harness.metrics.records
    assert (first.turn_id, second.turn_id) == (1, 2)
    assert first.user_text == "What is the capital of France?"
    for record in (first, second):
        assert record.error is None and not record.interrupted
        for latency in (record.stt_ms, record.llm_ttft_ms, record.first_batch_ms,
                        record.tts_first_chunk_ms, record.voice_to_voice_ms):  # fmt: skip
            assert latency is not None and latency > 0


def test_live_transcripts_are_shown_but_only_the_final_reaches_the_llm() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 3.0), *silence_blocks(0.8)],
        {1: "a long question"},
        ["Sure."],
    )
    ref.append(harness)
    harness.run()
    assert harness.stt.partials, "no partial transcript was requested"
    assert harness.stt.finals == ["a long question"]
    assert harness.llm.requests[0][-1] == ChatMessage("user", "a long question")


def test_an_empty_transcript_makes_no_llm_call_and_listening_resumes() -> None:
    ref: list[Harness] = []
    harness = make_harness(two_turn_script(ref), {1: "", 2: "Hello?"}, ["Hi."])
    ref.append(harness)
    harness.run()
    assert len(harness.llm.requests) == 1
    assert harness.llm.requests[0][-1] == ChatMessage("user", "Hello?")
    assert harness.tts.spoken == ["Hi."]
    empty, answered = harness.metrics.records
    assert empty.user_text == "" and empty.llm_ttft_ms is None
    assert answered.assistant_text == "Hi."


def test_the_llm_failing_mid_reply_apologises_and_listening_resumes() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref),
        {1: "Tell me a story.", 2: "Are you there?"},
        [Failing("Once upon a time. There was a dragon.", after_words=5), "Yes."],
        argv=["--stream_batch_sentences", "1"],
    )
    ref.append(harness)
    harness.run()
    apology = harness.agent.settings().apology
    assert harness.tts.spoken == ["Once upon a time.", apology, "Yes."]
    # The cut reply is not stored as if it were complete.
    assert harness.conversation.history == [
        ChatMessage("user", "Tell me a story."),
        ChatMessage("user", "Are you there?"),
        ChatMessage("assistant", "Yes."),
    ]
    failed, answered = harness.metrics.records
    assert failed.error is not None and "llm" in failed.error
    assert answered.error is None


def test_an_llm_refusing_before_any_text_also_apologises() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref),
        {1: "Hi", 2: "Hi again"},
        [LanguageModelError("HTTP 500"), "Hello."],
    )
    ref.append(harness)
    harness.run()
    assert harness.tts.spoken[-1] == "Hello."
    assert len(harness.metrics.records) == 2


def test_a_stt_failure_reopens_listening_without_a_reply() -> None:
    ref: list[Harness] = []
    harness = make_harness(two_turn_script(ref), {1: "lost", 2: "Second try."}, ["Got it."])
    harness.stt.fail_on.add(1)
    ref.append(harness)
    harness.run()
    assert harness.tts.spoken == ["Got it."]
    assert harness.metrics.records[0].error is not None


def test_compaction_runs_in_the_background_while_the_next_turn_proceeds() -> None:
    ref: list[Harness] = []
    script = [
        *silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8), listening_again(ref),
        *silence_blocks(0.3), *speech(2, 1.0), *silence_blocks(0.8), listening_again(ref),
        *silence_blocks(0.3), *speech(3, 1.0), *silence_blocks(0.8),
    ]  # fmt: skip
    harness = make_harness(
        script, {1: "one", 2: "two", 3: "three"}, ["Uno.", "Dos.", "Tres."],
        argv=["--chat_size", "1"], summary="We counted in Spanish.",
    )  # fmt: skip
    ref.append(harness)
    harness.llm.compaction_gate.clear()  # the summary hangs until the test releases it
    harness.conversation.start()
    deadline = time.monotonic() + 10
    while len(harness.metrics.records) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    # Turns 2 and 3 were answered while the first compaction was still pending.
    assert [r.assistant_text for r in harness.metrics.records] == ["Uno.", "Dos.", "Tres."]
    assert len(harness.llm.compactions) == 1
    harness.llm.compaction_gate.set()
    deadline = time.monotonic() + 5
    while harness.conversation.history[0].content != SUMMARY_QUESTION:
        assert time.monotonic() < deadline, "the summary was never applied"
        time.sleep(0.01)
    harness.conversation.wait(5)
    harness.conversation.stop()
    history = harness.conversation.history
    assert history[1] == ChatMessage("assistant", "We counted in Spanish.")
    # What was said after the compaction started survives it.
    assert ChatMessage("user", "three") in history and ChatMessage("assistant", "Tres.") in history
    assert "one" in harness.llm.compactions[0][-1].content


def test_stop_in_the_middle_of_a_reply_stops_everything_within_a_second() -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8), lambda: False],
        {1: "Talk for a long time."},
        [" ".join(["word."] * 500)],
        delta_delay_s=0.01,
    )
    before = set(threading.enumerate())
    harness.conversation.start()
    deadline = time.monotonic() + 5
    while not harness.tts.spoken and time.monotonic() < deadline:
        time.sleep(0.01)
    assert harness.tts.spoken, "the reply never started"
    started = time.monotonic()
    harness.conversation.stop()
    assert time.monotonic() - started < 1.0
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []
    assert harness.audio.closed


def test_the_watchdog_reopens_listening_when_a_stage_hangs() -> None:
    ref: list[Harness] = []
    hang = threading.Event()

    class HangingTts(FakeTextToSpeech):
        def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
            if not hang.is_set():
                hang.set()
                threading.Event().wait(3)  # stuck, no progress
                return
            yield from super().synthesize(text, language)

    harness = make_harness(two_turn_script(ref), {1: "hi", 2: "still there?"}, ["Hey.", "Yes."])
    harness.tts = HangingTts()
    harness.agent.adapters.tts.override(harness.tts)
    ref.append(harness)
    harness.conversation.start()
    assert hang.wait(5)
    harness.clock.advance(harness.agent.settings().watchdog_s + 1)
    assert harness.conversation.wait(10)
    harness.conversation.stop()
    first, second = harness.metrics.records
    assert first.error is not None and "watchdog" in first.error
    assert second.assistant_text == "Yes."
    # Only the second reply ("Yes.", one word) was played; nothing of the abandoned one.
    level = FakeTextToSpeech.LEVEL.to_bytes(2, "little", signed=True)
    assert b"".join(harness.audio.played).count(level) == 640


def test_the_transcript_started_during_the_final_pause_is_the_final_one() -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8)],
        {1: "What time is it?"},
        ["Noon."],
        argv=["--enable_live_transcription", "false"],
    )
    harness.run()
    # One decode for the turn: the speculative one, started before the silence ended it.
    assert harness.stt.finals == ["What time is it?"]
    assert harness.llm.requests[0][-1] == ChatMessage("user", "What time is it?")


def test_speech_after_a_pause_is_transcribed_again_in_full() -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.3), *speech(2, 1.0),
         *silence_blocks(0.8)],
        {1: "Tell me", 2: "about the moon."},
        ["It is far."],
        argv=["--enable_live_transcription", "false"],
    )  # fmt: skip
    harness.run()
    assert harness.stt.finals[0] == "Tell me"  # speculative, at the pause
    assert harness.llm.requests[-1][-1] == ChatMessage("user", "Tell me about the moon.")
    assert harness.conversation.history[0] == ChatMessage("user", "Tell me about the moon.")


def test_the_reply_asked_for_during_the_final_pause_is_the_one_spoken() -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8)],
        {1: "Hello there."},
        ["Hi. Nice to meet you."],
        argv=["--enable_live_transcription", "false"],
    )
    harness.run()
    # One request, made before the turn was over, and it was consumed: nothing asked twice.
    assert len(harness.llm.requests) == 1 and harness.llm.cancelled == []
    assert harness.llm.requests[0][-1] == ChatMessage("user", "Hello there.")
    assert harness.tts.spoken == ["Hi.", "Nice to meet you."]
    (record,) = harness.metrics.records
    assert record.llm_ttft_ms is not None and record.voice_to_voice_ms is not None


def test_a_prefetched_reply_is_dropped_when_the_user_goes_on() -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.3), *speech(2, 2.0),
         *silence_blocks(0.8)],
        {1: "Tell me", 2: "about the moon."},
        ["A reply to half a question. " * 20, "It is far."],
        argv=["--enable_live_transcription", "false"],
        delta_delay_s=0.01,
    )  # fmt: skip
    harness.run()
    assert harness.llm.requests[0][-1] == ChatMessage("user", "Tell me")
    assert 0 in harness.llm.cancelled
    assert harness.tts.spoken == ["It is far."]


def test_prefetching_can_be_turned_off() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref), {1: "one", 2: "two"}, ["Uno.", "Dos."],
        argv=["--prefetch_replies", "false"],
    )  # fmt: skip
    ref.append(harness)
    harness.run()
    assert [r[-1].content for r in harness.llm.requests] == ["one", "two"]
    assert harness.tts.spoken == ["Uno.", "Dos."]


def test_a_bug_in_a_stage_stops_the_conversation_and_says_so() -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8), lambda: False],
        {1: "hi"},
        ["Hello."],
    )

    class BrokenConsole(FakeConsole):
        def user(self, text: str) -> None:
            raise AttributeError("a bug")

    harness.agent.adapters.console.override(BrokenConsole())
    harness.conversation.start()
    assert harness.conversation.wait(5), "a crashed stage must not leave the agent hanging"
    harness.conversation.stop()
    assert harness.conversation.crashed
