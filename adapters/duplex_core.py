"""The duplex of local mode, shared by the live sound device and WAV replay.

`DuplexCore.tick` is one audio callback: it takes the block the microphone just captured and
returns the block to play. Every mic block is handed on, stamped with whether reply audio went
out in the same tick; what the VAD hears is the application's mute policy, not ours. It knows
nothing of sounddevice or files, so it is tested without a device, and both adapters behave the
same by construction.
"""

from __future__ import annotations

import queue
import random
from collections import deque

from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SAMPLES,
    BLOCK_SECONDS,
    AudioEvent,
    MicBlock,
    PlaybackMark,
    ReplyMark,
)
from ports.echo_canceller import EchoCanceller


def make_dither() -> bytes:
    """A fixed block of +-1 LSB noise: inaudible, but never digital silence, so PulseAudio and
    PipeWire do not suspend the sink and clip the first word of the next reply. Seeded, so every
    run plays the same bytes."""
    rng = random.Random(0)
    samples = bytearray()
    for _ in range(BLOCK_SAMPLES):
        samples += rng.choice((-1, 1)).to_bytes(2, "little", signed=True)
    return bytes(samples)


class DuplexCore:
    """Reply audio and marks queued by the application, mic blocks and mark echoes handed back.

    Thread-safe without locks: `play`/`mark`/`clear_playback` run on the application's threads,
    `tick` on the audio thread, and they meet only in a `deque` (atomic append/popleft) and a
    `SimpleQueue`. The audio clock is the number of ticks times 32 ms.
    """

    def __init__(self, echo_canceller: EchoCanceller | None = None) -> None:
        """`echo_canceller` (optional) removes the block played in each tick from the mic."""
        self.dither = make_dither()
        self._canceller = echo_canceller
        self._playback: deque[bytes | ReplyMark] = deque()
        self._events: queue.SimpleQueue[AudioEvent] = queue.SimpleQueue()
        self._ticks = 0
        self._paused = False

    # The application's side.

    def play(self, block: bytes) -> None:
        if len(block) != BLOCK_BYTES:
            raise ValueError(f"a playback block is {BLOCK_BYTES} bytes, got {len(block)}")
        self._playback.append(block)

    def mark(self, mark: ReplyMark) -> None:
        self._playback.append(mark)

    def clear_playback(self) -> int:
        queued = list(self._playback)  # a tick may take one more meanwhile: off by one at most
        self._playback.clear()
        return sum(isinstance(item, bytes) for item in queued)

    def pause_playback(self, paused: bool) -> None:
        self._paused = paused

    def has_playback(self) -> bool:
        """Reply audio or marks are still queued."""
        return bool(self._playback)

    def next_event(self, timeout_s: float) -> AudioEvent | None:
        try:
            return self._events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def put_event(self, event: AudioEvent) -> None:
        """For events that do not come from a tick (the end of a WAV file)."""
        self._events.put(event)

    # The audio thread's side.

    def tick(self, mic: bytes | None) -> bytes:
        """One 32 ms block: echo the marks the output has reached, then play the next reply
        block, or the dither when none is queued, and hand on `mic` (None: the source has
        ended) with `playing` set when a reply block went out."""
        at_s = self._ticks * BLOCK_SECONDS
        self._ticks += 1
        played: bytes | None = None
        while not self._paused:
            try:
                item = self._playback.popleft()
            except IndexError:  # nothing queued (or cleared meanwhile)
                break
            if isinstance(item, bytes):
                played = item
                break
            # Everything queued before the mark has been played by earlier ticks.
            self._events.put(PlaybackMark(item, at_s))
        out = self.dither if played is None else played
        if mic is not None:
            if self._canceller is not None:
                mic = self._canceller.process(mic, out)
            self._events.put(MicBlock(mic, at_s, playing=played is not None))
        return out


class CoreBackedAudio:
    """The application's side of `AudioDuplex`, handed to a `DuplexCore`; the subclass drives
    the core's `tick` from its audio source (a sound card, a WAV file)."""

    _core: DuplexCore

    def next_event(self, timeout_s: float) -> AudioEvent | None:
        return self._core.next_event(timeout_s)

    def play(self, block: bytes) -> None:
        self._core.play(block)

    def mark(self, mark: ReplyMark) -> None:
        self._core.mark(mark)

    def clear_playback(self) -> int:
        return self._core.clear_playback()

    def pause_playback(self, paused: bool) -> None:
        self._core.pause_playback(paused)
