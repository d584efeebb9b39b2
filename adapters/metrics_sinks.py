"""Where per-turn metrics go: one structured log event, and optionally a JSON-lines file."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import structlog

from adapters.errors import SetupError
from domain.messages import TurnMetrics
from ports.metrics import MetricsSink

log = logging.getLogger(__name__)


class TurnLog:
    """Exactly one `turn` event per turn, with every stage's latency."""

    def __init__(self) -> None:
        self._log = structlog.get_logger("voice_agent.turns")

    def record(self, metrics: TurnMetrics) -> None:
        self._log.info("turn", **attrs.asdict(metrics))

    def __str__(self) -> str:
        return "the turn log"


class JsonlMetrics:
    """`scrub` cleans every text field (e.g. an error quoting a provider's message) of secrets."""

    def __init__(self, path: str | Path, scrub: Callable[[str], str] = str) -> None:
        self._path = Path(path)
        self._scrub = scrub
        try:  # a file that cannot be written at start is the user's to fix, not a turn's fault
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.open("a", encoding="utf-8").close()
        except OSError as error:
            raise SetupError(
                f"Cannot write --metrics_jsonl {path}: {error.strerror or error}"
            ) from None
        self._lock = threading.Lock()

    def record(self, metrics: TurnMetrics) -> None:
        fields = {
            k: self._scrub(v) if isinstance(v, str) else v for k, v in attrs.asdict(metrics).items()
        }
        line = json.dumps(fields, ensure_ascii=False)
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def __str__(self) -> str:
        return str(self._path)


class FanOut:
    """Every record to every sink. A sink that fails (a full disk, a file made read-only) is
    skipped for that record, reported once when it starts failing, and tried again at every
    turn, so a disk with room again takes the next record; the others never notice."""

    def __init__(self, sinks: Sequence[MetricsSink]) -> None:
        self._sinks = tuple(sinks)
        self._lock = threading.Lock()  # turns close on several threads
        self._failing: set[int] = set()  # indices of the sinks failing now

    def record(self, metrics: TurnMetrics) -> None:
        for index, sink in enumerate(self._sinks):
            try:
                sink.record(metrics)
            except Exception as error:
                if self._now_failing(index, True):
                    log.warning(
                        "turn metrics cannot be written to %s (%s): skipped until it works again",
                        sink, error,
                    )  # fmt: skip
                continue
            if self._now_failing(index, False):
                log.info("turn metrics are written to %s again", sink)

    def _now_failing(self, index: int, failing: bool) -> bool:
        """Whether this changes the sink's state."""
        with self._lock:
            changed = (index in self._failing) != failing
            if failing:
                self._failing.add(index)
            else:
                self._failing.discard(index)
            return changed

    def __str__(self) -> str:
        return " and ".join(str(sink) for sink in self._sinks)
