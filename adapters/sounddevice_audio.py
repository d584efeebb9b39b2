"""The microphone and speaker of local mode: one duplex PortAudio stream through sounddevice.

Each 32 ms callback hands the captured block to `DuplexCore.tick` and plays what it returns
(through a `RateBridge` when the devices do not take 16 kHz), so the duplex (every mic block
handed on with the playback state, dither while idle, marks echoed when reached) is the same
code the WAV replay runs. Which devices, at which rate: `adapters/sound_devices.py`. Speaking
without listening (`capture=False`, typed turns spoken aloud) opens an output stream alone, so
no microphone is in use; silence stands in for it, which the conversation does not listen to.

The callback only counts what goes wrong. A `DeviceSupervisor` watches the stream and reopens
it; this adapter tells it that the device is lost (the stream stopped, callback errors piling
up), and sums up xruns and callback errors in one line at most every 10 s.

It also tells the supervisor when the stream is stuck: its microphone runs ahead of its
speaker. PortAudio's ALSA duplex moves input and output in lockstep, so input captured before
the output could take any (at the start, or while the callback was starved) stays queued for
good; a sound server keeps it all instead of reporting an overrun. The agent then hears
everything that late, and once the backlog fills PortAudio's capture buffer its audio thread
polls in a loop, busy on a core. A restart drops the backlog.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from adapters import sound_devices
from adapters.cpu_watch import thread_cpu_seconds
from adapters.device_supervisor import CLOSE_WAIT_S, REOPEN_FOR_S, STALL_S, DeviceSupervisor
from adapters.duplex_core import CoreBackedAudio, DuplexCore
from adapters.rate_bridge import RateBridge
from adapters.sound_devices import PICK_ANOTHER, Devices, DeviceSpec, choose_devices, open_error
from domain.audio import BLOCK_SAMPLES, BLOCK_SECONDS, SAMPLE_RATE
from ports.echo_canceller import EchoCanceller

log = logging.getLogger(__name__)

# Through ALSA's PulseAudio plugin "low" and "high" give the same buffers, and a stream may
# start stuck with either (the supervisor restarts it). Settable (--audio_latency) for a device
# where "high" means a long buffer.
DEFAULT_LATENCY = "high"

ERRORS_FOR_LOSS = 10  # callback errors within one second: the device is lost
# A stuck stream: the audio thread above SPIN_SHARE of a core, or the microphone more than
# LAG_S late, for two looks STUCK_LOOK_S apart.
SPIN_SHARE = 0.15
LAG_S = 0.5
STUCK_LOOK_S = 1.0
SUMMARY_EVERY_S = 10.0  # at most one line about xruns and callback errors per this many seconds


def _shut(stream: Any, graceful: bool, wait_s: float) -> bool:
    """Stop (`graceful`: let PortAudio play out what it holds) or abort, then close `stream`,
    waiting at most `wait_s`: a wedged device can block these calls for good. True if done."""

    def run() -> None:
        with contextlib.suppress(Exception):  # a dead stream may refuse: closing matters
            if graceful:
                stream.stop()
            else:
                stream.abort()
        with contextlib.suppress(Exception):
            stream.close()

    closer = threading.Thread(target=run, name="audio-close", daemon=True)
    closer.start()
    closer.join(wait_s)
    return not closer.is_alive()


def _is_active(stream: Any) -> bool:
    try:
        return stream is not None and bool(stream.active)
    except Exception:  # a stream PortAudio no longer knows
        return False


class SounddeviceAudio(CoreBackedAudio):
    """`AudioDuplex` on a sound card. `input_device`/`output_device`: an index, part of a name,
    or None for the system default (see `sound_devices.list_devices`); `capture=False` opens the
    output only. The keyword-only timings are for tests. The `SoundDevice` its supervisor watches.
    """

    def __init__(
        self,
        input_device: DeviceSpec = None,
        output_device: DeviceSpec = None,
        latency: str | float = DEFAULT_LATENCY,
        *,
        capture: bool = True,
        stall_s: float = STALL_S,
        reopen_for_s: float = REOPEN_FOR_S,
        summary_every_s: float = SUMMARY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        echo_canceller: EchoCanceller | None = None,
    ) -> None:
        # Without a microphone there is no echo to take out.
        self._echo_canceller = echo_canceller if capture else None
        self._input_device = input_device
        self._output_device = output_device
        self._capture = capture
        self._latency = latency
        self._summary_every_s = summary_every_s
        self._core = DuplexCore(self._echo_canceller)
        self._supervisor = DeviceSupervisor(
            self, self._core, log, PICK_ANOTHER,
            stall_s=stall_s, reopen_for_s=reopen_for_s, clock=clock,
        )  # fmt: skip
        self._clock = clock
        self._bridge: RateBridge | None = None
        self._devices: Devices | None = None
        self._stream: Any = None
        self._stream_lock = threading.Lock()  # `stop` runs on the monitor and the closing thread
        self.device_rate = SAMPLE_RATE
        # Written by the callback only, read by the monitor.
        self.callbacks = 0
        self.xruns = 0  # callbacks PortAudio flagged with an overflow or underflow
        self.callback_errors = 0  # exceptions caught in the callback (raising would kill it)
        self._last_error: BaseException | None = None
        self.callback_thread: int | None = None  # PortAudio's audio thread (native id)
        self.input_lag_s: float | None = None  # how late the last mic block was handed to us
        self._health = _Health(self, clock())  # the monitor's, of the stream started last

    @property
    def reopened(self) -> int:
        """Times the stream was reopened (lost, or stuck)."""
        return self._supervisor.reopened

    # Setting up.

    def check(self) -> None:
        """Resolve the devices and the rate they share, starting nothing."""
        sd = sound_devices.import_sounddevice()
        self._devices = self._chosen(sd)

    def open(self) -> None:
        sd = sound_devices.import_sounddevice()
        try:
            self._supervisor.open()
        except sd.PortAudioError as exc:
            raise open_error(exc) from exc

    def close(self) -> None:
        """Stops everything within about half a second, even on a wedged device."""
        self._supervisor.close()

    # What the supervisor asks (on its monitor thread, and in `open`/`close`).

    def start(self, relist: bool) -> str:
        """Open the devices the specs name (resolved again every time: indices change while
        the models load, and after a device comes back) and start a stream on them."""
        sd = sound_devices.import_sounddevice()
        if relist:  # PortAudio lists devices once, when initialized (a replugged one)
            sd._terminate()
            sd._initialize()
        devices = self._chosen(sd)
        self._start_stream(sd, devices)
        self._devices = devices
        return devices.names

    def stop(self, drain: bool, wait_s: float) -> bool:
        with self._stream_lock:
            stream, self._stream = self._stream, None
        if stream is None:
            return True
        return _shut(stream, graceful=drain and _is_active(stream), wait_s=wait_s)

    def progress(self) -> int:
        return self.callbacks

    def lost_because(self, now: float) -> str | None:
        if not _is_active(self._stream):
            return "the stream stopped"
        return self._health.errors_piled_up(now)

    def stuck_because(self, now: float) -> str | None:
        return self._health.stuck_because(now)

    def report(self, now: float) -> None:
        self._health.summarize(now)

    def _chosen(self, sd: Any) -> Devices:
        return choose_devices(sd, self._input_device, self._output_device, self._capture)

    def _start_stream(self, sd: Any, devices: Devices) -> None:
        bridge = None
        blocksize = BLOCK_SAMPLES
        if devices.rate != SAMPLE_RATE:
            bridge = RateBridge(self._core, devices.rate)
            blocksize = bridge.block_frames
        self._bridge = bridge
        self.device_rate = devices.rate
        self.callback_thread = None
        self.input_lag_s = None
        options = {"samplerate": devices.rate, "blocksize": blocksize, "channels": 1,
                   "dtype": "int16", "latency": self._latency}  # fmt: skip
        if devices.input is None:
            stream = sd.RawOutputStream(
                device=devices.output, callback=self._speaker_callback, **options
            )
        else:
            stream = sd.RawStream(
                device=(devices.input, devices.output), callback=self._callback, **options
            )
        self._prime_canceller(stream)
        self._health = _Health(self, self._clock())
        try:
            stream.start()
        except BaseException:
            _shut(stream, graceful=False, wait_s=CLOSE_WAIT_S)
            raise
        with self._stream_lock:
            self._stream = stream

    def _prime_canceller(self, stream: Any) -> None:
        """A new stream (the audio thread is not running): the canceller starts afresh, its
        delay guessed from PortAudio's latencies plus the block in hand (AEC3 refines it)."""
        if self._echo_canceller is None:
            return
        input_s, output_s = stream.latency
        self._echo_canceller.reset()
        self._echo_canceller.set_delay_ms(round(1000 * (input_s + output_s + BLOCK_SECONDS)))

    # The audio thread: count, never log, never raise.

    def _speaker_callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        self._callback(None, outdata, frames, None, status)

    def _callback(
        self, indata: Any, outdata: Any, frames: int, time_info: Any, status: Any
    ) -> None:
        self.callbacks += 1
        try:
            if self.callback_thread is None:
                self.callback_thread = threading.get_native_id()
            if time_info is not None:
                self.input_lag_s = time_info.currentTime - time_info.inputBufferAdcTime
            if status:
                self.xruns += 1
            mic = bytes(2 * frames) if indata is None else bytes(indata)  # None: no microphone
            if self._bridge is None:
                outdata[:] = self._core.tick(mic)
            else:
                outdata[:] = self._bridge.process(mic, frames)
        except Exception as exc:
            self.callback_errors += 1
            self._last_error = exc
            outdata[:] = bytes(len(outdata))


