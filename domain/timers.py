"""Timers and reminders the user asks for, as plain state: set by a tool call, due at a time,
and said by the agent on its own at the next quiet moment.

The agent speaks unasked only when nobody else is: no turn in flight, and the user silent for
a while. A timer that falls due while the user talks waits for them; it is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from domain.tools import ToolSpec

# The time is asked for in the units the user said: the 0.5B turns "20 minutes" into 120
# seconds and "an hour" into 360, but copies 20 minutes and 1 hour as they were said.
_UNITS = {"hours": 3600, "minutes": 60, "seconds": 1}
SET_TIMER = ToolSpec(
    "set_timer",
    "Sets a timer or a reminder: when the time is up the assistant says so out loud. Use it "
    "whenever the user asks for a timer, an alarm or to be reminded of something later. Give "
    "the time in the units the user said.",
    {
        "type": "object",
        "properties": {
            **{unit: {"type": "number", "description": f"{unit} from now"} for unit in _UNITS},
            "reminder": {"type": "string",
                         "description": "what to remind the user of, if they said (e.g. call Sam)"},
        },
        "required": [],
    },
)  # fmt: skip

# What the system prompt says the tool is for.
USE = "timers and reminders"
MAX_SECONDS = 24 * 3600  # a timer is for today; longer is a calendar's job
MAX_PENDING = 20
# The user has been silent this long: the agent may speak unasked.
QUIET_S = 1.0


class TimerRefused(ValueError):
    """A timer that cannot be set; the message is the model's to read."""


@attrs.frozen
class Timer:
    seconds: int
    reminder: str
    due_s: float  # on the clock `Timers` is given

    @property
    def announcement(self) -> str:
        """What the agent says when it is due."""
        if self.reminder:
            return f"Here is your reminder: {self.reminder.strip().rstrip('.')}."
        return f"Your timer for {spoken_duration(self.seconds)} is done."


class Timers:
    """Not thread-safe by itself: the application serialises calls."""

    def __init__(self) -> None:
        self._pending: list[Timer] = []

    @property
    def pending(self) -> list[Timer]:
        return list(self._pending)

    def set(self, seconds: float, reminder: str, now_s: float) -> Timer:
        seconds = round(seconds)
        if not 1 <= seconds <= MAX_SECONDS:
            raise TimerRefused(
                f"a timer lasts from 1 second to {MAX_SECONDS // 3600} hours: give the time in "
                "hours, minutes or seconds"
            )
        if len(self._pending) >= MAX_PENDING:
            raise TimerRefused(f"{MAX_PENDING} timers are already set")
        timer = Timer(seconds, reminder, now_s + seconds)
        self._pending.append(timer)
        self._pending.sort(key=lambda pending: pending.due_s)
        return timer

    def take_due(self, now_s: float) -> Timer | None:
        """The earliest timer that is due, no longer pending; None if none is."""
        if self._pending and self._pending[0].due_s <= now_s:
            return self._pending.pop(0)
        return None


def duration_s(arguments: Mapping[str, Any]) -> float:
    """The time a `set_timer` call asks for, in seconds."""
    return sum(float(arguments.get(unit) or 0) * size for unit, size in _UNITS.items())


def quiet_moment(*, turn_in_flight: bool, listening: bool, user_silent_s: float) -> bool:
    """Whether the agent may speak unasked now: nothing of a turn is going on (the user's own
    words are not waiting to be transcribed or answered) and the user has been silent for
    `QUIET_S`."""
    return not turn_in_flight and listening and user_silent_s >= QUIET_S


def spoken_duration(seconds: int) -> str:
    """ "10 seconds", "1 minute", "1 hour 30 minutes"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    counted = ((hours, "hour"), (minutes, "minute"), (secs, "second"))
    return " ".join(f"{n} {unit}{'s' if n > 1 else ''}" for n, unit in counted if n)
