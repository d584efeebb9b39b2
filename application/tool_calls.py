"""Running the model's tool calls for a reply: each on a thread of its own, bounded in time, its
failure a short result the model reads and answers from, never a dead turn."""

from __future__ import annotations

import logging
import threading

from domain.tools import ToolCall
from ports.tools import Toolbox, ToolError

log = logging.getLogger(__name__)

# How a result says the call failed (the model reads it, and a failure is never said aloud).
ERROR_PREFIX = "error: "


class ToolRunner:
    def __init__(self, toolbox: Toolbox, timeout_s: float, max_calls: int) -> None:
        """`max_calls`: calls in a row for one reply (a result may lead to another call)."""
        self._toolbox = toolbox
        self._timeout_s = timeout_s
        self.max_calls = max_calls

    def run(self, call: ToolCall) -> str:
        """The result for the model: what the tool returned, or what went wrong."""
        outcome: list[str] = []

        def work() -> None:
            try:
                outcome.append(self._toolbox.run(call))
            except ToolError as error:
                outcome.append(f"{ERROR_PREFIX}{error}")
            except Exception as error:  # a toolbox's own bug: the turn still goes on
                log.warning("tool %s failed: %s", call.name, error)
                outcome.append(f"{ERROR_PREFIX}{call.name} failed")

        # A daemon: a tool that never returns is left behind, not waited for.
        worker = threading.Thread(target=work, name=f"tool-{call.name}", daemon=True)
        worker.start()
        worker.join(self._timeout_s)
        if not outcome:
            log.warning("tool %s gave no answer within %g s", call.name, self._timeout_s)
            return f"{ERROR_PREFIX}{call.name} did not answer within {self._timeout_s:g} s"
        log.info("tool %s(%s) -> %s", call.name, dict(call.arguments), outcome[0][:200])
        return outcome[0]
