"""The microphone and speaker through a PulseAudio or PipeWire server, as its own client
(libpulse-simple, through pasimple), not through PortAudio and ALSA's PulseAudio plugin.

One thread reads a 32 ms block from a record stream, hands it to `DuplexCore.tick` and writes
what the tick returns to a playback stream: the duplex is the same code as PortAudio's callback
and the WAV replay. Reading blocks until the server has a block, so an idle agent sleeps, where
the plugin's duplex can start out spinning a core (which the PortAudio adapter detects and
restarts, `adapters/sounddevice_audio.py`).

Each tick writes one block while the server plays one. While only dither goes out, the
playback latency (what the server and its sink hold) is kept near `PlayoutHold`'s hold, under
the server's buffer (`TARGET_BLOCKS`): above it a dither block is left out, below it one more
is written. So a write never waits for room, and the microphone is read as soon as a block is
there: were writes to wait, the loop between the two streams would run at the speaker's pace,
and a sound would reach the agent, and a reply the speaker, only behind a full buffer. A tick
that finds the stream nearly dry makes the hold a block longer. A slower or faster speaker than
the microphone is absorbed the same way, in dither, never in reply audio.

Speaking without listening (`capture=False`, typed turns spoken aloud) opens no record stream,
so no microphone is in use: the thread keeps the 32 ms pace by the clock instead, with silence
standing in for the microphone (the audio clock goes on; the conversation does not listen).

The audio thread only notes why it stopped; a `DeviceSupervisor` watches the streams and
reopens them when no block came for a second or the server went away, and hands the
application `AudioFailed` when that fails, or keeps happening.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from adapters.device_supervisor import REOPEN_FOR_S, STALL_S, DeviceSupervisor
from adapters.duplex_core import CoreBackedAudio, DuplexCore
from adapters.errors import SetupError
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, SAMPLE_RATE
from domain.playout import PlayoutHold
from ports.echo_canceller import EchoCanceller

log = logging.getLogger(__name__)

SILENT_BLOCK = bytes(BLOCK_BYTES)

TARGET_BLOCKS = 4  # the server's playback buffer (tlength); writes wait beyond it
RECORD_MAX_BLOCKS = 32  # the server keeps at most this much of a microphone we do not read

# libpulse's error codes (pulse/def.h) worth naming.
_NO_ENTITY = 5
_CONNECTION_REFUSED = 6
_HINT = "--audio_api portaudio uses PortAudio instead"
_PICK_ANOTHER = (
    "pick another with --input_device/--output_device (`pactl list short sources` and "
    f"`pactl list short sinks` list them), or {_HINT}"
)


def _pasimple() -> Any:  # the module; untyped
    try:
        import pasimple

        pasimple.pa_simple.get_libpulse_simple()
    except (ImportError, OSError, RuntimeError) as exc:
        raise SetupError(
            f"The PulseAudio client library is missing ({exc}): `sudo apt install libpulse0` "
            f"(Debian/Ubuntu), or {_HINT}"
        ) from exc
    return pasimple


def _error_code(exc: Exception) -> int | None:
    """pasimple reports libpulse's error as a number at the end of its message."""
    tail = str(exc).rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _setup_error(exc: Exception, kind: str, name: str | None) -> SetupError:
    code = _error_code(exc)
    if code == _NO_ENTITY and name is not None:
        listing = "sources" if kind == "input" else "sinks"
        return SetupError(
            f"The sound server has no {kind} device named {name!r}: `pactl list short "
            f"{listing}` lists them (or {_HINT})"
        )
    if code == _CONNECTION_REFUSED:
        return SetupError(f"No PulseAudio or PipeWire server answers: start one, or {_HINT}")
    reason = exc if code is None else pa_strerror(code)
    return SetupError(f"The sound server refused the {kind} stream ({reason}): {_HINT}")


def server_answers(capture: bool = True) -> bool:
    """A PulseAudio or PipeWire server takes a stream from us (libpulse is installed, and the
    server runs): what `--audio_api auto` asks. The stream asked for is a microphone's only
    when the agent will listen."""
    opened = _open_record if capture else _open_playback
    try:
        opened(_pasimple(), None).close()
    except Exception:  # SetupError, PaSimpleError: no server to use
        return False
    return True


def _open_record(pasimple: Any, device: str | None) -> Any:
    return pasimple.PaSimple(
        pasimple.PA_STREAM_RECORD, pasimple.PA_SAMPLE_S16LE, 1, SAMPLE_RATE,
        app_name="local-voice-agent", stream_name="microphone", device_name=device,
        maxlength=RECORD_MAX_BLOCKS * BLOCK_BYTES, fragsize=BLOCK_BYTES,
    )  # fmt: skip


def _open_playback(pasimple: Any, device: str | None) -> Any:
    return pasimple.PaSimple(
        pasimple.PA_STREAM_PLAYBACK, pasimple.PA_SAMPLE_S16LE, 1, SAMPLE_RATE,
        app_name="local-voice-agent", stream_name="speaker", device_name=device,
        maxlength=2 * TARGET_BLOCKS * BLOCK_BYTES, tlength=TARGET_BLOCKS * BLOCK_BYTES,
        prebuf=BLOCK_BYTES, minreq=BLOCK_BYTES,
    )  # fmt: skip


