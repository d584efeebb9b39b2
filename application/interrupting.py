"""Barge-in, all of it on the listen thread: which blocks are watched while the reply plays,
the reply paused because the user spoke over it, and the questions to the recogniser that
confirm the interruption or call it off.

`BargeInAdmission` answers the hearing stage's admission protocol, as half duplex does: the
barge-in policy (domain/barge_in.py) and the watched blocks, from which an interruption is heard
again from its pre-roll. `Interrupting` carries the policy's decisions out: it pauses playback,
collects what the user says after the pause and asks for its transcript (every CONFIRM_EVERY_S
of their speech, and their whole turn once they stop). Words confirm the interruption, which the
listen thread then carries out; an empty transcript of the whole turn resumes the reply where it
paused. Transcripts arrive on the recogniser's thread and are handled on the listen thread.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Callable

import attrs

from application.hearing import Watched
from application.turn import Turn
from domain.audio import BLOCK_SECONDS, BYTES_PER_SAMPLE, SAMPLE_RATE, MicBlock
from domain.barge_in import BargeIn, BargeInConfig, Decision
from domain.messages import FinalTranscript
from domain.mute_policy import Admission
from domain.transcription_jobs import ConfirmJob, TranscriptionJob
from domain.turn_segmentation import TurnEnded, TurnEvent
from ports import AudioDuplex

log = logging.getLogger(__name__)

# A paused reply asks the recogniser whether the user is saying words after this much of their
# speech following the pause (and again after as much more, while unconfirmed).
CONFIRM_EVERY_S = 0.6


class BargeInAdmission:
    """The barge-in policy and the blocks it watched, behind the hearing stage's admission
    protocol (`hearing.Admitting`)."""

    def __init__(self, config: BargeInConfig) -> None:
        self.policy = BargeIn(config)
        # Enough watched blocks to hand the segmenter the interruption with its pre-roll.
        keep_s = (config.preroll_ms + config.min_interruption_ms) / 1000
        self._watched: deque[tuple[bytes, float, float]] = deque(
            maxlen=int(keep_s / BLOCK_SECONDS) + 2
        )
        self._expired = False  # the pause ran out: the next watched block resumes

    def admit(self, block: MicBlock, should_listen: bool) -> Admission:
        at_s = block.captured_at_s
        admission = self.policy.admit(playing=block.playing, should_listen=should_listen, at_s=at_s)
        if admission is Admission.DROP:
            return admission
        if admission is Admission.HEAR_AFRESH:
            self._watched.clear()
        if self.policy.expired(at_s) is Decision.RESUME:  # a cough, a door: forget it
            self._expired = True
            return Admission.WATCH
        return admission

    def watched(self, block: MicBlock, probability: float) -> Watched:
        at_s = block.captured_at_s
        self._watched.append((block.pcm, probability, at_s))
        decision = self.policy.watched(probability, at_s)
        if self._expired:
            self._expired = False
            return Watched(Decision.RESUME)
        if decision is not Decision.PAUSE:
            return Watched(decision)
        since = self.policy.preroll_from_s()
        replay = [watched for watched in self._watched if watched[2] >= since]
        self._watched.clear()
        return Watched(Decision.PAUSE, replay)

    def rejected(self, at_s: float) -> bool:
        """What the user said came out empty: True if playback resumes now."""
        return self.policy.reject(at_s) is Decision.RESUME


@attrs.define
class Interruption:
    """A pause of the reply, not yet confirmed."""

    number: int
    turn: Turn
    latency_ms: float
    after: bytearray = attrs.Factory(bytearray)  # the user's speech since the pause
    asked_at: int = 0  # len(after) when a transcript was last asked for
    in_flight: bool = False
    held: TurnEnded | None = None  # the user stopped speaking: their whole turn


@attrs.frozen
class Confirmed:
    """Words confirmed `interruption`; `whole` is the transcript of the user's whole turn when
    they had finished it (it answers the new turn too), else None."""

    interruption: Interruption
    whole: FinalTranscript | None


class Interrupting:
    def __init__(
        self,
        admission: BargeInAdmission,
        audio: AudioDuplex,
        ask: Callable[[TranscriptionJob], None],
        forget: Callable[[], None],
        resumed: Callable[[], None],
    ) -> None:
        """`ask` queues a job for the recogniser; `forget` tells the segmenter that what it
        holds is no turn (the user's speech came out empty); `resumed` is told when a pause
        ends with the reply going on."""
        self._admission, self._audio, self._ask, self._forget = admission, audio, ask, forget
        self._resumed = resumed
        self.current: Interruption | None = None
        self._count = 0
        self._transcripts: queue.SimpleQueue[tuple[ConfirmJob, FinalTranscript]] = (
            queue.SimpleQueue()
        )

    def pause(self, turn: Turn | None) -> None:
        """The user spoke over `turn`'s reply: pause it (from the next block on) until what
        they say is transcribed. None: the turn closed meanwhile, nothing to pause."""
        if turn is None:
            return
        self._audio.pause_playback(True)
        start, paused = self._admission.policy.speech_start_s, self._admission.policy.paused_at_s
        assert start is not None and paused is not None
        self._count += 1
        self.current = Interruption(self._count, turn, round((paused - start) * 1000, 1))
        log.info("the user may be interrupting: reply paused (%.0f ms after speech)",
                 self.current.latency_ms)  # fmt: skip

    def resume(self) -> None:
        """Nothing confirmed the pause: the reply goes on where it stopped."""
        interruption, self.current = self.current, None
        self._audio.pause_playback(False)
        if interruption is not None:
            interruption.turn.false_interruptions += 1
            log.info("no words in the interruption: reply resumed")
            self._resumed()

    def forget(self, turn: Turn) -> None:
        """`turn` closed while paused (the watchdog, stop, a confirmed interruption)."""
        if self.current is not None and self.current.turn is turn:
            self.current = None
            self._audio.pause_playback(False)

    def listen(self, pcm: bytes) -> None:
        """A block of the user's speech after the pause."""
        interruption = self.current
        assert interruption is not None
        interruption.after += pcm
        every = round(CONFIRM_EVERY_S * SAMPLE_RATE) * BYTES_PER_SAMPLE
        if interruption.in_flight or len(interruption.after) < interruption.asked_at + every:
            return
        interruption.asked_at = len(interruption.after)
        interruption.in_flight = True
        self._ask(ConfirmJob(interruption.number, bytes(interruption.after), whole_turn=False))

    def segmented(self, event: TurnEvent) -> None:
        """Segmentation while paused: the user's turn is not theirs yet (nothing is prefetched,
        no turn is made) until their words confirm the interruption."""
        interruption = self.current
        assert interruption is not None
        if isinstance(event, TurnEnded) and interruption.held is None:
            interruption.held = event
            interruption.in_flight = True
            self._ask(ConfirmJob(interruption.number, event.audio, whole_turn=True))

    def heard(self, job: ConfirmJob, transcript: FinalTranscript) -> None:
        """From the recogniser's thread."""
        self._transcripts.put((job, transcript))

    def confirmed(self, now_s: float) -> Confirmed | None:
        """The transcripts in so far, taken on the listen thread at audio time `now_s`: an
        interruption their words confirm, if any; an empty whole turn resumes the reply."""
        while True:
            try:
                job, transcript = self._transcripts.get_nowait()
            except queue.Empty:
                return None
            interruption = self.current
            if interruption is None or job.interruption != interruption.number:
                continue  # resumed or closed meanwhile
            interruption.in_flight = False
            if transcript.is_empty:
                if job.whole_turn and self._admission.rejected(now_s):
                    self._forget()
                    self.resume()
                continue
            if self._admission.policy.confirm():
                self.current = None
                return Confirmed(interruption, transcript if job.whole_turn else None)
