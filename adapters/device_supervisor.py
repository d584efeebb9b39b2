"""Keeping a live sound device running: one supervisor for every adapter that streams from a
real device (PortAudio's duplex stream, PulseAudio's client).

The adapter says how to start and stop its streams, how far they have got, and whether they
are lost or stuck (`SoundDevice`); the supervisor decides what to do about it, the same way for
every adapter. Its monitor thread looks every tenth of a second:

- **Lost** (the adapter says why, or no block moved for `stall_s`): one line, then the device is
  reopened, attempts every REOPEN_EVERY_S for `reopen_for_s`; when that fails the application
  gets `AudioFailed`. A device lost again and again right after reopening (a stalled source, a
  failing card) is lost for good: `AudioFailed` at the LOSSES_TO_FAIL-th loss within
  LOSSES_WITHIN_S, whatever reopening says.
- **Stuck** (still moving, but wrong; only the adapter can tell): restarted once any reply has
  played, at most MAX_RESTARTS times a minute.

`close` stops everything within about half a second, even on a wedged device: a stream that
does not stop within CLOSE_WAIT_S is left to the system. Every failure reaches the user as one
line that ends with what to do (`remedy`).

Threads: `open` and `close` run on the application's thread; everything else on the monitor
thread ("audio-monitor"). Only `SoundDevice.stop` can run on both at once (a close while the
monitor reopens), so the adapter hands each stream it started to one caller only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from adapters.duplex_core import DuplexCore
from adapters.errors import SetupError
from domain.audio import AudioFailed

STALL_S = 1.0  # no block moved for this long: the device is lost
# Reopening a lost device: attempts every REOPEN_EVERY_S until REOPEN_FOR_S have passed.
REOPEN_FOR_S = 3.0
REOPEN_EVERY_S = 0.5
# Lost this many times within this many seconds: lost for good, whatever reopening says.
LOSSES_TO_FAIL = 3
LOSSES_WITHIN_S = 30.0
# A stuck stream is restarted at most this many times within this many seconds.
MAX_RESTARTS = 5
RESTARTS_WITHIN_S = 60.0
CLOSE_WAIT_S = 0.4  # what stopping a device waits for it before leaving it to the system
MONITOR_PERIOD_S = 0.1


class SoundDevice(Protocol):
    """What a live sound adapter tells its supervisor."""

    def start(self, relist: bool) -> str:
        """Open and start the streams (`relist`: the system's devices may have changed, list
        them afresh). Raises when the device is not there. Returns the devices' names, for the
        log."""
        ...

    def stop(self, drain: bool, wait_s: float) -> bool:
        """Stop and free the streams started last, if any (`drain`: let what the device holds
        play out, where it can), waiting at most `wait_s`. False when they did not stop in
        time: left to the system."""
        ...

    def progress(self) -> int:
        """How many blocks have moved so far: when it stands still, the device stalled."""
        ...

    def lost_because(self, now: float) -> str | None:
        """Why the device is lost, in a few words (the stream stopped, errors piling up), or
        None. A stall is the supervisor's to see."""
        ...

    def stuck_because(self, now: float) -> str | None:
        """Why the streams, though moving, need a restart (a sentence), or None."""
        ...

    def report(self, now: float) -> None:
        """Log what is worth a line while the device is well; called at every look."""
        ...


class EventWindow:
    """When something happened lately: the times within `within_s` of the last look."""

    def __init__(self, within_s: float) -> None:
        self._within_s = within_s
        self._times: deque[float] = deque()

    def count(self, now: float) -> int:
        while self._times and now - self._times[0] > self._within_s:
            self._times.popleft()
        return len(self._times)

    def add(self, now: float) -> int:
        """Count one at `now`; how many there are now."""
        self._times.append(now)
        return self.count(now)


def keep_trying(
    attempt: Callable[[], None],
    closed: threading.Event,
    for_s: float,
    clock: Callable[[], float],
) -> Exception | None:
    """Call `attempt` every REOPEN_EVERY_S until it returns, `for_s` have passed or `closed` is
    set: None once it succeeded, else the last error (or None if `closed` came first: the
    caller asks `closed`)."""
    started = clock()
    error: Exception | None = None
    while not closed.is_set():
        try:
            attempt()
        except Exception as exc:  # the device is not back (yet)
            error = exc
        else:
            return None
        left = started + for_s - clock()
        if left <= 0:
            break
        closed.wait(min(REOPEN_EVERY_S, left))
    return error


