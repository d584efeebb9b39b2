"""Whole conversations through the real containers and the real application, on fakes."""

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from domain.audio import ReplyDone, ReplyVoiced
from domain.listening import Phase
from domain.messages import ChatMessage, FinalTranscript, PartialTranscript
from domain.notes import ACK, Notes
from ports.language_model import Cancellation, LanguageModelError
from tests.application.harness import Harness, make_harness
from tests.fakes import (
    Failing,
    FakeClock,
    FakeConsole,
    FakeEndOfTurn,
    FakeLanguageModel,
    FakeSpeechToText,
    FakeTextToSpeech,
    Frozen,
    silence_blocks,
    speech,
)


def apology_blocks(harness: Harness) -> int:
    words = len(harness.agent.settings().apology.split())
    return -(-640 * words // 512)


def eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def assistant_lines(harness: Harness) -> list[str]:
    return [line.removeprefix("ASSISTANT: ") for line in harness.console.lines
            if line.startswith("ASSISTANT: ")]  # fmt: skip


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

    assert harness.conversation.memory.history == [
        ChatMessage("user", "What is the capital of France?"),
        ChatMessage("assistant", "Paris is the capital. It is lovely."),
        ChatMessage("user", "And of Spain?"),
        ChatMessage("assistant", "Madrid."),
    ]
    # The second request carried the first exchange, after the system prompt.
    assert harness.llm.requests[1][0].role == "system"
    assert harness.llm.requests[1][1:] == harness.conversation.memory.history[:3]
    # Everything synthesised was played, in exact 512-sample blocks, and nothing else.
    assert harness.spoken_replies == ["Paris is the capital.", "It is lovely.", "Madrid."]
    level = FakeTextToSpeech.LEVEL.to_bytes(2, "little", signed=True)
    assert all(len(b) == 1024 for b in harness.audio.played)
    samples_played = b"".join(harness.audio.played).count(level)
    assert samples_played == 640 * (4 + 3 + 1)
    assert [echo.mark for echo in harness.audio.marks] == [
        ReplyVoiced(1), ReplyDone(1), ReplyVoiced(2), ReplyDone(2)
    ]  # fmt: skip
    assert "USER: What is the capital of France?" in harness.console.lines
    assert "ASSISTANT: Madrid." in harness.console.lines
    # One metrics record per turn.
    first, second = harness.metrics.records
    assert (first.turn_id, second.turn_id) == (1, 2)
    assert first.user_text == "What is the capital of France?"
    assert [(r.outcome, r.error) for r in (first, second)] == [("answered", None)] * 2


def test_each_stage_latency_is_what_the_stage_took() -> None:
    """On a clock that moves only when a fake stage works, each latency is exactly that work."""
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8)],
        {1: "Where is Paris?"}, ["In France. It is the capital."],
        argv=["--prefetch_replies", "false", "--enable_live_transcription", "false"],
    )  # fmt: skip
    clock = FakeClock(step_s=0.0)
    harness.agent.adapters.clock.override(clock)

    class SlowStt(FakeSpeechToText):
        def transcribe(self, audio: bytes) -> FinalTranscript:
            clock.advance(0.03)
            return super().transcribe(audio)

    class SlowLlm(FakeLanguageModel):
        def stream(
            self, messages: Sequence[ChatMessage], cancel: Cancellation, **options: bool
        ) -> Iterator[str]:
            clock.advance(0.2)  # the time to the first token
            yield from super().stream(messages, cancel, **options)

    class SlowTts(FakeTextToSpeech):
        def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
            clock.advance(0.07)
            yield from super().synthesize(text, language)

    harness.agent.adapters.stt.override(SlowStt({1: "Where is Paris?"}))
    harness.agent.adapters.llm.override(SlowLlm(["In France. It is the capital."]))
    harness.agent.adapters.tts.override(SlowTts())
    harness.run()
    (record,) = harness.metrics.records
    # The speculative decode ran in the pause, before the turn ended: none of it is waited for.
    assert record.stt_ms == 0.0
    assert record.llm_ttft_ms == 200.0
    assert record.first_batch_ms == 200.0  # "In France." is whole at the second delta
    assert record.tts_first_chunk_ms == 70.0
    assert record.voice_to_voice_ms is not None and record.voice_to_voice_ms > 0


