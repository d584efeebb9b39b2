"""The listening stage: microphone blocks -> mute policy -> voice activity -> turn segmentation
(-> the end-of-turn model, when the turn ends on its word).

An admission policy decides which blocks the detector and the segmenter hear (`Admitting`);
after a stretch they did not, both start afresh. Half duplex drops every block while the agent
is busy. Barge-in (interrupting.py) *watches* the blocks played over: the detector hears them
(the audio adapter cancelled the agent's own voice), the segmenter does not, unless the user
speaks long enough to pause the reply; then the segmenter gets the speech from its pre-roll on,
as if it had been listening all along.

The pause's transcript comes back from the recogniser to the listening thread
(`transcribed`), where the segmenter judges it between two blocks.

The end-of-turn model is asked synchronously, in the listening thread: one call takes ~45 ms,
less than two blocks, which the audio adapter's queue holds meanwhile; the answer is then in
before the next block, so whether the user spoke again before it came is never in question, and
the segmenter stays a plain state machine.
"""

from __future__ import annotations

import math
from typing import Protocol

import attrs

from domain.audio import MicBlock
from domain.barge_in import Decision
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


@attrs.frozen
class Watched:
    """What a watched block decided. PAUSE and RESUME make the segmenter forget what it held:
    a cough is forgotten, and an interruption is heard again from `replay` (its blocks from the
    pre-roll on: audio, speech probability, time)."""

    decision: Decision
    replay: list[tuple[bytes, float, float]] = attrs.Factory(list)


class Admitting(Protocol):
    """What of each block the detector and the segmenter hear: half duplex, or barge-in."""

    def admit(self, block: MicBlock, should_listen: bool) -> Admission: ...

    def watched(self, block: MicBlock, probability: float) -> Watched:
        """A block admitted as WATCH, with its speech probability."""
        ...


class HalfDuplexAdmission:
    """The seeds' behaviour: deaf while the agent is busy; nothing is ever watched."""

    def __init__(self) -> None:
        self._policy = HalfDuplex()

    def admit(self, block: MicBlock, should_listen: bool) -> Admission:
        return self._policy.admit(playing=block.playing, should_listen=should_listen)

    def watched(self, block: MicBlock, probability: float) -> Watched:
        raise AssertionError("half duplex watches no block")


class Hearing:
    def __init__(
        self,
        vad: VoiceActivity,
        config: VadConfig,
        end_of_turn: EndOfTurn | None = None,
        admission: Admitting | None = None,
    ) -> None:
        """`admission`: half duplex when None."""
        asks_audio = config.transcript_turn is not None and config.transcript_turn.ask_audio
        if (config.model_turn is not None or asks_audio) and end_of_turn is None:
            raise ValueError("turns ended by a model need an end-of-turn model")
        self._vad = vad
        self._end_of_turn = end_of_turn
        self._segmenter = TurnSegmenter(config)
        self._admission = admission or HalfDuplexAdmission()
        self._voice_at_s = -math.inf
        self._thresh = config.thresh

    def silent_s(self, now_s: float) -> float:
        """How long the detector has heard no voice, up to `now_s` (audio clock)."""
        return now_s - self._voice_at_s

    def hear(self, block: MicBlock, *, should_listen: bool) -> Heard:
        admission = self._admission.admit(block, should_listen)
        if admission is Admission.DROP:
            return Heard([])
        if admission is Admission.HEAR_AFRESH:
            self._segmenter.reset()
            self._vad.reset()
        probability = self._vad.speech_probability(block.pcm)
        if probability >= self._thresh:
            self._voice_at_s = block.captured_at_s
        if admission is not Admission.WATCH:
            at_s = block.captured_at_s
            return Heard(self._answered(self._segmenter.feed(block.pcm, probability, at_s)))
        watched = self._admission.watched(block, probability)
        if watched.decision is Decision.NONE:
            return Heard([])
        self.forget()
        events = [
            event
            for pcm, p, at_s in watched.replay
            for event in self._answered(self._segmenter.feed(pcm, p, at_s))
        ]
        return Heard(events, watched.decision)

    def forget(self) -> None:
        """What the segmenter holds is no turn (barge-in: the user's speech came out empty)."""
        self._segmenter.reset()

    def transcribed(self, text: str, language: str | None) -> list[TurnEvent]:
        """The transcript of the pause the user is still silent in: it may end the turn."""
        return self._answered(self._segmenter.transcribed(text, language))

    def end_of_input(self) -> list[TurnEvent]:
        return self._segmenter.end_of_input()

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
