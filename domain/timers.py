"""Timers and reminders the user asks for, as plain state: set by a tool call, due at a time,
and said by the agent on its own at the next quiet moment.

The agent speaks unasked only when nobody else is: no turn in flight, and the user silent for
a while. A timer that falls due while the user talks waits for them; it is never dropped.
"""

from __future__ import annotations

import re

import attrs

from domain.tools import ToolSpec

# The time is asked for as the user said it ("twenty minutes", "an hour and a half"): asked for
# seconds, the 0.5B turned "20 minutes" into 120 and "an hour" into 360; asked for hours, minutes
# and seconds, it put every number in the hours; a phrase it copies. No example in the
# descriptions: it copies those too.
SET_TIMER = ToolSpec(
    "set_timer",
    "Sets a timer or a reminder: when the time is up the assistant says so out loud. Use it "
    "whenever the user asks for a timer, an alarm or to be reminded of something later.",
    {
        "type": "object",
        "properties": {
            "duration": {"type": "string", "description": "how long from now, as the user said"},
            "reminder": {"type": "string",
                         "description": "what to remind the user of, if they said"},
        },
        "required": ["duration"],
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
        done = f"Your timer for {spoken_duration(self.seconds)} is done"
        reminder = self.reminder.strip().rstrip(".")
        return f"{done}: {reminder[:1].lower()}{reminder[1:]}." if reminder else f"{done}."

    def left_behind(self, now_s: float) -> str:
        """What the user is told of it when the agent stops before it is due."""
        left = spoken_duration(max(1, round(self.due_s - now_s)))
        what = f" ({self.reminder.strip()})" if self.reminder.strip() else ""
        timer = f"Your timer for {spoken_duration(self.seconds)}{what}"
        return f"{timer} ends with the agent, {left} before it was due."


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
                f"a timer lasts from 1 second to {MAX_SECONDS // 3600} hours: give the duration "
                "as the user said it"
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


_UNIT_S = {
    **dict.fromkeys(("second", "seconds", "sec", "secs", "s"), 1),
    **dict.fromkeys(("minute", "minutes", "min", "mins", "m"), 60),
    **dict.fromkeys(("hour", "hours", "hr", "hrs", "h"), 3600),
}
_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen")  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_WORDS = {
    **{word: n for n, word in enumerate(_ONES)},
    **{word: 10 * n for n, word in enumerate(_TENS, start=2)},
    "couple": 2,
}


def duration_s(said: str) -> float:
    """The seconds a duration says, in digits or words: "5 minutes", "twenty-five seconds",
    "an hour and a half", "half an hour", "1 hour 30 minutes"; a bare number is seconds. 0 when
    it says none, or is no duration ("1234 - 567": two numbers in digits without a unit)."""
    words = re.findall(r"\d+(?:\.\d+)?|[a-z]+", said.lower())
    total, number, last_unit = 0.0, None, None
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word in _UNIT_S and (number is not None or len(word) > 1):
            total += (1.0 if number is None else number) * _UNIT_S[word]  # "hour": one hour
            number, last_unit = None, _UNIT_S[word]
        elif word == "half":
            if number is None and last_unit is not None and following not in _UNIT_S:
                total += last_unit / 2  # "an hour and a half"
            else:
                number = (number or 0.0) + 0.5  # "half an hour", "one and a half hours"
        elif word == "hundred":
            number = (number or 1.0) * 100
        elif word[0].isdigit():
            if number is not None:
                return 0.0
            number = float(word)
        elif word in _WORDS:
            number = (number or 0.0) + _WORDS[word]
        elif word in ("a", "an") and number is None and following in _UNIT_S:
            number = 1.0
    return total + (number or 0.0)  # a number left without a unit: seconds


def quiet_moment(*, turn_in_flight: bool, listening: bool, user_silent_s: float) -> bool:
    """Whether the agent may speak unasked now: no turn in flight, listening (not hearing the
    user's turn), and the user silent for `QUIET_S`."""
    return not turn_in_flight and listening and user_silent_s >= QUIET_S


def spoken_duration(seconds: int) -> str:
    """ "10 seconds", "1 minute", "1 hour 30 minutes"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    counted = ((hours, "hour"), (minutes, "minute"), (secs, "second"))
    return " ".join(f"{n} {unit}{'s' if n > 1 else ''}" for n, unit in counted if n)
