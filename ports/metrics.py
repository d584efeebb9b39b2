from __future__ import annotations

from typing import Protocol

from domain.messages import TurnMetrics


class MetricsSink(Protocol):
    def record(self, metrics: TurnMetrics) -> None: ...
