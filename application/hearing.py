"""The listening stage: microphone blocks -> mute policy -> voice activity -> turn segmentation
(-> the end-of-turn model, when the turn ends on its word).

The mute policy (domain) decides which blocks the detector hears; after a stretch it did not,
the detector and the segmenter start afresh. The end-of-turn model is asked synchronously, in
the listening thread: one call takes ~45 ms, less than two blocks, which the audio adapter's
queue holds meanwhile; the answer is then in before the next block, so whether the user spoke
again before it came is never in question, and the segmenter stays a plain state machine.
"""

from __future__ import annotations

from domain.audio import MicBlock
from domain.mute_policy import Admission, HalfDuplex
from domain.turn_segmentation import (
    SegmentationEvent,
    TurnEvent,
    TurnMayEnd,
    TurnSegmenter,
    VadConfig,
)
from ports import EndOfTurn, VoiceActivity


class Hearing:
    def __init__(
        self, vad: VoiceActivity, config: VadConfig, end_of_turn: EndOfTurn | None = None
    ) -> None:
        if config.model_turn is not None and end_of_turn is None:
            raise ValueError("turns ended by a model need an end-of-turn model")
        self._vad = vad
        self._end_of_turn = end_of_turn
        self._segmenter = TurnSegmenter(config)
        self._mute = HalfDuplex()

    def hear(self, block: MicBlock, *, should_listen: bool) -> list[TurnEvent]:
        admission = self._mute.admit(playing=block.playing, should_listen=should_listen)
        if admission is Admission.DROP:
            return []
        if admission is Admission.HEAR_AFRESH:
            self._segmenter.reset()
            self._vad.reset()
        probability = self._vad.speech_probability(block.pcm)
        return self._answered(self._segmenter.feed(block.pcm, probability, block.captured_at_s))

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