class _Streams:
    """A record (None: not listening) and a playback stream, and the thread that ticks the
    core between them."""

    def __init__(
        self, pasimple: Any, input_device: str | None, output_device: str | None, capture: bool
    ) -> None:
        self.record: Any = None
        if capture:
            try:
                self.record = _open_record(pasimple, input_device)
            except pasimple.PaSimpleError as exc:
                raise _setup_error(exc, "input", input_device) from exc
        try:
            self.playback = _open_playback(pasimple, output_device)
        except pasimple.PaSimpleError as exc:
            if self.record is not None:
                self.record.close()
            raise _setup_error(exc, "output", output_device) from exc
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def close(self, wait_s: float) -> bool:
        """Stop the thread and free the streams; False (streams left to the system) when the
        thread is still in a call on them after `wait_s`: freeing a stream in use would crash."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(wait_s)
            if self.thread.is_alive():
                return False
        if self.record is not None:
            self.record.close()
        self.playback.close()
        return True


class PulseAudio(CoreBackedAudio):
    """`AudioDuplex` on a PulseAudio or PipeWire server. `input_device`/`output_device`: a
    source and a sink name as `pactl list short sources|sinks` shows them, or None for the
    server's defaults; `capture=False` opens the speaker only. The keyword-only timings are for
    tests. The `SoundDevice` its supervisor watches."""

    def __init__(
        self,
        input_device: str | None = None,
        output_device: str | None = None,
        *,
        capture: bool = True,
        stall_s: float = STALL_S,
        reopen_for_s: float = REOPEN_FOR_S,
        clock: Callable[[], float] = time.monotonic,
        echo_canceller: EchoCanceller | None = None,
    ) -> None:
        self._input_device = input_device
        self._output_device = output_device
        self._capture = capture
        # Without a microphone there is no echo to take out.
        self._echo_canceller = echo_canceller if capture else None
        self._clock = clock
        self._core = DuplexCore(self._echo_canceller)
        self._supervisor = DeviceSupervisor(
            self, self._core, log, _PICK_ANOTHER,
            stall_s=stall_s, reopen_for_s=reopen_for_s, clock=clock,
        )  # fmt: skip
        # At most a block under the buffer, where writes would wait again.
        self._hold = PlayoutHold(max_blocks=TARGET_BLOCKS - 1)
        self._held = self._hold.blocks  # as the monitor last said it
        self._streams: _Streams | None = None
        self._streams_lock = threading.Lock()  # `stop` runs on the monitor and the closing thread
        # Written by the audio thread, read by the monitor and tests.
        self.ticks = 0
        self.failure: BaseException | None = None  # why the audio thread stopped
        self.dropped_dither = 0  # blocks left out to hold the playback latency

    @property
    def reopened(self) -> int:
        """Times the streams were reopened."""
        return self._supervisor.reopened

    def check(self) -> None:
        """Connect to the server and open the devices once, starting nothing."""
        self._streams_now().close(wait_s=0.0)

    def open(self) -> None:
        self._supervisor.open()

    def close(self) -> None:
        """Stops everything within about half a second, even on a stalled server."""
        self._supervisor.close()

    # What the supervisor asks (on its monitor thread, and in `open`/`close`).

    def start(self, relist: bool) -> str:
        """Open the streams and start the audio thread; the server finds the devices by name
        every time, so `relist` has nothing to do."""
        streams = self._streams_now()
        self._hold.restart()
        if self._echo_canceller is not None:  # a new stream: the canceller starts afresh
            self._echo_canceller.reset()
            # A block is heard about the hold after it is written (more while a reply plays
            # on a speaker slower than the microphone), and read back at once.
            self._echo_canceller.set_delay_ms(round(1000 * self._hold.seconds))
        self.failure = None
        streams.thread = threading.Thread(
            target=self._run, args=(streams,), name="audio", daemon=True
        )
        streams.thread.start()
        with self._streams_lock:
            self._streams = streams
        sink = repr(self._output_device) if self._output_device else "the default sink"
        if not self._capture:
            return f"{sink} (speaker only)"
        source = repr(self._input_device) if self._input_device else "the default source"
        return f"{source} -> {sink}"

    def stop(self, drain: bool, wait_s: float) -> bool:
        with self._streams_lock:
            streams, self._streams = self._streams, None
        return streams is None or streams.close(wait_s)

    def progress(self) -> int:
        return self.ticks

    def lost_because(self, now: float) -> str | None:
        return None if self.failure is None else str(self.failure)

    def stuck_because(self, now: float) -> str | None:
        return None  # reads wait for the server: a moving stream is never stuck

    def report(self, now: float) -> None:
        if self._hold.blocks != self._held:  # a tick found the speaker nearly dry, or calm came
            self._held = self._hold.blocks
            log.info("Playback now held %d ms ahead", round(1000 * self._hold.seconds))

    def _streams_now(self) -> _Streams:
        return _Streams(_pasimple(), self._input_device, self._output_device, self._capture)

    # The audio thread.

    def _run(self, streams: _Streams) -> None:
        next_tick = time.monotonic()
        try:
            while not streams.stopping.is_set():
                if streams.record is not None:
                    mic = streams.record.read(BLOCK_BYTES)
                else:  # no microphone to wait on: the clock keeps the pace
                    mic = SILENT_BLOCK
                    next_tick += BLOCK_SECONDS
                    if streams.stopping.wait(max(0.0, next_tick - time.monotonic())):
                        return
                out = self._core.tick(mic)
                self.ticks += 1
                writes = self._hold.writes(
                    streams.playback.get_latency() / 1e6,
                    self._clock(),
                    dither=out is self._core.dither,
                )
                if writes == 0:
                    self.dropped_dither += 1
                for _ in range(writes):
                    streams.playback.write(out)
        except Exception as exc:  # the server went away: the supervisor reopens
            if not streams.stopping.is_set():
                self.failure = exc


def pa_strerror(code: int) -> str:
    """libpulse's own words for an error code."""
    with contextlib.suppress(OSError):
        library = ctypes.CDLL("libpulse.so.0")
        library.pa_strerror.restype = ctypes.c_char_p
        return str(library.pa_strerror(code).decode())
    return f"error {code}"
