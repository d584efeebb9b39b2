"""WebRTC's AEC3 echo canceller, from the `pywebrtc-audio` wheel (Apache-2.0).

AEC3 works on 10 ms frames (160 samples at 16 kHz); fed 512-sample blocks directly it cancels
clearly worse. So each block is cut into 10 ms frames, the remainder carried to the next block,
and the cleaned output is held back by one frame (10 ms), which keeps every returned block
whole. It costs well under a millisecond of CPU per 32 ms block, and takes enough of the echo
of the simulated rooms (`adapters/simulated_room.py`) out that Silero hears none of it
(tests/adapters/test_webrtc_echo.py). The wheel is imported when
the canceller is built, not when this module is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adapters.errors import SetupError
from domain.audio import BLOCK_BYTES, SAMPLE_RATE

FRAME_SAMPLES = SAMPLE_RATE // 100  # 10 ms
_FRAME_BYTES = 2 * FRAME_SAMPLES


def _import_wheel() -> Any:  # the module; its stubs are not worth the dependency in mypy
    try:
        import pywebrtc_audio
    except ImportError as exc:
        raise SetupError(
            "Echo cancellation needs pywebrtc-audio: run `pip install 'pywebrtc-audio==0.2.0'`, "
            "or turn it off with --aec false (only with headphones)"
        ) from exc
    return pywebrtc_audio


class WebrtcEchoCanceller:
    """`EchoCanceller` on WebRTC AEC3. Not thread-safe: one audio thread calls it."""

    def __init__(self, delay_ms: int = 0) -> None:
        self._wheel = _import_wheel()
        self._delay_ms = max(0, int(delay_ms))
        self._aec: Any = None
        self.reset()

    def set_delay_ms(self, delay_ms: int) -> None:
        self._delay_ms = max(0, int(delay_ms))
        self._aec.stream_delay_ms = self._delay_ms

    def reset(self) -> None:
        self._aec = self._wheel.EchoCanceller(
            sample_rate=SAMPLE_RATE, num_channels=1, stream_delay_ms=self._delay_ms
        )
        self._mic = bytearray()
        self._far = bytearray()
        self._out = bytearray(_FRAME_BYTES)  # the one frame the output is held back by

    def process(self, mic: bytes, played: bytes) -> bytes:
        if len(mic) != BLOCK_BYTES or len(played) != BLOCK_BYTES:
            raise ValueError(f"the canceller takes blocks of {BLOCK_BYTES} bytes")
        self._mic += mic
        self._far += played
        while len(self._mic) >= _FRAME_BYTES:
            near = np.frombuffer(bytes(self._mic[:_FRAME_BYTES]), dtype="<i2")
            far = np.frombuffer(bytes(self._far[:_FRAME_BYTES]), dtype="<i2")
            del self._mic[:_FRAME_BYTES], self._far[:_FRAME_BYTES]
            self._out += np.asarray(self._aec.process(near, far), dtype="<i2").tobytes()
        out = bytes(self._out[:BLOCK_BYTES])
        del self._out[:BLOCK_BYTES]
        return out
