"""Metrics that cannot be written cost no turn: the turn closes, listening re-opens, the next
turns are served, and the failure is one log line, not one per turn."""

from __future__ import annotations

import errno
import logging

import pytest

from domain.messages import ChatMessage, TurnMetrics
from tests.application.harness import Harness, make_harness
from tests.application.test_conversation import listening_again
from tests.fakes import FakeMetrics, silence_blocks, speech


class FullDisk(FakeMetrics):
    """Notes each record, then fails to write it."""

    def record(self, metrics: TurnMetrics) -> None:
        super().record(metrics)
        raise OSError(errno.ENOSPC, "No space left on device")

    def __str__(self) -> str:
        return "turns.jsonl"


def test_a_metrics_sink_that_fails_costs_no_turn_and_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ref: list[Harness] = []
    script: list[object] = []
    for code in (1, 2, 3):
        script += [*silence_blocks(0.3), *speech(code, 1.0), *silence_blocks(0.8)]
        script.append(listening_again(ref))
    harness = make_harness(script[:-1], {1: "one", 2: "", 3: "three"}, ["Uno.", "Tres."])
    harness.metrics = FullDisk()
    harness.agent.adapters.metrics.override(harness.metrics)
    ref.append(harness)
    with caplog.at_level(logging.WARNING):
        harness.run()
    assert not harness.conversation.crashed, harness.conversation.fault
    # Closed on the listen thread (answered) and on the recogniser's (empty), each once.
    assert [r.outcome for r in harness.metrics.records] == ["answered", "empty", "answered"]
    assert harness.conversation.memory.history[-2:] == [
        ChatMessage("user", "three"), ChatMessage("assistant", "Tres.")
    ]  # fmt: skip
    (report,) = [r.getMessage() for r in caplog.records if "turn metrics" in r.getMessage()]
    assert "turns.jsonl" in report and "No space left on device" in report
