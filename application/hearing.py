"""The listening stage: microphone blocks -> mute policy -> voice activity -> turn segmentation.

The mute policy (domain) decides which blocks the detector hears; after a stretch it did not,
the detector and the segmenter start afresh.
"""

from __future__ import annotations

from domain.audio import MicBlock
from domain.mute_policy import Admission, HalfDuplex
from domain.turn_segmentation import SegmentationEvent, TurnSegmenter, VadConfig
from ports import VoiceActivity


class Hearing:
    def __init__(self, vad: VoiceActivity, config: VadConfig) -> None:
        self._vad = vad
        self._segmenter = TurnSegmenter(config)
        self._mute = HalfDuplex()

    def hear(self, block: MicBlock, *, should_listen: bool) -> list[SegmentationEvent]:
        admission = self._mute.admit(playing=block.playing, should_listen=should_listen)
        if admission is Admission.DROP:
            return []
        if admission is Admission.HEAR_AFRESH:
            self._segmenter.reset()
            self._vad.reset()
        probability = self._vad.speech_probability(block.pcm)
        return self._segmenter.feed(block.pcm, probability, block.captured_at_s)

    def end_of_input(self) -> list[SegmentationEvent]:
        return self._segmenter.end_of_input()
