"""The audio contract of local mode, as plain values.

PCM is carried as `bytes` of little-endian int16 mono samples: immutable, cheap to pass between
threads, and free of any array library in the domain.
"""

from __future__ import annotations

import math
import sys
from array import array

import attrs

SAMPLE_RATE = 16_000
BLOCK_SAMPLES = 512
BYTES_PER_SAMPLE = 2
BLOCK_BYTES = BLOCK_SAMPLES * BYTES_PER_SAMPLE
BLOCK_SECONDS = BLOCK_SAMPLES / SAMPLE_RATE  # 32 ms


def silence(n_samples: int) -> bytes:
    return bytes(n_samples * BYTES_PER_SAMPLE)


def level_db(pcm: bytes) -> float:
    """The RMS level of int16 PCM in dB full scale (-inf for digital silence)."""
    samples = array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return -math.inf
    mean_square = sum(x * x for x in samples) / len(samples)
    return 10 * math.log10(mean_square / 32768**2) if mean_square else -math.inf


@attrs.frozen
class MicBlock:
    """One 512-sample block from the microphone, stamped on the audio clock (seconds since the
    stream opened, counted in blocks, so it never drifts from the audio itself).

    Every block is delivered; `playing` says whether reply audio (not the idle dither) went out
    of the speaker during it, so the application's mute policy decides what reaches the VAD
    (half duplex drops those blocks; barge-in listens to them through echo cancellation)."""

    pcm: bytes
    captured_at_s: float
    playing: bool = False


@attrs.frozen
class ReplyVoiced:
    """Queued before the first non-silent block of turn `turn_id`'s reply."""

    turn_id: int


@attrs.frozen
class ReplyDone:
    """Queued behind the last block of turn `turn_id`'s reply (or of its apology)."""

    turn_id: int


ReplyMark = ReplyVoiced | ReplyDone


@attrs.frozen
class PlaybackMark:
    """A mark queued behind reply audio, echoed back when the output reached it: everything
    queued before it has played, at `played_at_s` on the audio clock."""

    mark: ReplyMark
    played_at_s: float


@attrs.frozen
class EndOfInput:
    """The microphone source is exhausted (WAV replay); the agent finishes and exits."""


@attrs.frozen
class AudioFailed:
    """The sound device is gone (unplugged, the stream died) and could not be reopened.
    `reason` is one line for the user; the agent stops and exits non-zero."""

    reason: str


AudioEvent = MicBlock | PlaybackMark | EndOfInput | AudioFailed


class Reblocker:
    """Cuts a stream of PCM chunks of any length into exact 512-sample blocks; `flush` pads the
    tail with silence, because the output stream only takes whole blocks."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, pcm: bytes) -> list[bytes]:
        data = self._pending + pcm
        cut = len(data) - len(data) % BLOCK_BYTES
        self._pending = data[cut:]
        return [data[i : i + BLOCK_BYTES] for i in range(0, cut, BLOCK_BYTES)]

    def flush(self) -> list[bytes]:
        if not self._pending:
            return []
        block = self._pending + bytes(BLOCK_BYTES - len(self._pending))
        self._pending = b""
        return [block]