def test_live_transcripts_are_shown_but_only_the_final_reaches_the_llm() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 3.0), *silence_blocks(0.8)],
        {1: "a long question"},
        ["Sure."],
    )

    class HesitantStt(FakeSpeechToText):
        def transcribe_partial(self, audio: bytes) -> PartialTranscript:
            self.partials.append("a long…")
            return PartialTranscript("a long…")

    harness.stt = HesitantStt({1: "a long question"})
    harness.agent.adapters.stt.override(harness.stt)
    ref.append(harness)
    harness.run()
    # The hypotheses went to the live line, then the final transcript, then the USER line.
    assert harness.console.live_lines[0] == "a long…"
    assert harness.console.live_lines.count("a long…") == len(harness.stt.partials) >= 2
    assert harness.console.live_lines[-1] == "a long question"
    assert "USER: a long question" in harness.console.lines
    assert harness.stt.finals == ["a long question"]
    assert [r[-1] for r in harness.llm.requests] == [ChatMessage("user", "a long question")]


def test_the_next_request_is_read_ahead_while_the_user_speaks_and_after_each_exchange() -> None:
    ref: list[Harness] = []

    # The clock stands still until each read-ahead was asked for (the audio runs faster than
    # real time, and a newer offer replaces one not yet taken).
    def primed_with(last: ChatMessage) -> Callable[[], bool]:
        return lambda: any(messages[-1] == last for messages in ref[0].llm.primed)

    after_first = Frozen(primed_with(ChatMessage("user", "")))
    mid_question = Frozen(primed_with(ChatMessage("user", "And what")))
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8), listening_again(ref),
         *silence_blocks(0.1), after_first, *silence_blocks(0.2), *speech(2, 1.0), mid_question,
         *speech(2, 1.0),
         *silence_blocks(0.8)],
        {1: "What is the capital of France?", 2: "And what about Spain?"},
        ["Paris.", "Madrid."],
    )  # fmt: skip

    class WordByWordStt(FakeSpeechToText):
        def transcribe_partial(self, audio: bytes) -> PartialTranscript:
            return PartialTranscript(" ".join(self._text(audio).split()[:2]))

    harness.agent.adapters.stt.override(
        WordByWordStt({1: "What is the capital of France?", 2: "And what about Spain?"})
    )
    ref.append(harness)
    harness.run()

    system, *_ = harness.llm.requests[0]
    first_exchange = [
        ChatMessage("user", "What is the capital of France?"), ChatMessage("assistant", "Paris.")
    ]  # fmt: skip
    # After the first exchange: the history as the next turn finds it, the user's words to come.
    after_exchange = [system, *first_exchange, ChatMessage("user", "")]
    # While the second question was spoken: the history and the words so far.
    while_speaking = [system, *first_exchange, ChatMessage("user", "And what")]
    assert after_first.met.is_set() and mid_question.met.is_set()
    primed = harness.llm.primed
    assert primed.index(after_exchange) < primed.index(while_speaking)
    # Each reply was asked with the final transcript, never the words read ahead.
    assert [r[-1].content for r in harness.llm.requests] == [
        "What is the capital of France?", "And what about Spain?"
    ]  # fmt: skip


def test_an_empty_transcript_makes_no_llm_call_and_listening_resumes() -> None:
    ref: list[Harness] = []
    harness = make_harness(two_turn_script(ref), {1: "", 2: "Hello?"}, ["Hi."])
    ref.append(harness)
    harness.run()
    assert len(harness.llm.requests) == 1
    assert harness.llm.requests[0][-1] == ChatMessage("user", "Hello?")
    assert harness.spoken_replies == ["Hi."]
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
    assert harness.spoken_replies == ["Once upon a time.", "Yes."]
    # The user heard the start of the story, the apology, whole, then the next answer.
    assert harness.heard_runs() == ["reply", "apology", "reply"]
    assert harness.heard().count("apology") == apology_blocks(harness)
    # A failed turn leaves nothing in the history, which keeps alternating.
    assert harness.conversation.memory.history == [
        ChatMessage("user", "Are you there?"),
        ChatMessage("assistant", "Yes."),
    ]
    failed, answered = harness.metrics.records
    assert failed.outcome == "failed" and failed.error is not None and "llm" in failed.error
    assert (answered.outcome, answered.error) == ("answered", None)


