"""How much of the machine's cores other programs use, from Linux's /proc (unknown elsewhere).

The machine's busy time (/proc/stat, every core: user, nice, system, interrupts and the time a
hypervisor stole) less the agent's own (its process and its children's, /proc/<pid>/stat),
between two samples: what a browser tab or a build beside the agent takes, in cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from adapters.cpu_watch import TICKS_PER_S, cpu_ticks

PROC = Path("/proc")
# Fields of /proc/stat's "cpu" line that count as busy: user, nice, system, irq, softirq, steal
# (guest time is already inside user and nice).
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def machine_busy_ticks(stat_text: str) -> tuple[int, int]:
    """(busy ticks of all cores, number of cores) from the text of /proc/stat."""
    cores, busy = 0, None
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:]]
            busy = sum(values[i] for i in _BUSY_FIELDS if i < len(values))
        elif fields and fields[0].startswith("cpu"):
            cores += 1
    if busy is None:
        raise ValueError("no cpu line in /proc/stat")
    return busy, cores


class MachineLoad:
    """`others(ours)`: the cores' worth of CPU other programs used since the previous call
    (None on the first call, or where /proc cannot tell); `ours` are the agent's processes
    (this one, and the servers it started)."""

    def __init__(self, proc: Path = PROC, clock: Callable[[], float] = time.monotonic) -> None:
        self._proc, self._clock = proc, clock
        self._previous: tuple[float, int] | None = None
        self._own: dict[int, int] = {}  # pid -> its ticks at the previous call

    def others(self, ours: Iterable[int] = (os.getpid(),)) -> float | None:
        try:
            busy, _ = machine_busy_ticks((self._proc / "stat").read_text())
        except (OSError, ValueError, IndexError):
            return None
        now = self._clock()
        own_ticks = 0
        own: dict[int, int] = {}
        for pid in ours:
            try:
                own[pid] = cpu_ticks((self._proc / str(pid) / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue  # ended meanwhile
            # A process started since the previous call spent all its time in this interval.
            own_ticks += own[pid] - self._own.get(pid, 0 if self._previous else own[pid])
        previous, self._previous, self._own = self._previous, (now, busy), own
        if previous is None or now <= previous[0]:
            return None
        other_ticks = (busy - previous[1]) - own_ticks
        return max(0.0, other_ticks / TICKS_PER_S / (now - previous[0]))

    def measure(self, seconds: float) -> float | None:
        """The other programs' load over the next `seconds` (blocks that long)."""
        self.others()
        time.sleep(seconds)
        return self.others()
