"""The listen thread: audio events -> hearing (mute policy, VAD, segmenter) -> transcription
jobs; the echoes of playback marks; the watchdog's clock and due reminders; and barge-in, whose
pause, resume and confirmed interruption are carried out here, in one place.

Every turn belongs to the conversation (`TurnDesk`): this thread asks it for the turn that
audio belongs to, tells it what the user did, and never touches a turn's life itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from application.hearing import Hearing
from application.interrupting import BargeInAdmission, Confirmed, Interrupting
from application.prefetching import Prefetching
from application.transcription import JobQueue
from application.turn import Turn
from domain import listening as transitions
from domain.audio import AudioFailed, EndOfInput, MicBlock, PlaybackMark, ReplyDone, ReplyVoiced
from domain.barge_in import BargeInConfig, Decision
from domain.listening import Transition
from domain.messages import FinalTranscript
from domain.transcription_jobs import ConfirmJob, LiveJob, PauseJob, TurnEndJob, TurnPartJob
from domain.turn import MAX_USER_CHARS
from domain.turn_segmentation import (
    SpeechOngoing,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnEvent,
    VadConfig,
)
from ports import AudioDuplex, Clock, Console, EndOfTurn, VoiceActivity

log = logging.getLogger(__name__)

POLL_S = 0.05


class TurnDesk(Protocol):
    """What the listen thread asks of the conversation, which owns the turns."""

    @property
    def should_listen(self) -> bool: ...

    @property
    def idle(self) -> bool:
        """No turn in flight and nothing left to transcribe: input that ended may stop."""
        ...

    def fire(self, transition: Transition) -> None: ...

    def current_turn(self) -> Turn | None: ...

    def turn_for(self, ended: TurnEnded) -> Turn:
        """The turn this audio belongs to (a long turn cut in parts keeps one)."""
        ...

    def open_turn(self, turn_id: int) -> Turn | None: ...

    def played_out(self, turn: Turn) -> None:
        """The last of `turn`'s audio played."""
        ...

    def check_watchdog(self) -> None: ...

    def remind(self, user_silent_s: float) -> None:
        """A due reminder is said now if the moment is quiet."""
        ...

    def interrupted(self, turn: Turn, latency_ms: float) -> str:
        """The user's words confirmed the interruption of `turn`: closed, with what the user
        heard of its reply (returned)."""
        ...

    def turn_heard(self, turn: Turn, transcript: FinalTranscript) -> None: ...