def test_an_llm_refusing_before_any_text_also_apologises() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref),
        {1: "Hi", 2: "Hi again"},
        [LanguageModelError("HTTP 500"), "Hello."],
    )
    ref.append(harness)
    harness.run()
    assert harness.spoken_replies == ["Hello."]
    assert harness.heard_runs() == ["apology", "reply"]
    assert [r.outcome for r in harness.metrics.records] == ["failed", "answered"]
    assert harness.conversation.memory.history == [
        ChatMessage("user", "Hi again"), ChatMessage("assistant", "Hello.")
    ]  # fmt: skip


def test_a_stt_failure_apologises_and_reopens_listening() -> None:
    ref: list[Harness] = []
    harness = make_harness(two_turn_script(ref), {1: "lost", 2: "Second try."}, ["Got it."])
    harness.stt.fail_on.add(1)
    ref.append(harness)
    harness.run()
    assert harness.spoken_replies == ["Got it."]
    assert harness.heard_runs() == ["apology", "reply"]
    failed = harness.metrics.records[0]
    assert failed.outcome == "failed" and failed.error is not None and "stt" in failed.error


def test_a_tts_failure_stops_the_reply_and_apologises() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref), {1: "Count.", 2: "Again?"},
        ["One. Two. Three.", "Yes."], argv=["--stream_batch_sentences", "1"],
    )  # fmt: skip

    class BrokenOnTwo(FakeTextToSpeech):
        def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
            if text == "Two.":
                raise RuntimeError("voice model crashed")
            yield from super().synthesize(text, language)

    harness.tts = BrokenOnTwo()
    harness.agent.adapters.tts.override(harness.tts)
    ref.append(harness)
    harness.run()
    assert harness.spoken_replies == ["One.", "Yes."]  # "Three." was never asked for
    assert harness.heard_runs() == ["reply", "apology", "reply"]
    assert [r.outcome for r in harness.metrics.records] == ["failed", "answered"]
    assert harness.conversation.memory.history == [
        ChatMessage("user", "Again?"), ChatMessage("assistant", "Yes.")
    ]  # fmt: skip


def test_compaction_gives_way_to_the_next_reply_and_lands_between_turns() -> None:
    ref: list[Harness] = []
    script: list[object] = []
    for code in (1, 2, 3, 4):
        script += [*silence_blocks(0.3), *speech(code, 1.0), *silence_blocks(0.8)]
        script.append(listening_again(ref))
    script.append(lambda: bool(ref[0].conversation.memory.notes.summary))  # the input ends after it
    harness = make_harness(
        script, {1: "one", 2: "two", 3: "three", 4: "four"},
        ["Uno.", "Dos.", "Tres.", "Cuatro."],
        argv=["--chat_size", "2"], summary="We counted in Spanish.",
    )  # fmt: skip
    ref.append(harness)
    harness.llm.compaction_gate.clear()  # a summary hangs until the test releases it
    harness.conversation.start()
    deadline = time.monotonic() + 10
    while len(harness.metrics.records) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    # The summary planned after turn 3 did not hold turn 4 back: it was cancelled for it.
    assert [r.assistant_text for r in harness.metrics.records] == ["Uno.", "Dos.", "Tres.",
                                                                    "Cuatro."]  # fmt: skip
    assert harness.llm.cancelled_compactions == 1
    harness.llm.compaction_gate.set()  # planned again after turn 4, it now completes
    assert eventually(lambda: not harness.conversation.memory.notes.empty, 5.0)
    harness.conversation.wait(5)
    harness.conversation.stop()
    notes = Notes(("one", "two", "three"), "We counted in Spanish.")
    assert harness.conversation.memory.notes == notes
    assert harness.conversation.memory.history == [
        ChatMessage("user", "four"),
        ChatMessage("assistant", "Cuatro."),
        ChatMessage("user", notes.text()),
        ChatMessage("assistant", ACK),
    ]
    assert "three" in harness.llm.compactions[-1][-1].content