class DeviceSupervisor:
    """Opens `device`, watches it from a monitor thread, reopens it when lost or stuck, and
    closes it; failures go to `core` as `AudioFailed`, lines to `log` (the adapter's, so a line
    names the adapter that said it). `remedy` ends every failure: what the user can do."""

    def __init__(
        self,
        device: SoundDevice,
        core: DuplexCore,
        log: logging.Logger,
        remedy: str,
        *,
        stall_s: float = STALL_S,
        reopen_for_s: float = REOPEN_FOR_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._device = device
        self._core = core
        self._log = log
        self._remedy = remedy
        self._stall_s = stall_s
        self._reopen_for_s = reopen_for_s
        self._clock = clock
        self._closed = threading.Event()
        self._monitor: threading.Thread | None = None
        self._losses = EventWindow(LOSSES_WITHIN_S)
        self._restarts = EventWindow(RESTARTS_WITHIN_S)
        # The monitor's: the device's progress at its last move, and when that was.
        self._progress = 0
        self._progress_at = 0.0
        self.reopened = 0  # times the device was reopened (lost, or stuck)

    def open(self) -> None:
        """Start the device (its errors reach the caller) and the monitor."""
        self._closed.clear()
        self._device.start(relist=False)
        self._monitor = threading.Thread(target=self._watch, name="audio-monitor", daemon=True)
        self._monitor.start()

    def close(self) -> None:
        """Stops everything within about half a second, even on a wedged device."""
        self._closed.set()
        if self._monitor is not None:
            self._monitor.join(timeout=0.1)  # it may be inside a call to the device: do not wait
            self._monitor = None
        if not self._device.stop(drain=True, wait_s=CLOSE_WAIT_S):
            self._log.warning(
                "The sound device did not stop within %.1f s: left to the system", CLOSE_WAIT_S
            )

    # The monitor thread.

    def _watch(self) -> None:
        self._restart_stall_watch()
        while not self._closed.wait(MONITOR_PERIOD_S):
            now = self._clock()
            lost = self._device.lost_because(now) or self._stalled(now)
            if lost is not None:
                if self._lost_too_often(now, lost):
                    return
                self._log.warning("Sound device lost (%s): reopening it", lost)
                if not self._reopen(relist=True):
                    return
                continue
            stuck = self._device.stuck_because(now)
            # Never cut a reply short to unstick the stream: restart once it has played.
            if stuck is None or self._core.has_playback() or not self._may_restart(now):
                self._device.report(now)
                continue
            # A fresh stream through a sound server often starts stuck: the first restart is
            # routine (info); a stream that gets stuck later is worth a warning.
            routine = self.reopened == 0 and self._restarts.count(now) == 1
            level = logging.INFO if routine else logging.WARNING
            self._log.log(level, "%s: restarting the sound stream", stuck)
            if not self._reopen(relist=False, level=level):
                return

    def _restart_stall_watch(self) -> None:
        self._progress = self._device.progress()
        self._progress_at = self._clock()

    def _stalled(self, now: float) -> str | None:
        progress = self._device.progress()
        if progress != self._progress:
            self._progress, self._progress_at = progress, now
            return None
        if now - self._progress_at >= self._stall_s:
            return f"no audio for {now - self._progress_at:.1f} s"
        return None

    def _lost_too_often(self, now: float, reason: str) -> bool:
        if self._losses.add(now) < LOSSES_TO_FAIL:
            return False
        self._log.warning(
            "Sound device lost again (%s), %d times in %.0f s: giving up",
            reason,
            LOSSES_TO_FAIL,
            LOSSES_WITHIN_S,
        )
        self._fail(
            f"The sound device keeps failing ({reason}, {LOSSES_TO_FAIL} times in "
            f"{LOSSES_WITHIN_S:.0f} s): check it, or {self._remedy}"
        )
        return True

    def _may_restart(self, now: float) -> bool:
        restarts = self._restarts.count(now)
        if restarts >= MAX_RESTARTS:
            if restarts == MAX_RESTARTS:  # say it once
                self._restarts.add(now)
                self._log.warning(
                    "The sound stream is still stuck after %d restarts in a minute: left as it is",
                    MAX_RESTARTS,
                )
            return False
        self._restarts.add(now)
        return True

    def _reopen(self, relist: bool, level: int = logging.WARNING) -> bool:
        """Abandon the streams and start the device afresh, for `reopen_for_s`. False (and
        `AudioFailed` queued) when it could not, or `close` came first."""
        # Listing the devices afresh with a stream left open could pull it from under itself.
        relist = self._device.stop(drain=False, wait_s=CLOSE_WAIT_S) and relist
        started = self._clock()
        names: list[str] = []
        error = keep_trying(
            lambda: names.append(self._device.start(relist)),
            self._closed,
            self._reopen_for_s,
            self._clock,
        )
        if self._closed.is_set():  # `close` may have come while we started: nobody else will
            self._device.stop(drain=False, wait_s=CLOSE_WAIT_S)
            return False
        if error is None:
            self.reopened += 1
            self._restart_stall_watch()
            self._log.log(
                level, "Sound device reopened after %.1f s: %s", self._clock() - started, names[-1]
            )
            return True
        # PortAudioError's str() appends its code; its first argument is the message.
        detail = str(error.args[0] if error.args else error).split("\n")[0]
        if not isinstance(error, SetupError):  # a SetupError says what to do already
            detail = f"{detail}: check that it is connected, or {self._remedy}"
        self._fail(f"The sound device stopped working and could not be reopened: {detail}")
        return False

    def _fail(self, reason: str) -> None:
        self._core.put_event(AudioFailed(reason))
