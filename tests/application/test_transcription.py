"""The recogniser's stage: a decode that hangs costs its own job, never the jobs behind it, and a
recogniser that falls behind drops provisional jobs, never a turn's own."""

from __future__ import annotations

import logging
import threading

import pytest

from application.transcription import MAX_WAITING_JOBS, Transcription
from application.turn import Turn
from domain.messages import FinalTranscript
from domain.transcription_jobs import ConfirmJob, PauseJob, TurnEndJob
from tests.application.harness import Harness, make_harness
from tests.application.test_conversation import eventually, two_turn_script
from tests.fakes import FakeClock, FakeConsole, FakeSpeechToText, Hanging, speech

HUNG = 9  # the utterance the recogniser hangs on
TIMEOUT_S = 0.2


class Heard:
    """A TranscriptSink that records what the stage handed over; every turn is open. `done` is
    set once turn `last_turn` was heard."""

    def __init__(self, last_turn: int) -> None:
        self._last_turn = last_turn
        self.pauses: list[int] = []
        self.turns: list[tuple[int, str]] = []
        self.confirmations: list[tuple[int, str]] = []
        self.failed: list[tuple[int, str]] = []
        self.done = threading.Event()

    def open_turn(self, turn_id: int) -> Turn | None:
        return Turn(turn_id, 0.0)

    def partial_heard(self, text: str) -> None:
        pass

    def pause_transcribed(self, pause: int, transcript: FinalTranscript) -> None:
        self.pauses.append(pause)

    def speculation(self, after_pause: bool) -> FinalTranscript | None:
        return None

    def turn_part_heard(self, turn: Turn, transcript: FinalTranscript) -> None:
        self.turns.append((turn.id, transcript.text))

    def turn_heard(self, turn: Turn, transcript: FinalTranscript) -> None:
        self.turns.append((turn.id, transcript.text))
        if turn.id == self._last_turn:
            self.done.set()

    def fail(self, turn: Turn, stage: str, error: Exception) -> None:
        self.failed.append((turn.id, f"{stage}: {error}"))

    def interruption_heard(self, job: ConfirmJob, transcript: FinalTranscript) -> None:
        self.confirmations.append((job.interruption, transcript.text))


def audio_of(code: int) -> bytes:
    return b"".join(speech(code, 0.1))


def run_until(stage: Transcription, done: threading.Event) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stage.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert done.wait(5), "the stage did not get through its jobs"
    finally:
        stop.set()
        thread.join(1)


def a_stage(stt: FakeSpeechToText, heard: Heard) -> Transcription:
    return Transcription(
        stt, FakeConsole(), FakeClock(), heard, live_transcription=False,
        decode_timeout_s=TIMEOUT_S,
    )  # fmt: skip


def test_a_hung_decode_is_abandoned_and_the_jobs_behind_it_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hung = Hanging(threading.Event(), timeout_s=10)
    stt = FakeSpeechToText({1: "one", 2: "two"})
    stt.hang_on[HUNG] = hung
    heard = Heard(last_turn=2)
    stage = a_stage(stt, heard)
    for job in (
        PauseJob(audio_of(HUNG), pause=1),  # a speculation lost: the turn's decode tries again
        TurnEndJob(1, audio_of(HUNG), after_pause=True),  # fails its turn
        ConfirmJob(1, audio_of(HUNG), whole_turn=False),  # unconfirmed: playback resumes
        PauseJob(audio_of(1), pause=2),
        ConfirmJob(2, audio_of(1), whole_turn=False),
        TurnEndJob(2, audio_of(2), after_pause=False),
    ):
        stage.jobs.put(job)
    with caplog.at_level(logging.WARNING):
        try:
            run_until(stage, heard.done)
        finally:
            hung.release.set()  # the abandoned decodes answer now: nobody reads them
    assert hung.woke.wait(5)
    assert heard.failed == [(1, f"stt: no answer within {TIMEOUT_S:g} s (abandoned)")]
    assert heard.turns == [(2, "two")]
    assert heard.pauses == [2]
    assert heard.confirmations == [(1, ""), (2, "one")]
    abandoned = [r for r in caplog.records if "decode abandoned" in r.getMessage()]
    assert len(abandoned) == 3  # one line for each decode given up


def test_a_recogniser_behind_drops_the_oldest_provisional_jobs_first() -> None:
    heard = Heard(last_turn=1)
    stage = a_stage(FakeSpeechToText({1: "one"}), heard)
    for pause in range(3 * MAX_WAITING_JOBS):
        stage.jobs.put(PauseJob(audio_of(1), pause))
    stage.jobs.put(TurnEndJob(1, audio_of(1), after_pause=False))
    run_until(stage, heard.done)
    # The turn's job took the place of the oldest pause still waiting.
    assert heard.pauses == list(range(2 * MAX_WAITING_JOBS + 1, 3 * MAX_WAITING_JOBS))
    assert heard.turns == [(1, "one")]


def test_a_turns_own_jobs_and_confirmations_are_never_dropped() -> None:
    heard = Heard(last_turn=99)
    stage = a_stage(FakeSpeechToText({1: "one"}), heard)
    turns = range(1, 2 * MAX_WAITING_JOBS)
    for turn_id in turns:
        stage.jobs.put(TurnEndJob(turn_id, audio_of(1), after_pause=False))
    stage.jobs.put(PauseJob(audio_of(1), 1))  # no room, and no provisional job to take: dropped
    stage.jobs.put(ConfirmJob(7, audio_of(1), whole_turn=False))
    stage.jobs.put(TurnEndJob(99, audio_of(1), after_pause=False))
    run_until(stage, heard.done)
    assert heard.turns == [(turn_id, "one") for turn_id in (*turns, 99)]
    assert heard.confirmations == [(7, "one")]
    assert heard.pauses == []


def test_a_turn_whose_decode_hangs_is_apologised_for_and_the_next_is_answered() -> None:
    ref: list[Harness] = []
    hung = Hanging(threading.Event(), timeout_s=10)
    harness = make_harness(
        two_turn_script(ref), {1: "lost", 2: "Second try."}, ["Got it."],
        argv=["--stt_timeout_s", str(TIMEOUT_S)],
    )  # fmt: skip
    harness.stt = FakeSpeechToText({2: "Second try."})
    harness.stt.hang_on[1] = hung
    harness.agent.adapters.stt.override(harness.stt)
    ref.append(harness)
    harness.conversation.start()
    try:
        assert eventually(lambda: len(harness.metrics.records) == 1, 5)
        hung.release.set()  # the abandoned decodes answer now, their turn long closed
        assert hung.woke.wait(5)
        assert harness.conversation.wait(10)
    finally:
        hung.release.set()
        harness.conversation.stop()
    failed, answered = harness.metrics.records
    assert failed.outcome == "failed" and failed.error is not None
    assert failed.error == f"stt: no answer within {TIMEOUT_S:g} s (abandoned)"
    assert (answered.user_text, answered.outcome) == ("Second try.", "answered")
    assert harness.heard_runs() == ["apology", "reply"]
    assert [r[-1].content for r in harness.llm.requests] == ["Second try."]
    assert not harness.conversation.crashed