def test_a_model_that_serves_both_lets_the_summary_land_beside_the_replies() -> None:
    ref: list[Harness] = []
    script: list[object] = []
    for code in (1, 2, 3, 4, 5):
        script += [*silence_blocks(0.3), *speech(code, 1.0), *silence_blocks(0.8)]
        script.append(listening_again(ref))
    script.append(lambda: bool(ref[0].conversation.memory.notes.summary))  # the input ends after it
    harness = make_harness(
        script, {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"},
        ["Uno.", "Dos.", "Tres.", "Cuatro.", "Cinco."],
        argv=["--chat_size", "2"], summary="We counted in Spanish.", background_yields=True,
    )  # fmt: skip
    ref.append(harness)
    harness.llm.compaction_gate.clear()  # the summary takes longer than the next turns
    harness.conversation.start()
    assert eventually(lambda: len(harness.metrics.records) == 5, 10.0)
    assert harness.llm.cancelled_compactions == 0  # replies never cancelled it
    assert len(harness.llm.compactions) == 1  # nor made it start again
    harness.llm.compaction_gate.set()
    memory = harness.conversation.memory
    assert eventually(lambda: memory.notes.summary == "We counted in Spanish.", 5.0)
    harness.conversation.wait(5)
    harness.conversation.stop()
    assert [r.outcome for r in harness.metrics.records] == ["answered"] * 5
    assert [m.content for m in harness.conversation.memory.history][-2:] == [
        harness.conversation.memory.notes.text(), ACK,
    ]  # fmt: skip


def test_every_request_fits_the_models_budget_in_a_long_talk() -> None:
    ref: list[Harness] = []
    script: list[object] = []
    turns = 12
    for code in range(1, turns + 1):
        script += [*silence_blocks(0.3), *speech(code, 0.6), *silence_blocks(0.8)]
        script.append(listening_again(ref))
    long_reply = " ".join(["Words."] * 60)
    harness = make_harness(
        script[:-1], {code: f"question {code} " + "please " * 20 for code in range(1, turns + 1)},
        [long_reply] * turns, prompt_budget=300, summary=Exception("the summariser is down"),
    )  # fmt: skip
    ref.append(harness)
    harness.run(timeout_s=20)
    budget = harness.llm.prompt_budget
    assert budget is not None
    assert [r.outcome for r in harness.metrics.records] == ["answered"] * turns
    window = harness.conversation.memory._window  # its own reckoning
    for request in harness.llm.requests:
        assert window.tokens(request) <= budget
    assert harness.llm.requests[-1][-1].content.startswith(f"question {turns}")


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
    while not harness.spoken_replies and time.monotonic() < deadline:
        time.sleep(0.01)
    assert harness.spoken_replies, "the reply never started"
    started = time.monotonic()
    harness.conversation.stop()
    assert time.monotonic() - started < 1.0
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []
    assert harness.audio.closed


def test_the_watchdog_closes_a_hung_turn_aloud_and_the_next_turn_works() -> None:
    ref: list[Harness] = []
    hanging, release = threading.Event(), threading.Event()
    stuck_level = FakeTextToSpeech.LEVEL + 1

    class HangingTts(FakeTextToSpeech):
        def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
            if text != "Hey.":
                yield from super().synthesize(text, language)
                return
            block = stuck_level.to_bytes(2, "little", signed=True) * 512
            yield block
            hanging.set()
            release.wait()  # stuck, no progress, until the test is over
            yield block * 4  # comes too late: the turn is closed

    harness = make_harness(two_turn_script(ref), {1: "hi", 2: "still there?"}, ["Hey.", "Yes."])
    harness.tts = HangingTts()
    harness.agent.adapters.tts.override(harness.tts)
    ref.append(harness)
    harness.conversation.start()
    assert hanging.wait(5)
    # The reply may hang while spoken ahead, in the pause: the watchdog runs once the turn ended.
    assert eventually(lambda: harness.conversation.phase is Phase.WAITING_FOR_REPLY)
    harness.clock.advance(harness.agent.settings().watchdog_s + 1)
    deadline = time.monotonic() + 5
    while not harness.metrics.records and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()  # the hung synthesis wakes up after its turn was closed
    assert harness.conversation.wait(10)
    harness.conversation.stop()
    first, second = harness.metrics.records
    assert first.outcome == "timed out" and first.error is not None
    assert "watchdog" in first.error
    assert (second.outcome, second.assistant_text) == ("answered", "Yes.")
    assert harness.conversation.memory.history == [
        ChatMessage("user", "still there?"), ChatMessage("assistant", "Yes.")
    ]  # fmt: skip
    # At most the block queued before the hang; nothing it produced after the close.
    stuck = stuck_level.to_bytes(2, "little", signed=True)
    assert sum(block[:2] == stuck for block in harness.audio.played) <= 1
    heard = [name for name in harness.heard_runs() if name != "?"]
    assert heard == ["apology", "reply"]
    assert harness.heard().count("apology") == apology_blocks(harness)


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
    assert harness.conversation.memory.history[0] == ChatMessage("user", "Tell me about the moon.")


def test_a_turn_cut_in_parts_is_one_turn_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 3.5), *silence_blocks(0.8)],
        {1: "blah"},
        ["Hm."],
        argv=["--max_speech_ms", "1000"],
    )
    with caplog.at_level("WARNING", logger="application.conversation"):
        harness.run()
    (said,) = [r.getMessage() for r in caplog.records if "--max_speech_ms" in r.getMessage()]
    assert said.startswith("turn 1: ")
    user = harness.conversation.memory.history[0]
    assert user.content.split() == ["blah"] * 4  # one user message, every part of it
    assert [r.turn_id for r in harness.metrics.records] == [1]


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
    assert harness.spoken_replies == ["Hi.", "Nice to meet you."]
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
    # The stream sees its cancellation at its next word, maybe after the conversation stopped.
    assert eventually(lambda: 0 in harness.llm.cancelled)
    # It may have been synthesised ahead, but never said nor played.
    assert assistant_lines(harness) == ["It is far."]
    assert harness.heard() == ["reply"] * -(-640 * len(["It", "is", "far."]) // 512)


def run_until_synthesised_ahead(question: str, reply: str) -> Harness:
    """One turn whose audio clock stops 0.25 s into the final silence (past the pause, before
    its end) until the reply's first batch was synthesised: it never resumes otherwise."""
    ref: list[Harness] = []
    synthesised_ahead = Frozen(lambda: len(ref[0].tts.spoken) > 2)
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.25), synthesised_ahead,
         *silence_blocks(0.6)],
        {1: question},
        [reply],
        argv=["--enable_live_transcription", "false"],
    )  # fmt: skip
    ref.append(harness)
    harness.run()
    assert synthesised_ahead.met.is_set()
    return harness


