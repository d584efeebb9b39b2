"""The agent's own tool: timers and reminders (`--tools timer`). Setting one is a tool call;
when one is due, the conversation says it at the next quiet moment, in a turn of its own."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from domain.timers import SET_TIMER, Timer, TimerRefused, Timers, duration_s, spoken_duration
from domain.tools import BadArguments, ToolCall, ToolSpec, fitted_arguments
from ports import Clock
from ports.tools import ToolError


class Reminders:
    """A `Toolbox` of one tool, `set_timer`, and the timers it set; thread-safe (the tool runs
    on a thread of its own, the conversation asks for due timers on the listen thread)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._timers = Timers()
        self._lock = threading.Lock()

    @property
    def specs(self) -> Sequence[ToolSpec]:
        return [SET_TIMER]

    def run(self, call: ToolCall) -> str:
        if call.name != SET_TIMER.name:
            raise ToolError(f"there is no tool named {call.name!r}")
        given = dict(call.arguments)
        if isinstance(given.get("duration"), int | float):  # a bare number: seconds
            given["duration"] = str(given["duration"])
        try:
            arguments = fitted_arguments(SET_TIMER, given)
        except BadArguments as problem:
            raise ToolError(f"{call.name}: {problem}") from None
        try:
            with self._lock:
                timer = self._timers.set(
                    duration_s(arguments["duration"]),
                    arguments.get("reminder", ""),
                    self._clock.now(),
                )
        except TimerRefused as refused:
            raise ToolError(f"{call.name}: {refused}") from None
        return f"The timer is set: it will go off in {spoken_duration(timer.seconds)}."

    @property
    def pending(self) -> list[Timer]:
        with self._lock:
            return self._timers.pending

    def left_behind(self) -> list[str]:
        """What the user is told of each timer still pending as the agent stops."""
        now = self._clock.now()
        return [timer.left_behind(now) for timer in self.pending]

    def take_due(self) -> Timer | None:
        with self._lock:
            return self._timers.take_due(self._clock.now())
