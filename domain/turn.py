"""The life of one user turn, from the end of the user's speech to its close, as pure state.

A turn collects its transcript (a long turn arrives in parts, and the transcript of the pause
that ended it may stand in for a final decode), then the reply the model streams, and closes
exactly once with an outcome. The outcome decides everything that follows the close: which
transition re-opens listening, what the history keeps, and whether the user hears an apology.

A stage that fails does not cut the turn short: the apology is queued behind whatever of the
reply is already on its way to the speaker, and the turn closes as failed once it has played.
Only the watchdog (something is stuck, maybe the audio itself) and stopping close at once.

The history only ever gains a whole exchange (the user's words and the reply that answered
them), so it alternates user / assistant whatever happens: a turn that failed, timed out or was
stopped leaves nothing in it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from domain import listening
from domain.heard_reply import interrupted_reply, without_mark
from domain.listening import Transition
from domain.messages import ChatMessage, FinalTranscript
from domain.runaway import RunawayGuard

# A turn's text keeps at most this much, from its end, where the request usually is: a long turn
# comes in parts (`max_speech_ms`), and an hour of television beside the microphone must not
# become one giant user message. About a minute of speech (~15 characters a second).
MAX_USER_CHARS = 1000
CUT_MARK = "…"  # stands for the words dropped before what is kept


class Outcome(enum.Enum):
    ANSWERED = "answered"  # the whole reply played
    EMPTY = "empty"  # nothing intelligible was said: no reply, nothing to apologise for
    FAILED = "failed"  # a stage failed; the apology played before the close
    TIMED_OUT = "timed out"  # no progress for the watchdog's delay: closed at once
    STOPPED = "stopped"  # the agent is shutting down
    INTERRUPTED = "interrupted"  # the user spoke over the reply (barge-in): cut where heard


@attrs.frozen
class Closing:
    """What closing a turn entails; the application carries it out."""

    outcome: Outcome
    transition: Transition | None  # how listening re-opens (None: the agent is stopping)
    exchange: tuple[str, str] | None  # (user text, reply) for the history, or nothing
    cut_short: bool  # closed at once: drop the turn's audio still queued
    apologise: bool  # say sorry now (a failed turn already did, before its close)


_TRANSITIONS = {
    Outcome.ANSWERED: listening.RESPONSE_PLAYED,
    Outcome.EMPTY: listening.EMPTY_TRANSCRIPT,
    Outcome.FAILED: listening.STAGE_FAILED,
    Outcome.TIMED_OUT: listening.WATCHDOG_EXPIRED,
    Outcome.STOPPED: None,
    Outcome.INTERRUPTED: listening.INTERRUPTED,
}
_AT_ONCE = frozenset({Outcome.TIMED_OUT, Outcome.STOPPED, Outcome.INTERRUPTED})


class TurnLife:
    """Not thread-safe by itself: the application serialises calls."""

    def __init__(self, turn_id: int) -> None:
        self.turn_id = turn_id
        self._heard = ""  # the parts so far, at most MAX_USER_CHARS of their end
        self._cut = False
        self.user_text = ""
        self.language: str | None = None
        self.reply = ""
        self.reply_complete = False
        self.faulted = False
        self.spoken: str | None = None  # of an interrupted reply: what the user heard
        self.outcome: Outcome | None = None
        self.agent_started = False
        self._guard = RunawayGuard()

    @property
    def closed(self) -> bool:
        return self.outcome is not None

    def started_by_agent(self) -> None:
        """Nobody spoke: the agent says something on its own (a due reminder). The history
        keeps nothing of it, as it is no answer to anything the user said."""
        self.agent_started = True

    def heard_part(self, transcript: FinalTranscript) -> None:
        """A long turn cut by `max_speech_ms`: more of the same turn follows."""
        self._add(transcript.text)

    def heard_final(self, transcript: FinalTranscript) -> str:
        """The last part; returns the user text ("" when nothing was understood): the whole of
        it, or its last MAX_USER_CHARS after a `CUT_MARK`."""
        self._add(transcript.text)
        self.user_text = f"{CUT_MARK} {self._heard}" if self._cut else self._heard
        self.language = transcript.language
        return self.user_text

    def _add(self, text: str) -> None:
        joined = " ".join(part for part in (self._heard, text.strip()) if part)
        room = MAX_USER_CHARS - len(CUT_MARK) - 1
        if len(joined) > (room if self._cut else MAX_USER_CHARS):
            self._cut = True
            kept = joined[-room:]
            if not joined[-room - 1].isspace() and " " in kept:  # no half word
                kept = kept.split(" ", 1)[1]
            joined = kept.lstrip()
        self._heard = joined

    def replied(self, delta: str) -> bool:
        """The reply grew by `delta`; False, and `delta` dropped, once it runs away (repeats
        itself, or grows too long to be spoken): the reply ends with what came before."""
        if self._guard.feed(delta):
            return False
        self.reply += delta
        return True

    @property
    def runaway(self) -> str | None:
        """Why the reply was cut short, if it was."""
        return self._guard.reason

    def reply_finished(self) -> None:
        self.reply_complete = True

    def fault(self) -> bool:
        """A stage failed. True the first time, while the turn is open: the apology is due,
        behind what is already queued, and no more of the reply is."""
        if self.closed or self.faulted:
            return False
        self.faulted = True
        return True

    def played_out(self) -> Closing | None:
        """Everything queued for the turn has played: the reply, or the apology."""
        if self.faulted:
            return self.close(Outcome.FAILED)
        if not (self.reply_complete and self.reply.strip()):
            raise ValueError("a turn is answered only by a whole, non-empty reply")
        return self.close(Outcome.ANSWERED)

    def interrupted(self, heard: str) -> Closing | None:
        """The user spoke over the reply: closed at once, and the history keeps the exchange
        with only `heard` of the reply, marked as cut off (a failed turn keeps nothing)."""
        if self.faulted:
            return self.close(Outcome.INTERRUPTED)
        self.spoken = heard
        return self.close(Outcome.INTERRUPTED)

    def close(self, outcome: Outcome) -> Closing | None:
        """The first close wins; later ones (a stage noticing too late) return None."""
        if self.closed:
            return None
        self.outcome = outcome
        exchange = None
        if outcome is Outcome.ANSWERED and not self.agent_started:
            exchange = (self.user_text, without_mark(self.reply))
        elif outcome is Outcome.INTERRUPTED and self.spoken is not None and self.user_text:
            exchange = (self.user_text, interrupted_reply(self.spoken))
        return Closing(
            outcome=outcome,
            transition=_TRANSITIONS[outcome],
            exchange=exchange,
            cut_short=outcome in _AT_ONCE,
            apologise=outcome is Outcome.TIMED_OUT,
        )


class Speculation:
    """The transcript of a pause, which is the whole turn if the silence goes on.

    Each pause gets a number. A transcript that arrives after the user spoke again belongs to
    half a question: it is not used, and no reply is asked for it.
    """

    def __init__(self) -> None:
        self._pause = 0
        self._valid = False
        self._transcript: FinalTranscript | None = None

    def paused(self) -> int:
        self._pause += 1
        self._valid = True
        self._transcript = None
        return self._pause

    def resumed(self) -> None:
        self._valid = False
        self._transcript = None

    def transcribed(self, pause: int, transcript: FinalTranscript) -> bool:
        """Keep the transcript of `pause`; True when a reply may be asked for it now."""
        if pause != self._pause or not self._valid:
            return False
        self._transcript = transcript
        return not transcript.is_empty

    def still_paused(self, pause: int) -> bool:
        """Whether the user is still silent in `pause`: a reply asked for it may be kept."""
        return pause == self._pause and self._valid

    def take(self, after_pause: bool) -> FinalTranscript | None:
        """The final transcript of a turn that ended in the last pause, if one is in hand."""
        transcript = self._transcript if after_pause and self._valid else None
        self._valid = False
        self._transcript = None
        return transcript


def reusable(asked: Sequence[ChatMessage], wanted: Sequence[ChatMessage]) -> bool:
    """A reply asked for ahead of time answers the turn only if it was asked with exactly the
    request the turn makes: the same history, the same words, the same instructions."""
    return list(asked) == list(wanted)
