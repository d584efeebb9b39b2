"""The idle CPU watch on a fake /proc folder and a fake clock, then once on the real /proc."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import pytest

from adapters.cpu_watch import TICKS_PER_S, CpuWatch, cpu_ticks, thread_cpu_seconds


def stat_line(pid: int, comm: str, ticks: int) -> str:
    # utime and stime are fields 14 and 15; split the ticks between them.
    fields = ["S", "1", str(pid), str(pid), "0", "-1", "4194560", "0", "0", "0", "0"]
    return f"{pid} ({comm}) " + " ".join([*fields, str(ticks - ticks // 3), str(ticks // 3)])


class FakeProc:
    """/proc/self with a process stat and one folder per thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "task").mkdir(parents=True)

    def set(self, threads: dict[int, tuple[str, float]]) -> None:
        """Thread id -> (comm, CPU seconds so far); the process total is their sum."""
        total = 0
        for tid, (comm, seconds) in threads.items():
            ticks = round(seconds * TICKS_PER_S)
            total += ticks
            folder = self.root / "task" / str(tid)
            folder.mkdir(exist_ok=True)
            (folder / "stat").write_text(stat_line(tid, comm, ticks))
            (folder / "comm").write_text(comm + "\n")
        (self.root / "stat").write_text(stat_line(100, "python", total))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "self")


def watch_of(proc: FakeProc, clock: Clock, idle: list[bool]) -> CpuWatch:
    return CpuWatch(
        lambda: idle[0],
        proc=proc.root,
        clock=clock,
        thread_names=lambda: {100: "MainThread", 102: "audio-monitor"},
    )


def test_stat_fields_are_counted_after_the_command_name() -> None:
    assert cpu_ticks(stat_line(7, "a (weird) name", 300)) == 300


def test_a_busy_idle_process_is_named_by_its_busiest_threads_once_a_minute(
    proc: FakeProc, caplog: pytest.LogCaptureFixture
) -> None:
    clock, idle = Clock(), [True]
    watch = watch_of(proc, clock, idle)
    proc.set({100: ("python", 10.0), 101: ("python", 3.0), 102: ("python", 1.0)})
    assert watch.sample() is None  # the first look only remembers
    clock.now += 5
    proc.set({100: ("python", 10.2), 101: ("python", 7.0), 102: ("python", 1.1)})
    with caplog.at_level(logging.WARNING, logger="adapters.cpu_watch"):
        line = watch.sample()
        assert line == (
            "High CPU while idle: 86 % of a core over the last 5 s; busiest threads: "
            "python (101) 80 %, MainThread (100) 4 %, audio-monitor (102) 2 %"
        )
        for _ in range(11):  # still busy for 55 s: no second warning within the minute
            clock.now += 5
            proc.set({100: ("python", 10.2), 101: ("python", 7.0 + (clock.now - 1005) * 0.8)})
            assert watch.sample() is None
        clock.now += 5
        proc.set({100: ("python", 10.2), 101: ("python", 7.0 + (clock.now - 1005) * 0.8)})
        assert watch.sample() is not None  # a minute after the first
    assert len(caplog.records) == 2


def test_no_warning_below_half_a_core_or_unless_idle_throughout(proc: FakeProc) -> None:
    clock, idle = Clock(), [True]
    watch = watch_of(proc, clock, idle)
    proc.set({100: ("python", 1.0)})
    watch.sample()
    clock.now += 5
    proc.set({100: ("python", 3.4)})  # 48 %
    assert watch.sample() is None
    idle[0] = False  # busy answering: the watch does not care
    clock.now += 5
    proc.set({100: ("python", 8.4)})
    assert watch.sample() is None
    idle[0] = True  # idle again, but the interval began while busy
    clock.now += 5
    proc.set({100: ("python", 13.4)})
    assert watch.sample() is None
    clock.now += 5
    proc.set({100: ("python", 18.4)})
    assert watch.sample() is not None


def test_without_proc_the_watch_does_nothing(tmp_path: Path) -> None:
    watch = CpuWatch(lambda: True, proc=tmp_path / "missing")
    assert not watch.supported
    watch.start()
    assert watch.sample() is None
    watch.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_on_the_real_proc_a_spinning_thread_is_found(caplog: pytest.LogCaptureFixture) -> None:
    import threading

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin, name="spinner", daemon=True)
    watch = CpuWatch(lambda: True, period_s=0.3, threshold=0.2)
    with caplog.at_level(logging.WARNING, logger="adapters.cpu_watch"):
        spinner.start()
        watch.start()
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.1)
        watch.stop()
        assert spinner.native_id is not None
        spent = thread_cpu_seconds(spinner.native_id)
        stop.set()
    assert caplog.records, "no warning"
    assert "busiest threads: spinner (" in caplog.records[0].getMessage()
    assert spent is not None and spent > 0.05
