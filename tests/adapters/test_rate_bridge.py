"""Running the 16 kHz duplex from a device at 48 or 44.1 kHz: both ways resampled, in whole
blocks, without a gap once primed."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.duplex_core import DuplexCore
from adapters.rate_bridge import RateBridge
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, SAMPLE_RATE, MicBlock


def tone(hz: float, rate: int, seconds: float, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2")


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("device_rate", [48_000, 44_100])
def test_rate_bridge_resamples_both_ways_in_512_sample_blocks(device_rate: int) -> None:
    core = DuplexCore()
    bridge = RateBridge(core, device_rate)
    frames = bridge.block_frames
    mic = tone(440, device_rate, 4.0)
    reply = tone(1000, SAMPLE_RATE, 64 * BLOCK_SECONDS).tobytes()
    for i in range(0, len(reply), BLOCK_BYTES):
        core.play(reply[i : i + BLOCK_BYTES])
    played = [
        bridge.process(mic[i : i + frames].tobytes(), frames)
        for i in range(0, len(mic) - frames + 1, frames)
    ]
    assert all(len(block) == 2 * frames for block in played)
    assert bridge.short_blocks == 0
    # The mic came through in 512-sample blocks, marked as playing while the reply went out.
    blocks = [e for e in iter(lambda: core.next_event(0), None) if isinstance(e, MicBlock)]
    heard = b"".join(e.pcm for e in blocks if not e.playing)
    assert len(heard) % BLOCK_BYTES == 0
    # 4 s of mic is 125 blocks: 64 went by while the reply played.
    assert sum(e.playing for e in blocks) == 64
    assert len(heard) // BLOCK_BYTES == pytest.approx(125 - 64, abs=2)
    assert dominant_hz(np.frombuffer(heard, "<i2"), SAMPLE_RATE) == pytest.approx(440, abs=1)
    out = np.frombuffer(b"".join(played), "<i2")
    reply_out = out[int(0.2 * device_rate) : int(1.8 * device_rate)]
    assert dominant_hz(reply_out, device_rate) == pytest.approx(1000, abs=1)
    assert np.abs(reply_out).max() == pytest.approx(8000, rel=0.02)
