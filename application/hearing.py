"""The listening stage: microphone blocks -> mute policy -> voice activity -> turn segmentation
(-> the end-of-turn model, when the turn ends on its word).

The mute policy (domain) decides which blocks the detector hears; after a stretch it did not,
the detector and the segmenter start afresh. Half duplex drops every block while the agent is
busy. With barge-in the blocks played over are *watched*: the detector hears them (the audio
adapter cancelled the agent's own voice), the segmenter does not, unless the user speaks long
enough to pause the reply; then the segmenter gets the speech from its pre-roll on, as if it had
been listening all along.

The pause's transcript comes back from the recogniser to the listening thread
(`transcribed`), where the segmenter judges it between two blocks.

The end-of-turn model is asked synchronously, in the listening thread: one call takes ~45 ms,
less than two blocks, which the audio adapter's queue holds meanwhile; the answer is then in
before the next block, so whether the user spoke again before it came is never in question, and
the segmenter stays a plain state machine.
"""

from __future__ import annotations

from collections import deque

import attrs

from domain.audio import BLOCK_SECONDS, MicBlock
from domain.barge_in import BargeIn, BargeInConfig, Decision
from domain.mute_policy import Admission, HalfDuplex
from domain.turn_segmentation import (
    SegmentationEvent,
    TurnEvent,
    TurnMayEnd,
    TurnSegmenter,
    VadConfig,
)
from ports import EndOfTurn, VoiceActivity


@attrs.frozen
class Heard:
    events: list[TurnEvent]
    decision: Decision = Decision.NONE  # barge-in: pause or resume playback


class Hearing:
    def __init__(
        self,
        vad: VoiceActivity,
        config: VadConfig,
        end_of_turn: EndOfTurn | None = None,
        barge_in: BargeInConfig | None = None,
    ) -> None:
        asks_audio = config.transcript_turn is not None and config.transcript_turn.ask_audio
        if (config.model_turn is not None or asks_audio) and end_of_turn is None:
            raise ValueError("turns ended by a model need an end-of-turn model")
        self._vad = vad
        self._end_of_turn = end_of_turn
        self._segmenter = TurnSegmenter(config)
        self._mute = HalfDuplex()
        self.barge_in = None if barge_in is None else BargeIn(barge_in)
        # Watched blocks, enough to hand the segmenter the interruption with its pre-roll.
        keep_s = 0.0 if barge_in is None else barge_in.preroll_ms + barge_in.min_interruption_ms
        self._watched: deque[tuple[bytes, float, float]] = deque(
            maxlen=int(keep_s / 1000 / BLOCK_SECONDS) + 2
        )

    def hear(self, block: MicBlock, *, should_listen: bool) -> Heard:
        if self.barge_in is None:
            admission = self._mute.admit(playing=block.playing, should_listen=should_listen)
        else:
            admission = self.barge_in.admit(
                playing=block.playing, should_listen=should_listen, at_s=block.captured_at_s
            )
        if admission is Admission.DROP:
            return Heard([])
        if admission is Admission.HEAR_AFRESH:
            self._afresh()
        resumed = False
        at_s = block.captured_at_s
        if self.barge_in is not None and self.barge_in.expired(at_s) is Decision.RESUME:
            self._segmenter.reset()  # a cough, a door: forget it
            admission, resumed = Admission.WATCH, True
        probability = self._vad.speech_probability(block.pcm)
        if admission is Admission.WATCH:
            heard = self._watch(block, probability)
            return Heard([], Decision.RESUME) if resumed else heard
        return Heard(self._answered(self._segmenter.feed(block.pcm, probability, at_s)))

    def resume(self, at_s: float) -> bool:
        """Barge-in: what the user said came out empty; True if playback is to resume now."""
        if self.barge_in is None or self.barge_in.reject(at_s) is not Decision.RESUME:
            return False
        self._segmenter.reset()
        return True

    def transcribed(self, text: str, language: str | None) -> list[TurnEvent]:
        """The transcript of the pause the user is still silent in: it may end the turn."""
        return self._answered(self._segmenter.transcribed(text, language))

    def end_of_input(self) -> list[TurnEvent]:
        return self._segmenter.end_of_input()

    def _afresh(self) -> None:
        self._segmenter.reset()
        self._vad.reset()
        self._watched.clear()

    def _watch(self, block: MicBlock, probability: float) -> Heard:
        assert self.barge_in is not None
        at_s = block.captured_at_s
        self._watched.append((block.pcm, probability, at_s))
        decision = self.barge_in.watched(probability, at_s)
        if decision is not Decision.PAUSE:
            return Heard([], decision)
        # The user interrupts: the segmenter hears them from the pre-roll on.
        self._segmenter.reset()
        since = self.barge_in.preroll_from_s()
        events: list[TurnEvent] = []
        for pcm, p, t in self._watched:
            if t >= since:
                events += self._answered(self._segmenter.feed(pcm, p, t))
        self._watched.clear()
        return Heard(events, Decision.PAUSE)

    def _answered(self, events: list[SegmentationEvent]) -> list[TurnEvent]:
        """The events with each question to the model replaced by what its answer caused."""
        out: list[TurnEvent] = []
        for event in events:
            if not isinstance(event, TurnMayEnd):
                out.append(event)
                continue
            assert self._end_of_turn is not None  # checked when built
            out += self._segmenter.judge(self._end_of_turn.complete_probability(event.audio))
        return out
