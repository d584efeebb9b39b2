"""Where per-turn metrics go: one structured log event, and optionally a JSON-lines file."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import structlog

from domain.messages import TurnMetrics
from ports.metrics import MetricsSink


class TurnLog:
    """Exactly one `turn` event per turn, with every stage's latency."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("voice_agent.turns")

    def record(self, metrics: TurnMetrics) -> None:
        self._log.info("turn", **attrs.asdict(metrics))


class JsonlMetrics:
    """`scrub` cleans every text field (e.g. an error quoting a provider's message) of secrets."""

    def __init__(self, path: str | Path, scrub: Callable[[str], str] = str) -> None:
        self._path = Path(path)
        self._scrub = scrub
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, metrics: TurnMetrics) -> None:
        fields = {
            k: self._scrub(v) if isinstance(v, str) else v for k, v in attrs.asdict(metrics).items()
        }
        line = json.dumps(fields, ensure_ascii=False)
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


class FanOut:
    def __init__(self, sinks: Sequence[MetricsSink]) -> None:
        self._sinks = tuple(sinks)

    def record(self, metrics: TurnMetrics) -> None:
        for sink in self._sinks:
            sink.record(metrics)
