"""A watch on the agent's own CPU use while it is idle, from Linux's /proc (a no-op elsewhere).

An idle agent (listening, nothing to say) uses a few percent of a core. When it uses more than
half of one, something spins, and what matters is which thread: `CpuWatch` samples
/proc/self/stat every few seconds from a daemon thread and, while `idle()` held over the whole
interval, logs one warning naming the busiest threads (Python's thread names where it has them,
else the kernel's `comm`), at most once a minute.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

log = logging.getLogger(__name__)

PROC_SELF = Path("/proc/self")
DEFAULT_PERIOD_S = 5.0
DEFAULT_THRESHOLD = 0.5  # of one core
DEFAULT_QUIET_S = 60.0  # at most one warning per this many seconds


def _ticks_per_second() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        return 100


TICKS_PER_S = _ticks_per_second()


def cpu_ticks(stat_text: str) -> int:
    """utime + stime, in clock ticks, from the text of a /proc/<pid>[/task/<tid>]/stat file.
    The command name (field 2) may hold spaces and parentheses: fields are counted after the
    last ')'."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of the whole line


def thread_cpu_seconds(tid: int, proc: Path = PROC_SELF) -> float | None:
    """CPU time used so far by thread `tid` of this process; None where /proc cannot tell."""
    try:
        return cpu_ticks((proc / "task" / str(tid) / "stat").read_text()) / TICKS_PER_S
    except (OSError, IndexError, ValueError):
        return None


def python_thread_names() -> dict[int, str]:
    """Native thread id -> Python thread name, for the threads Python started or adopted."""
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


@attrs.frozen
class _Sample:
    at_s: float
    idle: bool
    process_ticks: int
    threads: Mapping[int, tuple[str, int]]  # tid -> (kernel name, ticks)


class CpuWatch:
    """Warns when the process uses more than `threshold` of a core while `idle()` is true.

    `start`/`stop` run `sample` every `period_s` on a daemon thread; tests call `sample`
    directly with a fake `proc` folder and `clock`.
    """

    def __init__(
        self,
        idle: Callable[[], bool],
        *,
        period_s: float = DEFAULT_PERIOD_S,
        threshold: float = DEFAULT_THRESHOLD,
        quiet_s: float = DEFAULT_QUIET_S,
        top: int = 3,
        proc: Path = PROC_SELF,
        clock: Callable[[], float] = time.monotonic,
        thread_names: Callable[[], Mapping[int, str]] = python_thread_names,
    ) -> None:
        self._idle = idle
        self._period_s = period_s
        self._threshold = threshold
        self._quiet_s = quiet_s
        self._top = top
        self._proc = proc
        self._clock = clock
        self._thread_names = thread_names
        self._previous: _Sample | None = None
        self._warned_at: float | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def supported(self) -> bool:
        return (self._proc / "stat").is_file()

    def start(self) -> None:
        if not self.supported or self._thread is not None:
            return  # not Linux: nothing to watch
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="cpu-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=0.5)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.wait(self._period_s):
            try:
                self.sample()
            except Exception:  # a watch must never take the agent down
                log.debug("cpu watch sample failed", exc_info=True)

    def sample(self) -> str | None:
        """One look: the warning logged, if this interval deserved one."""
        current = self._read()
        if current is None:
            return None
        previous, self._previous = self._previous, current
        if previous is None or not (previous.idle and current.idle):
            return None
        elapsed = current.at_s - previous.at_s
        if elapsed <= 0:
            return None
        share = (current.process_ticks - previous.process_ticks) / TICKS_PER_S / elapsed
        if share <= self._threshold:
            return None
        if self._warned_at is not None and current.at_s - self._warned_at < self._quiet_s:
            return None
        self._warned_at = current.at_s
        line = (
            f"High CPU while idle: {100 * share:.0f} % of a core over the last {elapsed:.0f} s; "
            f"busiest threads: {self._busiest(previous, current, elapsed)}"
        )
        log.warning(line)
        return line

    def _busiest(self, previous: _Sample, current: _Sample, elapsed: float) -> str:
        names = self._thread_names()
        shares = []
        for tid, (comm, ticks) in current.threads.items():
            before = previous.threads.get(tid, (comm, 0))[1]
            shares.append(((ticks - before) / TICKS_PER_S / elapsed, tid, names.get(tid, comm)))
        shares.sort(key=lambda item: (-item[0], item[1]))
        return ", ".join(
            f"{name} ({tid}) {100 * share:.0f} %" for share, tid, name in shares[: self._top]
        )

    def _read(self) -> _Sample | None:
        try:
            process_ticks = cpu_ticks((self._proc / "stat").read_text())
        except (OSError, IndexError, ValueError):
            return None
        idle = bool(self._idle())
        threads: dict[int, tuple[str, int]] = {}
        try:
            tasks = list((self._proc / "task").iterdir())
        except OSError:
            tasks = []
        for task in tasks:
            try:  # a thread may end between the listing and the read
                ticks = cpu_ticks((task / "stat").read_text())
                comm = (task / "comm").read_text().strip()
                threads[int(task.name)] = (comm, ticks)
            except (OSError, IndexError, ValueError):
                continue
        return _Sample(self._clock(), idle, process_ticks, threads)
