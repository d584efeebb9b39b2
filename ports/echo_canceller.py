from __future__ import annotations

from typing import Protocol


class EchoCanceller(Protocol):
    """Removes the agent's own voice from the microphone (acoustic echo cancellation).

    Called on the audio thread once per 512-sample block (16 kHz int16 mono bytes) with the
    block just captured and the block being played in the same tick (the far end); returns the
    microphone block with the echo removed, same length. `delay_ms` is the canceller's starting
    guess of how long after it is handed to `process` a played block is heard in the microphone
    (the device's output latency plus its input latency); the canceller refines it.
    """

    def set_delay_ms(self, delay_ms: int) -> None: ...

    def process(self, mic: bytes, played: bytes) -> bytes: ...

    def reset(self) -> None: ...
