"""WAV files instead of sound devices: `--input_wav` is the microphone, `--output_wav` the speaker.

A thread ticks every 32 ms of real time (scheduled against `time.monotonic` from the start, so it
never drifts) and runs the same `DuplexCore` as the live device: the agent hears the recording
only while it is not speaking, and the output file gets every block played, dither included, on
the input's timeline. The ticking outlives the input so that a reply in progress is still played
and recorded; it stops at `close()`.
"""

from __future__ import annotations

import contextlib
import threading
import time
import wave
from pathlib import Path

import numpy as np

from adapters.duplex_core import CoreBackedAudio, DuplexCore
from adapters.errors import SetupError
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, SAMPLE_RATE, EndOfInput


def read_wav(path: Path) -> bytes:
    """A 16-bit mono WAV as 16 kHz PCM (resampled with soxr when it has another rate), padded
    with silence to whole blocks."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise SetupError(f"Cannot read the input WAV {path}: {exc}") from exc
    if not pcm:
        raise SetupError(f"The input WAV {path} holds no audio")
    if (channels, width) != (1, 2):
        raise SetupError(
            f"{path} has {channels} channel(s) of {8 * width}-bit samples; the input WAV must be "
            f"16-bit mono: convert it with `sox {path} -b 16 -c 1 input16.wav`"
        )
    if rate != SAMPLE_RATE:
        import soxr

        resampled: np.ndarray = soxr.resample(np.frombuffer(pcm, dtype="<i2"), rate, SAMPLE_RATE)
        pcm = resampled.astype("<i2").tobytes()
    return pcm + bytes(-len(pcm) % BLOCK_BYTES)


class WavReplayAudio(CoreBackedAudio):
    """`AudioDuplex` on files: `input_wav` (16-bit mono, any rate) played as the microphone in
    real time, then `EndOfInput` once; `output_wav` (optional) records the speaker at 16 kHz."""

    def __init__(self, input_wav: Path, output_wav: Path | None = None) -> None:
        self._mic = read_wav(Path(input_wav))
        self._output_wav = None if output_wav is None else Path(output_wav)
        self._core = DuplexCore()
        self._recorder: wave.Wave_write | None = None
        self._closing = contextlib.ExitStack()  # the output file and its writer
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None
        self.tick_errors = 0  # exceptions caught in the ticker, which must keep time regardless

    def open(self) -> None:
        if self._output_wav is not None:
            try:
                # Opened here, not by `wave.open(path)`, whose half-built writer raises again
                # from `__del__` when the path cannot be opened.
                file = self._closing.enter_context(open(self._output_wav, "wb"))  # noqa: SIM115
            except OSError as exc:
                raise SetupError(f"Cannot write the output WAV {self._output_wav}: {exc}") from exc
            recorder = wave.open(file, "wb")  # noqa: SIM115 - closed by `_closing`
            self._closing.callback(recorder.close)  # writes the final length into the header
            recorder.setnchannels(1)
            recorder.setsampwidth(2)
            recorder.setframerate(SAMPLE_RATE)
            self._recorder = recorder
        self._ticker = threading.Thread(
            target=self._tick_in_real_time, name="wav-replay", daemon=True
        )
        self._ticker.start()

    def close(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self._closing.close()
        self._recorder = None

    def _tick_in_real_time(self) -> None:
        start = time.monotonic()
        ticks = 0
        while not self._stopping.is_set():
            offset = ticks * BLOCK_BYTES
            mic = self._mic[offset : offset + BLOCK_BYTES] if offset < len(self._mic) else None
            try:
                played = self._core.tick(mic)
                if self._recorder is not None:
                    self._recorder.writeframesraw(played)
            except Exception:
                self.tick_errors += 1
            ticks += 1
            if offset + BLOCK_BYTES == len(self._mic):
                self._core.put_event(EndOfInput())
            self._stopping.wait(max(0.0, start + ticks * BLOCK_SECONDS - time.monotonic()))
