"""WAV files instead of sound devices: `--input_wav` is the microphone, `--output_wav` the speaker.

A thread ticks every 32 ms of real time (scheduled against `time.monotonic` from the start, so it
never drifts) and runs the same `DuplexCore` as the live device: every block of the recording is
handed on with the playback state (the application decides what it hears while it speaks), and
the output file gets every block played, dither included, on the input's timeline. The ticking
outlives the input so that a reply in progress is still played and recorded; it stops at
`close()`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.duplex_core import CoreBackedAudio, DuplexCore
from adapters.errors import SetupError
from adapters.simulated_room import SimulatedRoom
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, SAMPLE_RATE, EndOfInput
from ports.echo_canceller import EchoCanceller

if TYPE_CHECKING:
    from numpy.typing import NDArray


def read_wav(path: Path) -> bytes:
    """A WAV file (anything soundfile, or else the stdlib's `wave`, can read: any channel count,
    integer samples of any width or float) as 16 kHz mono int16 PCM, padded with silence to
    whole blocks: channels averaged, the rate converted with soxr. A 16-bit mono 16 kHz file
    passes through bit-exact."""
    samples, rate = _read_samples(path)
    if not samples.size:
        raise SetupError(f"The input WAV {path} holds no audio")
    if samples.dtype == np.int16 and samples.shape[1] == 1 and rate == SAMPLE_RATE:
        pcm = samples[:, 0].astype("<i2").tobytes()
    else:
        scale = 32768.0 if samples.dtype == np.int16 else 1.0
        mono = samples.astype(np.float32).mean(axis=1, dtype=np.float32) / np.float32(scale)
        if rate != SAMPLE_RATE:
            import soxr

            mono = soxr.resample(mono, rate, SAMPLE_RATE)
        pcm = np.clip(np.round(mono * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return pcm + bytes(-len(pcm) % BLOCK_BYTES)


def _read_samples(path: Path) -> tuple[NDArray[Any], int]:
    """(frames, channels) samples, int16 where the file holds at most 16-bit integers (kept
    exact), float32 in [-1, 1] otherwise, and the sample rate."""
    try:
        import soundfile
    except (ImportError, OSError):  # not installed, or libsndfile missing
        return _read_with_wave(path)
    try:
        exact = soundfile.info(str(path)).subtype in ("PCM_16", "PCM_S8", "PCM_U8")
        data, rate = soundfile.read(
            str(path), dtype="int16" if exact else "float32", always_2d=True
        )
    except (RuntimeError, OSError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        raise SetupError(f"Cannot read the input WAV {path}: {_one_line(exc)}") from exc
    return data, int(rate)


def _read_with_wave(path: Path) -> tuple[NDArray[Any], int]:
    """The stdlib's reader: integer PCM of 8 to 32 bits."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise SetupError(f"Cannot read the input WAV {path}: {_one_line(exc)}") from exc
    if width == 1:  # unsigned
        data: NDArray[Any] = (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) * 256
    elif width == 2:
        data = np.frombuffer(raw, "<i2")
    elif width in (3, 4):
        bytes_ = np.frombuffer(raw, np.uint8).reshape(-1, width)
        padded = np.zeros((len(bytes_), 4), np.uint8)  # little-endian, widened to 32 bits
        padded[:, 4 - width :] = bytes_
        data = padded.view("<i4")[:, 0].astype(np.float32) / np.float32(2**31)
    else:
        raise SetupError(f"Cannot read the input WAV {path}: {8 * width}-bit samples")
    return data.reshape(-1, channels), rate


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class WavReplayAudio(CoreBackedAudio):
    """`AudioDuplex` on files: `input_wav` (any WAV, see `read_wav`) played as the microphone in
    real time, then `EndOfInput` once; `output_wav` (optional) records the speaker at 16 kHz.
    Nothing is read before `check` (or `open`, which checks first if that was not done).
    `room` (optional) feeds what is played back into the microphone (see `SimulatedRoom`);
    `echo_canceller` (optional) removes it, as on a sound card."""

    def __init__(
        self,
        input_wav: Path,
        output_wav: Path | None = None,
        *,
        room: SimulatedRoom | None = None,
        echo_canceller: EchoCanceller | None = None,
    ) -> None:
        self._input_wav = Path(input_wav)
        self._mic: bytes | None = None
        self._output_wav = None if output_wav is None else Path(output_wav)
        self._room = room
        if echo_canceller is not None:
            # Played and heard within one tick: the replay's only latency is that tick.
            echo_canceller.set_delay_ms(round(1000 * BLOCK_SECONDS))
        self._core = DuplexCore(echo_canceller)
        self._recorder: wave.Wave_write | None = None
        self._closing = contextlib.ExitStack()  # the output file and its writer
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None
        self.tick_errors = 0  # exceptions caught in the ticker, which must keep time regardless

    def check(self) -> None:
        """Read and convert the input; make sure the output can be created. Starts nothing."""
        self._mic = read_wav(self._input_wav)
        output = self._output_wav
        if output is not None:
            folder = output.parent
            if output.is_dir():
                raise SetupError(f"Cannot write the output WAV {output}: it is a directory")
            if not folder.is_dir():
                raise SetupError(
                    f"Cannot write the output WAV {output}: the folder {folder} does not exist"
                )
            if not os.access(folder, os.W_OK) or (
                output.exists() and not os.access(output, os.W_OK)
            ):
                raise SetupError(f"Cannot write the output WAV {output}: permission denied")

    def open(self) -> None:
        if self._mic is None:
            self.check()
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
            self._ticker.join(timeout=0.5)  # it wakes every 32 ms
            self._ticker = None
        self._closing.close()
        self._recorder = None

    def _tick_in_real_time(self) -> None:
        mic_pcm = self._mic or b""
        start = time.monotonic()
        ticks = 0
        while not self._stopping.is_set():
            offset = ticks * BLOCK_BYTES
            mic = mic_pcm[offset : offset + BLOCK_BYTES] if offset < len(mic_pcm) else None
            try:
                if mic is not None and self._room is not None:
                    mic = self._room.into_mic(mic)
                played = self._core.tick(mic)
                if self._room is not None:
                    self._room.play(played)
                if self._recorder is not None:
                    self._recorder.writeframesraw(played)
            except Exception:
                self.tick_errors += 1
            ticks += 1
            if offset + BLOCK_BYTES == len(mic_pcm):
                self._core.put_event(EndOfInput())
            self._stopping.wait(max(0.0, start + ticks * BLOCK_SECONDS - time.monotonic()))