def test_the_first_sentence_is_synthesised_before_the_turn_is_over() -> None:
    harness = run_until_synthesised_ahead("What time is it?", "Noon, more or less. It is twelve.")
    assert harness.console.lines[-3:] == [
        "USER: What time is it?", "ASSISTANT: Noon, more or less.", "ASSISTANT: It is twelve."
    ]  # fmt: skip
    # Each batch synthesised once: the turn's worker took over what was spoken ahead.
    assert harness.spoken_replies == ["Noon, more or less.", "It is twelve."]
    assert len(harness.llm.requests) == 1 and harness.llm.cancelled == []
    assert harness.conversation.memory.history[-1] == ChatMessage(
        "assistant", "Noon, more or less. It is twelve."
    )
    (record,) = harness.metrics.records
    assert record.outcome == "answered" and record.first_batch_ms is not None


def test_a_reply_that_ends_before_its_first_cut_is_synthesised_before_the_turn_is_over() -> None:
    # "4." may yet be "4.5": the batcher waits for what follows, and here nothing does.
    harness = run_until_synthesised_ahead("What is two plus two?", "It is 4.")
    assert harness.spoken_replies == ["It is 4."]  # synthesised once, not again by the worker
    assert len(harness.llm.requests) == 1 and harness.llm.cancelled == []
    assert harness.conversation.memory.history[-1] == ChatMessage("assistant", "It is 4.")


