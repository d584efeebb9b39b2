"""A simulated room between the speaker and the microphone, so that WAV replay hears its own
voice the way a laptop on open speakers does: every block played comes back into the
microphone after `delay_ms`, scaled by `gain`, smeared by a decaying impulse response (a direct
path, then seeded random reflections decaying exponentially), plus a little noise. Without it
the replay path has no echo at all and barge-in could not be tested honestly.
"""

from __future__ import annotations

import attrs
import numpy as np

from domain.audio import BLOCK_SAMPLES, SAMPLE_RATE


@attrs.frozen
class RoomSpec:
    delay_ms: float = 40.0  # speaker -> microphone, beyond the device's own one block
    gain: float = 0.5  # of the direct path; laptops pick up their own speakers loudly
    reverb_ms: float = 200.0  # length of the reflections' tail
    decay_ms: float = 30.0  # their amplitude's exponential decay constant (RT60 ~ 200 ms)
    reverb_db: float = -10.0  # the tail's energy relative to the direct path's
    noise_dbfs: float = -65.0
    seed: int = 0


class SimulatedRoom:
    """`echo()` is what the microphone picks up in the next block from earlier playback; `play`
    hands it each block played (overlap-add of the block convolved with the room's response)."""

    def __init__(self, spec: RoomSpec | None = None) -> None:
        spec = spec or RoomSpec()
        rng = np.random.default_rng(spec.seed)
        tail = round(spec.reverb_ms * SAMPLE_RATE / 1000)
        t = np.arange(tail) / SAMPLE_RATE
        response = rng.standard_normal(tail) * np.exp(-t * 1000 / spec.decay_ms)
        response[0] = 0.0
        response *= np.sqrt(10 ** (spec.reverb_db / 10) / np.sum(response**2))
        response[0] = 1.0
        self._response = (spec.gain * response).astype(np.float64)
        self._delay = round(spec.delay_ms * SAMPLE_RATE / 1000)
        self._pending = np.zeros(self._delay + tail + BLOCK_SAMPLES, np.float64)
        self._noise = 32768.0 * 10 ** (spec.noise_dbfs / 20)
        self._rng = rng

    def play(self, block: bytes) -> None:
        samples = np.frombuffer(block, dtype="<i2").astype(np.float64)
        echo = np.convolve(samples, self._response)
        self._pending[self._delay : self._delay + len(echo)] += echo

    def into_mic(self, mic: bytes) -> bytes:
        """`mic` with the room's echo and noise of this block added."""
        heard = np.frombuffer(mic, dtype="<i2").astype(np.float64) + self._pending[:BLOCK_SAMPLES]
        heard += self._rng.standard_normal(BLOCK_SAMPLES) * self._noise
        self._pending = np.roll(self._pending, -BLOCK_SAMPLES)
        self._pending[-BLOCK_SAMPLES:] = 0.0
        return np.clip(np.round(heard), -32768, 32767).astype("<i2").tobytes()
