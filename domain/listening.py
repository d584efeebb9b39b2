"""The `should_listen` state machine: when the agent hears the user, and how it always gets back
to hearing them.

listening -> user speaking -> waiting for the reply -> speaking -> listening.

Every way a turn can end leads back to LISTENING: the reply finished playing, the transcript was
empty, a stage failed, or nothing happened for `watchdog_s` (upstream lost one marker and stayed
deaf forever; here that cannot happen). Time is passed in, never read.
"""

from __future__ import annotations

import enum

import attrs


class Phase(enum.Enum):
    LISTENING = "listening"
    USER_SPEAKING = "user speaking"
    WAITING_FOR_REPLY = "waiting for the reply"
    SPEAKING = "speaking"


@attrs.frozen
class Transition:
    name: str
    sources: frozenset[Phase]
    target: Phase


_ANY = frozenset(Phase)
_BUSY = frozenset({Phase.WAITING_FOR_REPLY, Phase.SPEAKING})

SPEECH_STARTED = Transition("speech started", frozenset({Phase.LISTENING}), Phase.USER_SPEAKING)
TURN_ENDED = Transition(
    "turn ended", frozenset({Phase.LISTENING, Phase.USER_SPEAKING}), Phase.WAITING_FOR_REPLY
)
REPLY_STARTED = Transition("reply started", frozenset({Phase.WAITING_FOR_REPLY}), Phase.SPEAKING)
RESPONSE_PLAYED = Transition("response played", _BUSY, Phase.LISTENING)
EMPTY_TRANSCRIPT = Transition("empty transcript", _BUSY, Phase.LISTENING)
STAGE_FAILED = Transition("stage failed", _ANY, Phase.LISTENING)
WATCHDOG_EXPIRED = Transition("watchdog expired", _BUSY, Phase.LISTENING)
# Barge-in: the user spoke over the reply and was understood. Listening re-opens with their
# speech already in the segmenter; not USER_SPEAKING, which only a turn the segmenter confirmed
# (and so will end) may enter: a burst it then drops must not leave the agent there for good.
INTERRUPTED = Transition("interrupted", _BUSY, Phase.LISTENING)


class ListeningStateMachine:
    """Holds the phase; `fire` applies a transition when the current phase allows it and tells
    whether it did. Not thread-safe by itself: the application serialises calls."""

    def __init__(self, watchdog_s: float) -> None:
        if watchdog_s <= 0:
            raise ValueError("watchdog_s must be positive")
        self._watchdog_s = watchdog_s
        self.phase = Phase.LISTENING
        self._last_progress_s = 0.0

    @property
    def should_listen(self) -> bool:
        return self.phase in (Phase.LISTENING, Phase.USER_SPEAKING)

    def fire(self, transition: Transition, now_s: float) -> bool:
        if self.phase not in transition.sources:
            return False
        self.phase = transition.target
        self._last_progress_s = now_s
        return True

    def progress(self, now_s: float) -> None:
        """A stage made progress on the current reply (a transcript, a delta, a chunk)."""
        self._last_progress_s = now_s

    def check_watchdog(self, now_s: float) -> bool:
        """Re-open listening when a reply made no progress for `watchdog_s`; True if it did."""
        if self.phase in _BUSY and now_s - self._last_progress_s >= self._watchdog_s:
            return self.fire(WATCHDOG_EXPIRED, now_s)
        return False