def test_prefetching_can_be_turned_off() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref), {1: "one", 2: "two"}, ["Uno.", "Dos."],
        argv=["--prefetch_replies", "false"],
    )  # fmt: skip
    ref.append(harness)
    harness.run()
    assert [r[-1].content for r in harness.llm.requests] == ["one", "two"]
    assert harness.spoken_replies == ["Uno.", "Dos."]


@pytest.mark.parametrize("broken", ["user", "assistant"])  # the recogniser's thread, a reply's
def test_a_bug_in_a_stage_stops_the_conversation_and_says_so(broken: str) -> None:
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.8), lambda: False],
        {1: "hi"},
        ["Hello."],
    )

    def bug(text: str) -> None:
        raise AttributeError("a bug")

    console = FakeConsole()
    setattr(console, broken, bug)
    harness.agent.adapters.console.override(console)
    harness.conversation.start()
    assert harness.conversation.wait(5), "a crashed stage must not leave the agent hanging"
    harness.conversation.stop()
    assert harness.conversation.fault is not None and "crashed" in harness.conversation.fault


def test_a_reply_that_loops_is_ended_and_the_agent_listens_again() -> None:
    ref: list[Harness] = []
    harness = make_harness(
        two_turn_script(ref), {1: "Help me.", 2: "Thanks?"},
        [" ".join(["You're not too helpful."] * 200), "You're welcome."],
        argv=["--stream_batch_sentences", "1"],
    )  # fmt: skip
    ref.append(harness)
    harness.run()
    looped, answered = harness.metrics.records
    assert looped.outcome == "answered"
    # Cut at the third time round (word by word, the third sentence was whole before the
    # next word showed the loop); what is stored is exactly what was spoken.
    assert looped.assistant_text == " ".join(["You're not too helpful."] * 3)
    assert harness.spoken_replies == ["You're not too helpful."] * 3 + ["You're welcome."]
    assert 0 in harness.llm.cancelled  # the model was told to stop
    assert harness.conversation.memory.history[1] == ChatMessage("assistant", looped.assistant_text)
    assert answered.assistant_text == "You're welcome."


SMART_TURN = ["--turn_detection", "smart-turn", "--enable_live_transcription", "false"]


def test_a_turn_the_model_hears_as_complete_ends_after_a_short_silence() -> None:
    ref: list[Harness] = []
    # 0.3 s of silence: the silence policy (500 ms) would have joined the two utterances.
    script = [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.3), listening_again(ref),
              *speech(2, 1.0), *silence_blocks(0.5)]  # fmt: skip
    harness = make_harness(
        script, {1: "What time is it?", 2: "Thanks."}, ["Noon.", "You're welcome."],
        argv=SMART_TURN, end_of_turn=FakeEndOfTurn(complete_codes={1, 2}),
    )  # fmt: skip
    ref.append(harness)
    harness.run()
    assert [m.content for m in harness.conversation.memory.history if m.role == "user"] == [
        "What time is it?",
        "Thanks.",
    ]
    assert harness.end_of_turn.asked[0] == [1]
    # The speculative transcript, started at the pause before the question, was the final one.
    assert harness.stt.finals == ["What time is it?", "Thanks."]


