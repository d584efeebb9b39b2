"""Barge-in: the user may interrupt the reply, and the agent does not interrupt itself.

Replaces the half-duplex mute policy when `--barge_in` is on. Once the reply starts playing the
microphone (echo-cancelled by the audio adapter) is *watched*: every block goes to the
voice-activity detector, not to the turn segmenter. Speech lasting `min_interruption_ms`, after
a `warmup_ms` from the reply's first block (while the canceller converges), *pauses* playback;
from then on the user is heard (the segmenter gets the blocks, pre-roll first). The application
confirms the interruption when a transcript of what the user says is non-empty, which cancels
the reply; with nothing confirmed within `confirm_window_ms` playback resumes where it paused
(a cough or a door is not an interruption) and the watch goes on.

Time is the audio clock (`at_s` of each block), passed in, never read.
"""

from __future__ import annotations

import enum

import attrs

from domain.audio import BLOCK_SECONDS
from domain.mute_policy import Admission
from domain.turn_segmentation import HYSTERESIS  # speech goes on above thresh - HYSTERESIS

_EPSILON_MS = 1e-6  # block times are sums of 32 ms: compare durations with float slack


@attrs.frozen
class BargeInConfig:
    min_interruption_ms: float = 128.0
    warmup_ms: float = 250.0
    confirm_window_ms: float = 2000.0
    thresh: float = 0.6
    preroll_ms: float = 500.0  # kept before the interrupting speech for its transcript

    def __attrs_post_init__(self) -> None:
        if self.min_interruption_ms <= 0 or self.confirm_window_ms <= 0:
            raise ValueError("min_interruption_ms and confirm_window_ms must be positive")
        if self.warmup_ms < 0 or self.preroll_ms < 0:
            raise ValueError("warmup_ms and preroll_ms cannot be negative")


class State(enum.Enum):
    LISTENING = "listening"  # the user's turn: the segmenter hears everything
    DEAF = "deaf"  # the agent is busy and nothing of its reply has played yet
    WATCHING = "watching"  # the reply plays: blocks go to the VAD only
    PAUSED = "paused"  # the user spoke over it: playback paused, the user heard, unconfirmed
    INTERRUPTED = "interrupted"  # confirmed: the reply is cancelled; listening re-opens next


class Decision(enum.Enum):
    NONE = "none"
    PAUSE = "pause"  # pause playback now; the pre-roll goes to the segmenter
    RESUME = "resume"  # nothing confirmed in time: resume playback, forget what was heard


class BargeIn:
    """Per block: `admit` (before the VAD), then `watched` with the VAD's probability when the
    block was admitted as WATCH, and `expired` while paused. Not thread-safe: one thread."""

    def __init__(self, config: BargeInConfig) -> None:
        self._config = config
        self.state = State.LISTENING
        self._warm_until_s = 0.0
        self._run_start_s: float | None = None
        self.speech_start_s: float | None = None  # of the speech that paused playback
        self.paused_at_s: float | None = None

    def admit(self, *, playing: bool, should_listen: bool, at_s: float) -> Admission:
        if should_listen:
            previous, self.state = self.state, State.LISTENING
            if previous in (State.LISTENING, State.INTERRUPTED):
                return Admission.HEAR  # an interruption's speech is already in the segmenter
            return Admission.HEAR_AFRESH
        if self.state is State.PAUSED:
            return Admission.HEAR
        if self.state is not State.WATCHING:  # the agent is busy with a turn (a new one, after
            # an interruption whose words the user had already finished)
            if not playing:
                self.state = State.DEAF
                return Admission.DROP
            self.state = State.WATCHING
            self._warm_until_s = at_s + self._config.warmup_ms / 1000
            self._run_start_s = None
        return Admission.WATCH

    def watched(self, probability: float, at_s: float) -> Decision:
        """A watched block's speech probability; PAUSE when the user has spoken long enough."""
        if self.state is not State.WATCHING:
            return Decision.NONE
        if at_s < self._warm_until_s:
            self._run_start_s = None
            return Decision.NONE
        floor = self._config.thresh - (HYSTERESIS if self._run_start_s is not None else 0.0)
        if probability < floor:
            self._run_start_s = None
            return Decision.NONE
        if self._run_start_s is None:
            self._run_start_s = at_s
        heard_ms = (at_s + BLOCK_SECONDS - self._run_start_s) * 1000
        if heard_ms < self._config.min_interruption_ms - _EPSILON_MS:
            return Decision.NONE
        self.state = State.PAUSED
        self.speech_start_s = self._run_start_s
        self.paused_at_s = at_s + BLOCK_SECONDS
        self._run_start_s = None
        return Decision.PAUSE

    def preroll_from_s(self) -> float:
        """Blocks captured from this time on belong to the interruption's turn."""
        assert self.speech_start_s is not None
        return self.speech_start_s - self._config.preroll_ms / 1000

    def expired(self, at_s: float) -> Decision:
        """RESUME when nothing confirmed the pause within the window."""
        if self.state is not State.PAUSED or self.paused_at_s is None:
            return Decision.NONE
        if (at_s - self.paused_at_s) * 1000 < self._config.confirm_window_ms - _EPSILON_MS:
            return Decision.NONE
        self.state = State.WATCHING  # no new warm-up: the canceller has converged
        self._run_start_s = None
        return Decision.RESUME

    def confirm(self) -> bool:
        """The user's words were transcribed: True if this cancels the reply (the pause is still
        pending), False when it came too late (resumed meanwhile) or there was no pause."""
        if self.state is not State.PAUSED:
            return False
        self.state = State.INTERRUPTED
        return True

    def reject(self, at_s: float) -> Decision:
        """What the user said came out empty: resume at once rather than wait for the window."""
        if self.state is not State.PAUSED:
            return Decision.NONE
        self.paused_at_s = at_s - self._config.confirm_window_ms / 1000
        return self.expired(at_s)
