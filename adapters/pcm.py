"""int16 PCM <-> float samples, shared by the adapters that feed models or read them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

# A turn whose loudest sample stays below -40 dBFS holds no speech the VAD could have heard;
# Whisper would hallucinate on it ("Thank you."), so it gives an empty final instead.
SILENCE_PEAK = 0.01


def pcm_to_float(audio: bytes) -> NDArray[np.float32]:
    """16-bit little-endian PCM -> float32 in [-1, 1), the input speech models take."""
    return np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0


def is_near_silent(samples: NDArray[np.float32]) -> bool:
    return samples.size == 0 or float(np.max(np.abs(samples))) < SILENCE_PEAK


def float_to_pcm(samples: NDArray[np.float32], gain: float = 1.0) -> bytes:
    """Float samples -> 16-bit little-endian PCM, clipped rather than wrapped around."""
    pcm: NDArray[np.int16] = (np.clip(samples * gain, -1.0, 1.0) * 32767.0).astype("<i2")
    return pcm.tobytes()