def test_a_pause_the_model_hears_as_unfinished_does_not_cut_the_user_off() -> None:
    # 1.2 s of thinking in the middle: the silence policy would have ended the turn there.
    script = [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(1.2), *speech(2, 1.0),
              *silence_blocks(0.5)]  # fmt: skip
    end_of_turn = FakeEndOfTurn(complete_codes={2})
    harness = make_harness(
        script, {1: "I'd like a table for", 2: "four."}, ["For four, done."],
        argv=SMART_TURN, end_of_turn=end_of_turn,
    )  # fmt: skip
    harness.run()
    first = harness.conversation.memory.history[0]
    assert first == ChatMessage("user", "I'd like a table for four.")
    # Asked four times during the pause (at 224 ms, then every 320 ms), once at the end.
    assert end_of_turn.asked == [[1]] * 4 + [[1, 2]]


def test_the_model_is_overruled_by_the_longest_silence() -> None:
    end_of_turn = FakeEndOfTurn(complete_codes=set())  # never sure the user finished
    harness = make_harness(
        [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(2.0)],
        {1: "Hmm."}, ["Take your time."],
        argv=[*SMART_TURN, "--smart_turn_max_silence_ms", "1000"], end_of_turn=end_of_turn,
    )  # fmt: skip
    harness.run()
    assert harness.conversation.memory.history[0] == ChatMessage("user", "Hmm.")
    assert len(end_of_turn.asked) == 3  # at 224, 544 and 864 ms; the turn ended at 1024 ms


TRANSCRIPT_TURN = ["--turn_detection", "transcript", "--enable_live_transcription", "false"]


def pause_judged(ref: list[Harness], requests: int) -> Frozen:
    """Holds the audio clock from the pause until its transcript came back (the reply asked
    for it is asked after it is handed to the listen thread), as a real recogniser's ~100 ms
    would within the silence."""
    return Frozen(lambda: len(ref[0].llm.requests) >= requests)


def judged_by_transcript(
    script: Callable[[list[Harness]], list[object]], transcripts: dict[int, str],
    replies: list[str],
) -> Harness:  # fmt: skip
    ref: list[Harness] = []
    harness = make_harness(script(ref), transcripts, replies, argv=TRANSCRIPT_TURN)
    ref.append(harness)
    harness.run()
    return harness


def test_a_finished_question_ends_the_turn_after_a_short_silence() -> None:
    # 0.3 s of silence: the usual 500 ms would have joined the two utterances.
    harness = judged_by_transcript(
        lambda ref: [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.064),
                     pause_judged(ref, 1), *silence_blocks(0.25), listening_again(ref),
                     *speech(2, 1.0), *silence_blocks(0.064), pause_judged(ref, 2),
                     *silence_blocks(0.6)],
        {1: "What time is it?", 2: "Thanks."}, ["Noon.", "You're welcome."],
    )  # fmt: skip
    assert [m.content for m in harness.conversation.memory.history if m.role == "user"] == [
        "What time is it?",
        "Thanks.",
    ]
    # The pause's transcript was the final one, and the reply asked for it the one spoken.
    assert harness.stt.finals == ["What time is it?", "Thanks."]
    assert harness.spoken_replies == ["Noon.", "You're welcome."]


def test_words_that_trail_off_wait_out_a_thinking_pause() -> None:
    # 0.8 s of thinking after "for": the usual 500 ms would have ended the turn there.
    harness = judged_by_transcript(
        lambda ref: [*silence_blocks(0.3), *speech(1, 1.0), *silence_blocks(0.064),
                     pause_judged(ref, 1), *silence_blocks(0.75), *speech(2, 0.5),
                     *silence_blocks(0.7)],
        {1: "I'd like a table for", 2: "four."}, ["A table?", "For four, done."],
    )  # fmt: skip
    assert harness.conversation.memory.history == [
        ChatMessage("user", "I'd like a table for four."),
        ChatMessage("assistant", "For four, done."),
    ]
    # The reply asked for at the pause answered half a sentence: it was dropped unheard.
    assert harness.llm.requests[0][-1] == ChatMessage("user", "I'd like a table for")
    assert harness.metrics.records[0].assistant_text == "For four, done."
