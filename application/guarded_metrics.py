"""The conversation's metrics sink, guarded: a record that cannot be written (a full disk, a file
made read-only, a bug in a sink) is lost, never the turn whose close writes it, nor the thread
that closes it."""

from __future__ import annotations

import logging
import threading

from domain.messages import TurnMetrics
from ports import MetricsSink

log = logging.getLogger(__name__)


class GuardedMetrics:
    """Never raises. A sink that fails is reported once, when it starts failing, and tried again
    at every turn: it costs nothing, and a disk with room again takes the next record (a later
    failure is reported anew). Turns close on several threads."""

    def __init__(self, sink: MetricsSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._failing = False

    def record(self, metrics: TurnMetrics) -> None:
        try:
            self._sink.record(metrics)
        except Exception as error:
            if self._now_failing(True):
                log.warning(
                    "turn metrics cannot be written to %s (%s): left out until it works again",
                    self._sink, error,
                )  # fmt: skip
            return
        if self._now_failing(False):
            log.info("turn metrics are written to %s again", self._sink)

    def _now_failing(self, failing: bool) -> bool:
        """Whether this changes the sink's state."""
        with self._lock:
            changed, self._failing = self._failing != failing, failing
            return changed
