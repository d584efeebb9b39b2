"""Running the 16 kHz duplex from a sound device opened at another rate (raw ALSA devices often
refuse 16 kHz): the microphone resampled down and the speaker up by streaming soxr
resamplers."""

from __future__ import annotations

import numpy as np

from adapters.duplex_core import DuplexCore
from domain.audio import BLOCK_BYTES, BLOCK_SAMPLES, SAMPLE_RATE


class RateBridge:
    """Feeds a `DuplexCore` 16 kHz blocks from device-rate microphone audio, and hands back
    device-rate audio to play.

    The resamplers deliver in bursts (soxr works in chunks, and device blocks rarely hold a
    whole number of 16 kHz blocks), so the output plays silence until two device blocks are in
    hand, and from then on always has some to play while the next burst comes.
    """

    def __init__(self, core: DuplexCore, device_rate: int) -> None:
        import soxr

        self._core = core
        self.block_frames = round(BLOCK_SAMPLES * device_rate / SAMPLE_RATE)
        self._mic_resampler = soxr.ResampleStream(device_rate, SAMPLE_RATE, 1, dtype="int16")
        self._out_resampler = soxr.ResampleStream(SAMPLE_RATE, device_rate, 1, dtype="int16")
        self._mic = bytearray()
        self._out = bytearray()
        self._cushion = 2 * 2 * self.block_frames
        self._primed = False
        self.short_blocks = 0  # output blocks padded with silence once primed: the cushion ran dry

    def process(self, mic: bytes, out_frames: int) -> bytes:
        """Device-rate int16 mic samples in, `out_frames` device-rate samples to play out."""
        self._mic += self._mic_resampler.resample_chunk(np.frombuffer(mic, dtype="<i2")).tobytes()
        while len(self._mic) >= BLOCK_BYTES:
            played = self._core.tick(bytes(self._mic[:BLOCK_BYTES]))
            del self._mic[:BLOCK_BYTES]
            upsampled = self._out_resampler.resample_chunk(np.frombuffer(played, dtype="<i2"))
            self._out += upsampled.tobytes()
        wanted = 2 * out_frames
        if not self._primed:
            if len(self._out) < self._cushion:
                return bytes(wanted)
            self._primed = True
        if len(self._out) < wanted:
            self.short_blocks += 1
            self._out += bytes(wanted - len(self._out))
        out = bytes(self._out[:wanted])
        del self._out[:wanted]
        return out
