"""Whether a microphone block reaches the voice-activity detector.

The audio port delivers every block with the playback state and this policy decides. Half
duplex, the seeds' behaviour: the agent does not hear while its reply plays, nor while it is busy
with a turn (between the end of the user's speech and the end of the reply). After a stretch it
did not hear, whatever the detector and the segmenter held belongs to before it: they start
afresh, so neither the agent's own voice nor an old utterance leaks into the next turn.
"""

from __future__ import annotations

import enum


class Admission(enum.Enum):
    DROP = "drop"
    HEAR = "hear"
    HEAR_AFRESH = "hear afresh"  # reset the detector and the segmenter, then hear the block
    WATCH = "watch"  # barge-in: the detector hears the block, the segmenter does not


class HalfDuplex:
    def __init__(self) -> None:
        self._deaf = False

    def admit(self, *, playing: bool, should_listen: bool) -> Admission:
        if playing or not should_listen:
            self._deaf = True
            return Admission.DROP
        if self._deaf:
            self._deaf = False
            return Admission.HEAR_AFRESH
        return Admission.HEAR
