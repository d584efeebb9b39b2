"""Running the model's tool calls for a reply: each on a thread of its own, bounded in time, its
failure a short result the model reads and answers from, never a dead turn."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from application.settings import ConversationSettings
from domain.tools import ToolCall, ToolSpec
from ports.tools import Toolbox, ToolError

log = logging.getLogger(__name__)

# How a result says the call failed (the model reads it, and a failure is never said aloud).
ERROR_PREFIX = "error: "


class ToolRunner:
    def __init__(
        self,
        toolbox: Toolbox,
        timeout_s: float,
        max_calls: int,
        notice: str = "One moment.",
        notice_after_s: float | None = None,
    ) -> None:
        """`max_calls`: calls in a row for one reply (a result may lead to another call);
        `notice` is said once a call has run for `notice_after_s` (None: never)."""
        self._toolbox = toolbox
        self._timeout_s = timeout_s
        self._notice, self._notice_after_s = notice, notice_after_s
        self.max_calls = max_calls

    def run(self, call: ToolCall, say: Callable[[str], None] = lambda _: None) -> str:
        """The result for the model: what the tool returned, or what went wrong. A slow call
        has `say` given the notice while it runs."""
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
        slow_s = self._notice_after_s
        if slow_s is not None and slow_s < self._timeout_s:
            worker.join(slow_s)
            if worker.is_alive():
                say(f"{self._notice} ")
            worker.join(self._timeout_s - slow_s)
        else:
            worker.join(self._timeout_s)
        if not outcome:
            log.warning("tool %s gave no answer within %g s", call.name, self._timeout_s)
            return f"{ERROR_PREFIX}{call.name} did not answer within {self._timeout_s:g} s"
        log.info("tool %s(%s) -> %s", call.name, dict(call.arguments), outcome[0][:200])
        return outcome[0]


class Toolboxes:
    """Several toolboxes as one: each call goes to the one that has the tool."""

    def __init__(self, toolboxes: Sequence[Toolbox]) -> None:
        self._owners = {spec.name: box for box in toolboxes for spec in box.specs}
        self._specs = [spec for box in toolboxes for spec in box.specs]

    @property
    def specs(self) -> Sequence[ToolSpec]:
        return list(self._specs)

    def run(self, call: ToolCall) -> str:
        owner = self._owners.get(call.name)
        if owner is None:
            raise ToolError(f"there is no tool named {call.name!r}")
        return owner.run(call)


def tool_runner(
    toolboxes: Sequence[Toolbox | None], settings: ConversationSettings
) -> ToolRunner | None:
    """The runner of a conversation's tools (its toolboxes that are there), or None if none."""
    present = [box for box in toolboxes if box is not None]
    if not present:
        return None
    return ToolRunner(
        Toolboxes(present), settings.tool_timeout_s, settings.max_tool_calls,
        settings.tool_notice, settings.tool_notice_s or None,
    )  # fmt: skip