class Listening:
    def __init__(
        self,
        audio: AudioDuplex,
        vad: VoiceActivity,
        end_of_turn: EndOfTurn | None,
        jobs: JobQueue,
        prefetching: Prefetching,
        desk: TurnDesk,
        clock: Clock,
        console: Console,
        *,
        vad_config: VadConfig,
        barge_in: BargeInConfig | None,
        listens: bool,
        live_transcription: bool,
        halt: Callable[[str], None],
    ) -> None:
        """`barge_in`: None is half duplex; `listens`: False in text mode, where the microphone
        makes no turn; `halt(fault)` stops the conversation when the device is lost for good."""
        admission = None if barge_in is None else BargeInAdmission(barge_in)
        self._hearing = Hearing(vad, vad_config, end_of_turn, admission)
        self._interrupting = (
            None if admission is None
            else Interrupting(
                admission, audio, jobs.put, self._hearing.forget,
                resumed=lambda: console.speech_stopped(turn_ended=False),
            )
        )  # fmt: skip
        self._audio, self._jobs = audio, jobs
        self._prefetching, self._desk, self._clock, self._console = (
            prefetching,
            desk,
            clock,
            console,
        )
        self._listens, self._live_transcription, self._halt = listens, live_transcription, halt
        self.audio_now_s = 0.0  # the audio clock: the last mic block's time

    def run(self, stop: threading.Event) -> None:
        input_ended = False
        while not stop.is_set():
            event = self._audio.next_event(POLL_S)
            self._desk.check_watchdog()
            self._desk.remind(self._hearing.silent_s(self.audio_now_s))
            self._take_confirmations()
            self._judge_pauses()
            if isinstance(event, MicBlock):
                self.audio_now_s = event.captured_at_s
                if self._listens:
                    self._hear(event)
            elif isinstance(event, PlaybackMark):
                self._on_mark(event)
            elif isinstance(event, EndOfInput):
                input_ended = True
                self._segmented(self._hearing.end_of_input())
            elif isinstance(event, AudioFailed):
                self._console.notice(event.reason)
                self._halt(event.reason)
            if input_ended and self._desk.idle:
                stop.set()

    def interruption_heard(self, job: ConfirmJob, transcript: FinalTranscript) -> None:
        """From the recogniser's thread; handled on the listen thread."""
        if self._interrupting is not None:
            self._interrupting.heard(job, transcript)

    def forget(self, turn: Turn) -> None:
        """`turn` closed: a pause of its reply is over."""
        if self._interrupting is not None:
            self._interrupting.forget(turn)

    def _hear(self, block: MicBlock) -> None:
        heard = self._hearing.hear(block, should_listen=self._desk.should_listen)
        interrupting = self._interrupting
        if interrupting is not None:
            if heard.decision is Decision.PAUSE:
                self._console.speech_started()
                interrupting.pause(self._desk.current_turn())
            elif heard.decision is Decision.RESUME:
                interrupting.resume()
            elif interrupting.current is not None:
                interrupting.listen(block.pcm)
        self._segmented(heard.events)

    def _judge_pauses(self) -> None:
        """A pause's transcript may end the turn, if the user is still silent in that pause."""
        for transcript in self._prefetching.to_judge():
            self._segmented(self._hearing.transcribed(transcript.text, transcript.language))

    def _segmented(self, events: list[TurnEvent]) -> None:
        for event in events:
            if self._paused() and not isinstance(event, SpeechOngoing):
                assert self._interrupting is not None
                self._interrupting.segmented(event)
            elif isinstance(event, SpeechStarted):
                self._console.speech_started()
                self._desk.fire(transitions.SPEECH_STARTED)
            elif isinstance(event, SpeechOngoing):
                if self._live_transcription:
                    self._jobs.put(LiveJob(event.audio))
            elif isinstance(event, SpeechPaused):
                self._jobs.put(PauseJob(event.audio, self._prefetching.paused()))
            elif isinstance(event, SpeechResumed):
                self._prefetching.resumed()
            elif event.continues:
                turn = self._desk.turn_for(event)
                if event.part == 0:
                    log.warning(
                        "turn %d: %.0f s of speech without a pause (a television nearby?): "
                        "transcribed in parts (--max_speech_ms), the reply answers its last "
                        "%d characters", turn.id, event.speech_end_s - event.speech_start_s,
                        MAX_USER_CHARS,
                    )  # fmt: skip
                self._jobs.put(TurnPartJob(turn.id, event.audio))
            else:
                turn = self._desk.turn_for(event)
                turn.stt_start = self._clock.now()  # the wait the user feels starts here
                self._desk.fire(transitions.TURN_ENDED)
                self._console.speech_stopped()
                self._jobs.put(TurnEndJob(turn.id, event.audio, event.after_pause))

    def _on_mark(self, echo: PlaybackMark) -> None:
        turn = self._desk.open_turn(echo.mark.turn_id)
        if turn is None:
            return  # the echo of a turn already closed (watchdog, stop)
        if isinstance(echo.mark, ReplyVoiced):
            turn.voiced_played_s = echo.played_at_s
        elif isinstance(echo.mark, ReplyDone):
            self._desk.played_out(turn)

    # -- barge-in ----------------------------------------------------------------------------

    def _paused(self) -> bool:
        return self._interrupting is not None and self._interrupting.current is not None

    def _take_confirmations(self) -> None:
        if self._interrupting is None:
            return
        while (confirmed := self._interrupting.confirmed(self.audio_now_s)) is not None:
            self._interrupt(confirmed)

    def _interrupt(self, confirmed: Confirmed) -> None:
        """Confirmed: the reply is cancelled, the history keeps what the user heard of it, and
        the user's speech is the next turn (`whole`: they have already finished it)."""
        interruption, whole = confirmed.interruption, confirmed.whole
        heard = self._desk.interrupted(interruption.turn, interruption.latency_ms)
        self._audio.pause_playback(False)
        log.info("interrupted by the user after: %r", heard)
        held = interruption.held
        if held is None:
            return  # the user is still speaking: their turn ends as any other
        if whole is None:  # confirmed by what they said so far: their turn is transcribed whole
            self._segmented([held])
            return
        new_turn = self._desk.turn_for(held)
        new_turn.stt_start = new_turn.stt_end = self._clock.now()
        self._desk.fire(transitions.TURN_ENDED)
        self._desk.turn_heard(new_turn, whole)