class _Health:
    """What the monitor remembers of one stream's callback counters between two looks."""

    def __init__(self, audio: SounddeviceAudio, now: float) -> None:
        self._audio = audio
        self._errors: deque[tuple[float, int]] = deque([(now, audio.callback_errors)])
        self._summary_at = now
        self._summarized = (audio.xruns, audio.callback_errors)
        self._look_at = now
        self._thread_cpu: tuple[int, float] | None = None  # (thread, CPU seconds) at the look
        self._stuck_looks = 0

    def errors_piled_up(self, now: float) -> str | None:
        """ERRORS_FOR_LOSS callback errors within one second: the device is lost."""
        errors = self._audio.callback_errors
        self._errors.append((now, errors))
        while now - self._errors[0][0] > 1.0:
            self._errors.popleft()
        recent = errors - self._errors[0][1]
        if recent >= ERRORS_FOR_LOSS:
            return f"{recent} callback errors in 1 s, the last {self._audio._last_error!r}"
        return None

    def stuck_because(self, now: float) -> str | None:
        """Every STUCK_LOOK_S: is the audio thread spinning, or the microphone far behind?
        Said when two looks in a row found it."""
        audio = self._audio
        if now - self._look_at < STUCK_LOOK_S:
            return None
        elapsed, self._look_at = now - self._look_at, now
        share = None
        tid = audio.callback_thread
        cpu = None if tid is None else thread_cpu_seconds(tid)
        if tid is not None and cpu is not None:
            if self._thread_cpu is not None and self._thread_cpu[0] == tid:
                share = (cpu - self._thread_cpu[1]) / elapsed
            self._thread_cpu = (tid, cpu)
        lag = audio.input_lag_s
        lagging = lag is not None and LAG_S < lag < 3600  # PortAudio's times can be garbage
        spinning = share is not None and share > SPIN_SHARE
        self._stuck_looks = self._stuck_looks + 1 if spinning or lagging else 0
        if self._stuck_looks < 2:
            return None
        late = f", the microphone {lag:.2f} s late" if lag is not None and lag < 3600 else ""
        if spinning:
            return f"The audio thread spins at {100 * (share or 0):.0f} % of a core{late}"
        return f"The microphone is {lag:.1f} s late (queued by the sound server)"

    def summarize(self, now: float) -> None:
        audio = self._audio
        if now - self._summary_at < audio._summary_every_s:
            return
        xruns, errors = audio.xruns, audio.callback_errors
        if (xruns, errors) != self._summarized:
            xruns_new, errors_new = xruns - self._summarized[0], errors - self._summarized[1]
            last = f" (the last: {audio._last_error!r})" if errors_new else ""
            log.warning(
                "Audio glitches in the last %.0f s: %d xruns, %d callback errors%s",
                now - self._summary_at,
                xruns_new,
                errors_new,
                last,
            )
        self._summary_at = now
        self._summarized = (xruns, errors)
