from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.tools import ToolCall, ToolSpec


class Toolbox(Protocol):
    """The tools the model may call (also handed to the language model's adapter, which
    offers them in its API's way) and how each is run."""

    @property
    def specs(self) -> Sequence[ToolSpec]: ...

    def run(self, call: ToolCall) -> str:
        """What the tool returned, as text for the model. Raises `ToolError` with a message for
        the model (bad arguments, the tool's own failure); may block (the application bounds
        the wait)."""
        ...


class ToolError(RuntimeError):
    """A call that could not be carried out: its message goes back to the model as the result."""
