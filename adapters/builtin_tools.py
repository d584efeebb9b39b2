"""The tools a spoken assistant needs first, as plain functions (`--tools`): the date and time
where the user is, and arithmetic done right (small models add badly)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from domain.arithmetic import NotArithmetic, evaluate


def current_time() -> str:
    """The current date, time and time zone where the user is. Use it for any question about
    the time, the date or the day of the week."""
    now = datetime.datetime.now().astimezone()
    return now.strftime("%A %d %B %Y, %H:%M, time zone %Z")


def calculate(expression: str) -> str:
    """Computes an arithmetic expression exactly, e.g. "17 * 23" or "(4 + 5) / 3". Use it for
    any calculation instead of working it out yourself."""
    try:
        return str(evaluate(expression))
    except NotArithmetic as error:
        return f"cannot compute {expression!r}: {error}"


BUILTIN_TOOLS: Mapping[str, Callable[..., Any]] = {"time": current_time, "calculator": calculate}
# What the system prompt says each is for (domain/chat_window.py `system_prompt`).
BUILTIN_USES: Mapping[str, str] = {"time": "the time and the date", "calculator": "calculations"}
