"""A Realtime session's sound: the client's microphone arrives as 24 kHz pcm16 appended to the
input buffer, and its speaker is the audio deltas sent back. A `DuplexCore` runs it as it runs a
sound card, ticked every 32 ms by the session's own clock thread, so turn-taking, barge-in and
what the user heard of a reply work exactly as in local mode.

Each tick takes one 16 kHz block of what the client sent, or silence when nothing is waiting (the
client paused, or sends only when the user talks), and sends the reply block the core plays, if
any (the idle dither stays here). A client that sends faster than real time (a recording, a
burst after a network stall) is caught up at twice the pace, so its words are not heard late.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from adapters.duplex_core import CoreBackedAudio, DuplexCore
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, SAMPLE_RATE, silence

log = logging.getLogger(__name__)

WIRE_RATE = 24_000
# Blocks waiting beyond this (about 100 ms) are caught up at two blocks a tick.
CATCH_UP_BLOCKS = 3
# Behind the clock by more than this (the process was stalled): start afresh, without a burst.
RESYNC_S = 0.5
# The most client audio a session keeps waiting: uncommitted (turn detection off), or not heard
# yet (a client sending faster than real time). Beyond it the oldest goes, so a client that
# never commits, or floods, cannot grow the server's memory without end.
MAX_HELD_S = 120.0
MAX_WAITING_S = 30.0


class SessionAudio(CoreBackedAudio):
    def __init__(self, send: Callable[[bytes], None]) -> None:
        """`send(pcm)`: 24 kHz pcm16 of the reply, in the order it plays."""
        import soxr

        self._core = DuplexCore()
        self._send = send
        self._to_pipeline = soxr.ResampleStream(WIRE_RATE, SAMPLE_RATE, 1, dtype="int16")
        self._to_wire = soxr.ResampleStream(SAMPLE_RATE, WIRE_RATE, 1, dtype="int16")
        self._lock = threading.Lock()  # the input buffers: appended by the session, taken here
        self._input = bytearray()  # heard by the pipeline, block by block
        self._held = bytearray()  # turn detection off: kept for the client's commit
        self._heard = True
        self._dropping = False  # said once, until the client is within bounds again
        self._ticks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # The port's lifecycle.

    def check(self) -> None:
        """Nothing to check: the client's audio comes over the connection."""

    def open(self) -> None:
        self._thread = threading.Thread(target=self._run, name="session-audio", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    # The session's side.

    @property
    def now_ms(self) -> int:
        """The session's audio clock: milliseconds of input heard so far."""
        return round(self._ticks * BLOCK_SECONDS * 1000)

    def hear(self, heard: bool) -> None:
        """True: appended audio goes to the pipeline's VAD (server turn detection); False: it
        is held until `take_held` (the client ends its turns itself)."""
        with self._lock:
            self._heard = heard
            self._held.clear()

    def append(self, pcm24: bytes) -> None:
        """Client audio: 24 kHz pcm16 mono, of any length."""
        samples = np.frombuffer(pcm24, dtype="<i2")
        pcm = self._to_pipeline.resample_chunk(samples).tobytes()
        with self._lock:
            buffer = self._input if self._heard else self._held
            most_s = MAX_WAITING_S if self._heard else MAX_HELD_S
            buffer.extend(pcm)
            excess = len(buffer) - int(most_s * SAMPLE_RATE) * 2  # pcm16: always even
            if excess > 0:
                del buffer[:excess]
                if not self._dropping:
                    log.warning(
                        "a Realtime client sent more than %g s of audio %s: the oldest is dropped",
                        most_s, "ahead of real time" if self._heard else "without a commit",
                    )  # fmt: skip
            self._dropping = excess > 0

    def clear(self) -> None:
        """Forgets the client audio not heard yet."""
        with self._lock:
            self._input.clear()
            self._held.clear()

    def take_held(self) -> bytes:
        """The audio held since the last take (16 kHz pcm16)."""
        with self._lock:
            held = bytes(self._held)
            self._held.clear()
            return held

    # The clock thread.

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            due += BLOCK_SECONDS
            if time.monotonic() - due > RESYNC_S:
                due = time.monotonic()
            with self._lock:
                behind = len(self._input) // BLOCK_BYTES > CATCH_UP_BLOCKS
            self._tick()
            if behind:
                self._tick()

    def _tick(self) -> None:
        with self._lock:
            if len(self._input) >= BLOCK_BYTES:
                block = bytes(self._input[:BLOCK_BYTES])
                del self._input[:BLOCK_BYTES]
            else:
                block = silence(BLOCK_BYTES // 2)
        self._ticks += 1
        played = self._core.tick(block)
        if played is not self._core.dither:
            upsampled = self._to_wire.resample_chunk(np.frombuffer(played, dtype="<i2"))
            if upsampled.size:
                self._send(upsampled.tobytes())
