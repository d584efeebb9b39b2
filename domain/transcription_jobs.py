"""What the segmenter asks of the recogniser, as types.

Provisional jobs serve the user's eyes and the speed of the reply; a newer job makes a waiting
live one stale, and nothing in them is ever sent to the language model as it is. Turn jobs carry
the turn's own audio and are never dropped while their turn is open.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class LiveJob:
    """The speech so far, for the updating live line."""

    audio: bytes


@attrs.frozen
class PauseJob:
    """All the speech of a turn that may have ended in pause number `pause`."""

    audio: bytes
    pause: int


@attrs.frozen
class TurnPartJob:
    """A long turn cut by `max_speech_ms`; more of turn `turn_id` follows."""

    turn_id: int
    audio: bytes


@attrs.frozen
class TurnEndJob:
    """The end of turn `turn_id`. `after_pause`: no word since the last pause, so the pause's
    transcript, if in hand, is the final one."""

    turn_id: int
    audio: bytes
    after_pause: bool


@attrs.frozen
class ConfirmJob:
    """Barge-in: what the user said while playback was paused; a non-empty transcript confirms
    interruption number `interruption`. `whole_turn`: the audio is the user's whole turn (they
    stopped speaking), whose transcript then answers the new turn too."""

    interruption: int
    audio: bytes
    whole_turn: bool


ProvisionalJob = LiveJob | PauseJob
TurnJob = TurnPartJob | TurnEndJob
TranscriptionJob = ProvisionalJob | TurnJob | ConfirmJob
