"""The device supervisor's own policy, on a fake device and a clock the test sets: which losses
count towards giving up, and a close that comes while the device is being reopened. What it
does for each real adapter is in test_sounddevice_audio.py and test_sound_server.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from adapters.device_supervisor import DeviceSupervisor, EventWindow
from adapters.duplex_core import DuplexCore
from domain.audio import AudioFailed

log = logging.getLogger(__name__)


class FakeDevice:
    """Always moving; lost once each time the test sets `lose`. `gate`, when set, holds `start`
    until the test opens it."""

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0
        self.running = False  # a stream was started and not stopped since
        self.lose = threading.Event()
        self.gate: threading.Event | None = None
        self._moved = 0

    def start(self, relist: bool) -> str:
        if self.gate is not None:
            self.gate.wait()
        self.starts += 1
        self.running = True
        return f"fake {self.starts}"

    def stop(self, drain: bool, wait_s: float) -> bool:
        self.stops += 1
        self.running = False
        return True

    def progress(self) -> int:
        self._moved += 1
        return self._moved

    def lost_because(self, now: float) -> str | None:
        if self.lose.is_set():
            self.lose.clear()
            return "unplugged"
        return None

    def stuck_because(self, now: float) -> str | None:
        return None

    def report(self, now: float) -> None:
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def until(read: Callable[[], object], wanted: object, timeout_s: float = 5.0) -> None:
    """Waits for `read()` to give `wanted`."""
    deadline = time.monotonic() + timeout_s
    while (got := read()) != wanted:
        assert time.monotonic() < deadline, f"{got!r} after {timeout_s} s, not {wanted!r}"
        time.sleep(0.01)


def failures(core: DuplexCore) -> list[AudioFailed]:
    events = iter(lambda: core.next_event(0), None)
    return [event for event in events if isinstance(event, AudioFailed)]


def test_an_event_window_counts_only_what_is_recent() -> None:
    window = EventWindow(within_s=30.0)
    assert [window.add(at) for at in (0.0, 20.0, 30.0)] == [1, 2, 3]
    assert window.add(40.0) == 3  # the one at 0 is over 30 s old
    assert window.count(100.0) == 0


def test_only_losses_within_the_window_count_towards_giving_up() -> None:
    device, core, clock = FakeDevice(), DuplexCore(), FakeClock()
    supervisor = DeviceSupervisor(device, core, log, "try another", clock=clock)
    supervisor.open()
    try:
        for count, at in enumerate((0.0, 20.0, 40.0, 60.0), start=1):  # never 3 within 30 s
            clock.now = at
            device.lose.set()
            until(lambda: supervisor.reopened, count)
        assert failures(core) == []
        clock.now = 65.0  # the third since 40
        device.lose.set()
        failed = core.next_event(timeout_s=5.0)
    finally:
        supervisor.close()
    assert failed == AudioFailed(
        "The sound device keeps failing (unplugged, 3 times in 30 s): check it, or try another"
    )
    assert supervisor.reopened == 4


def test_a_close_while_the_device_is_reopened_stops_what_the_reopening_started() -> None:
    device, core = FakeDevice(), DuplexCore()
    supervisor = DeviceSupervisor(device, core, log, "try another")
    supervisor.open()
    device.gate = threading.Event()
    device.lose.set()
    until(lambda: device.stops, 1)  # the lost stream is gone; the new one is on its way
    started = time.monotonic()
    supervisor.close()
    assert time.monotonic() - started < 0.3  # it does not wait for the start
    device.gate.set()
    until(lambda: (device.starts, device.running), (2, False))
    assert failures(core) == []
    assert supervisor.reopened == 0
