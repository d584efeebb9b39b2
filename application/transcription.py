"""The recogniser's thread: transcription jobs in, transcripts handed to the conversation.

Live jobs feed the updating line and the prompt read ahead, and are skipped when a newer job
waits; a pause job's transcript may become the turn's final one (and start the reply early);
turn jobs carry the turn's own audio. A turn closed meanwhile (the watchdog, stop) gets nothing
more. Each decode is bounded in time (application/decoding.py): one that hangs is abandoned,
fails its turn if it was the turn's own, and the jobs behind it go on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Protocol

from application.decoding import Decoder
from application.turn import Turn
from domain.messages import FinalTranscript
from domain.transcription_jobs import (
    ConfirmJob,
    LiveJob,
    PauseJob,
    ProvisionalJob,
    TranscriptionJob,
    TurnEndJob,
    TurnPartJob,
)
from ports import Clock, Console, SpeechToText

log = logging.getLogger(__name__)

POLL_S = 0.05
# At most this many jobs wait, a turn's own and confirmations apart: far more than a recogniser
# that keeps up leaves waiting (two or three), few enough that what waits is still worth doing.
MAX_WAITING_JOBS = 8


class TranscriptSink(Protocol):
    """What the conversation does with transcripts."""

    def open_turn(self, turn_id: int) -> Turn | None:
        """The turn, while it is open."""
        ...

    def partial_heard(self, text: str) -> None:
        """The user's words so far (a live transcript)."""
        ...

    def pause_transcribed(self, pause: int, transcript: FinalTranscript) -> None: ...

    def speculation(self, after_pause: bool) -> FinalTranscript | None:
        """The transcript of the pause the turn ended in, when one is in hand."""
        ...

    def turn_part_heard(self, turn: Turn, transcript: FinalTranscript) -> None: ...

    def turn_heard(self, turn: Turn, transcript: FinalTranscript) -> None: ...

    def fail(self, turn: Turn, stage: str, error: Exception) -> None: ...

    def interruption_heard(self, job: ConfirmJob, transcript: FinalTranscript) -> None:
        """Barge-in: the transcript that confirms (non-empty) an interruption, or not."""
        ...


class JobQueue:
    """The recogniser's jobs, bounded, and never a wait for the listen thread that puts them.
    When `bound` jobs wait, a new job takes the place of the oldest provisional one; with none
    to take, a new provisional job is dropped. A turn's own jobs and confirmations are never
    dropped: they alone may go over the bound, and there are only ever a few (one turn is open
    at a time, an interruption asks one question at a time, and the jobs of a closed turn are
    skipped without a decode)."""

    def __init__(self, bound: int = MAX_WAITING_JOBS) -> None:
        self._bound = bound
        self._jobs: deque[TranscriptionJob] = deque()
        self._ready = threading.Condition()

    def put(self, job: TranscriptionJob) -> None:
        with self._ready:
            if len(self._jobs) >= self._bound:
                provisional = [j for j in self._jobs if isinstance(j, ProvisionalJob)]
                if provisional:
                    self._jobs.remove(provisional[0])
                elif isinstance(job, ProvisionalJob):
                    log.debug("the recogniser is behind: a provisional job is dropped")
                    return
                else:
                    log.warning("the recogniser is %d jobs behind", len(self._jobs))
            self._jobs.append(job)
            self._ready.notify()

    def get(self, timeout_s: float) -> TranscriptionJob | None:
        with self._ready:
            if not self._jobs:
                self._ready.wait(timeout_s)
            return self._jobs.popleft() if self._jobs else None

    def empty(self) -> bool:
        with self._ready:
            return not self._jobs


class Transcription:
    def __init__(
        self,
        stt: SpeechToText,
        console: Console,
        clock: Clock,
        sink: TranscriptSink,
        *,
        live_transcription: bool,
        decode_timeout_s: float,
    ) -> None:
        self._stt, self._console, self._clock, self._sink = stt, console, clock, sink
        self._live = live_transcription
        self._decode = Decoder(decode_timeout_s)
        self.jobs = JobQueue()

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                job = self.jobs.get(POLL_S)
                if isinstance(job, LiveJob):
                    if self.jobs.empty():  # a newer request makes this one stale
                        self._show_live(job.audio)
                elif isinstance(job, PauseJob):
                    self._transcribe_pause(job)
                elif isinstance(job, ConfirmJob):
                    self._confirm(job)
                elif job is not None:
                    self._transcribe_turn(job)
        finally:
            self._decode.close()

    @property
    def idle(self) -> bool:
        return self.jobs.empty()

    def _show_live(self, audio: bytes) -> None:
        try:
            text = self._decode(self._stt.transcribe_partial, audio).text
        except Exception as error:  # a provisional transcript is a nicety, never a failure
            log.debug("partial transcription failed: %s", error)
            return
        self._console.live(text)
        self._sink.partial_heard(text)

    def _transcribe_pause(self, job: PauseJob) -> None:
        try:
            transcript = self._decode(self._stt.transcribe, job.audio)
        except Exception as error:  # the turn's own decode will try again
            log.debug("speculative transcription failed: %s", error)
            return
        if self._live:
            self._console.live(transcript.text)
        self._sink.pause_transcribed(job.pause, transcript)

    def _confirm(self, job: ConfirmJob) -> None:
        try:
            transcript = self._decode(self._stt.transcribe, job.audio)
        except Exception as error:  # unconfirmed: playback resumes, as after a cough
            log.warning("transcribing an interruption failed: %s", error)
            transcript = FinalTranscript("")
        self._sink.interruption_heard(job, transcript)

    def _transcribe_turn(self, job: TurnPartJob | TurnEndJob) -> None:
        turn = self._sink.open_turn(job.turn_id)
        if turn is None:
            return  # closed meanwhile: nothing of it is wanted any more
        try:
            transcript = None
            if isinstance(job, TurnEndJob):
                # Transcribed from the whole speech of the turn during the pause that ended
                # it: the final transcript, early, not a fragment standing in for it.
                transcript = self._sink.speculation(job.after_pause)
            if transcript is None:
                transcript = self._decode(self._stt.transcribe, job.audio)
        except Exception as error:
            self._sink.fail(turn, "stt", error)
            return
        turn.stt_end = self._clock.now()
        if isinstance(job, TurnPartJob):
            self._sink.turn_part_heard(turn, transcript)
        else:
            self._sink.turn_heard(turn, transcript)
