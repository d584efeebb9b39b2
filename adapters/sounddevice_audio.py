"""The microphone and speaker of local mode: one duplex PortAudio stream through sounddevice.

Each 32 ms callback hands the captured block to `DuplexCore.tick` and plays what it returns, so
the duplex (every mic block handed on with the playback state, dither while idle, marks echoed
when reached) is the same code the WAV replay runs. `sounddevice` is imported only when a device
is used: importing it loads PortAudio, which may be missing.

The callback only counts what goes wrong. A monitor thread watches the stream: it logs xruns and
callback errors (one summary line at most every 10 s), and when the device is lost (the stream
stopped, no callback for a second, callback errors piling up) it says so in one line and reopens
the device; when that fails for 3 s it hands the application `AudioFailed`.

It also restarts a stream whose microphone runs ahead of its speaker. PortAudio's ALSA duplex
moves input and output in lockstep, so input captured before the output could take any (at the
start, or while the callback was starved) stays queued for good; a sound server keeps it all
instead of reporting an overrun. The agent then hears everything that late (seconds, measured
through PulseAudio), and once the backlog fills PortAudio's capture buffer its audio thread
polls in a loop (a core at 60-90 %). A restart drops the backlog.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from adapters.cpu_watch import thread_cpu_seconds
from adapters.duplex_core import REOPEN_FOR_S, CoreBackedAudio, DuplexCore, keep_trying
from adapters.errors import SetupError
from domain.audio import BLOCK_BYTES, BLOCK_SAMPLES, BLOCK_SECONDS, SAMPLE_RATE, AudioFailed
from ports.echo_canceller import EchoCanceller

log = logging.getLogger(__name__)

DeviceSpec = int | str | None
# Through ALSA's PulseAudio plugin "low" and "high" both give 64/96 ms (input/output). The busy
# wait once blamed on "low" is the stuck duplex described above: measured here, some starts
# with either setting begin stuck (1 in 4 with "low", 1 to 4 in 6 with "high"), and the monitor
# restarts them. Settable (--audio_latency) for a device where "high" means a long buffer.
DEFAULT_LATENCY = "high"

# Device loss: no callback for STALL_S, or ERRORS_FOR_LOSS callback errors within one second.
STALL_S = 1.0
ERRORS_FOR_LOSS = 10
# Lost this many times within this many seconds: lost for good, whatever reopening says.
LOSSES_TO_FAIL = 3
LOSSES_WITHIN_S = 30.0
# A stuck stream, restarted: the audio thread above SPIN_SHARE of a core, or the microphone more
# than LAG_S late, for two looks STUCK_LOOK_S apart; at most MAX_RESTARTS a minute.
SPIN_SHARE = 0.15
LAG_S = 0.5
STUCK_LOOK_S = 1.0
MAX_RESTARTS = 5
SUMMARY_EVERY_S = 10.0  # at most one line about xruns and callback errors per this many seconds
CLOSE_WAIT_S = 0.4  # what `close` waits for PortAudio to stop a stream before leaving it
_MONITOR_PERIOD_S = 0.1

_LIST_HINT = "run `python -m composition.local --list_devices`"
_PA_DEVICE_UNAVAILABLE = -9985  # paDeviceUnavailable: another program holds the device


def _import_sounddevice() -> Any:  # the module; untyped
    try:
        import sounddevice
    except OSError as exc:  # the module loads libportaudio when imported
        raise SetupError(
            "PortAudio is not installed: run `sudo apt install libportaudio2` (Debian/Ubuntu) "
            "or `brew install portaudio` (macOS)"
        ) from exc
    return sounddevice


def list_devices() -> str:
    """A table of the sound devices, for `--list_devices`; `>`/`<` mark the default input and
    output."""
    sd = _import_sounddevice()
    devices = sd.query_devices()
    if not devices:
        return "No sound devices found (no sound card, or no sound server running)."
    default_in, default_out = sd.default.device
    host_apis = sd.query_hostapis()
    lines = [f"{'':2}{'#':>3}  {'in':>3} {'out':>3}  {'rate':>6}  {'host api':<12} name"]
    for index, device in enumerate(devices):
        mark = (">" if index == default_in else " ") + ("<" if index == default_out else " ")
        lines.append(
            f"{mark}{index:>3}  {device['max_input_channels']:>3} "
            f"{device['max_output_channels']:>3}  {device['default_samplerate']:>6.0f}  "
            f"{host_apis[device['hostapi']]['name']:<12} {device['name']}"
        )
    lines.append("Pick one with --input_device / --output_device (its # or part of its name).")
    return "\n".join(lines)


def resolve_device(
    devices: Sequence[Mapping[str, Any]], spec: DeviceSpec, kind: str, default: int
) -> int:
    """The index of the `kind` ("input" or "output") device that `spec` names: an index, a
    case-insensitive substring of the name (an exact name wins over substrings), or None for
    the default (the first such device when the system has no default)."""
    usable = [i for i, device in enumerate(devices) if device[f"max_{kind}_channels"] > 0]
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec)
    if spec is None:
        if default in usable:
            return default
        if usable:
            return usable[0]
        raise SetupError(f"No {kind} device found: connect one, or {_LIST_HINT}")
    if isinstance(spec, int):
        if spec in usable:
            return spec
        raise SetupError(f"Device {spec} is not an {kind} device: {_LIST_HINT}")
    wanted = spec.lower()
    matches = [i for i in usable if wanted in devices[i]["name"].lower()]
    exact = [i for i in matches if devices[i]["name"].lower() == wanted]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise SetupError(f"No {kind} device matches {spec!r}: {_LIST_HINT}")
    names = ", ".join(repr(devices[i]["name"]) for i in matches)
    raise SetupError(
        f"{spec!r} matches several {kind} devices ({names}): give more of the name, or the "
        f"index from `python -m composition.local --list_devices`"
    )


def open_error(exc: Exception) -> SetupError:
    """A PortAudio error while opening, as one line the user can act on."""
    code = exc.args[1] if len(exc.args) > 1 else None
    if code == _PA_DEVICE_UNAVAILABLE:
        return SetupError(
            "The sound device is busy (another program holds it): close that program, or pick "
            f"another device with --input_device/--output_device ({_LIST_HINT})"
        )
    return SetupError(
        f"Cannot open the sound devices ({exc.args[0]}): pick others with "
        f"--input_device/--output_device ({_LIST_HINT})"
    )


def shared_rate(
    sd: Any, devices: Sequence[Mapping[str, Any]], device_in: int, device_out: int
) -> int:
    """16 kHz if both devices take it, else the first native rate both take."""
    candidates = [SAMPLE_RATE] + [
        int(devices[i]["default_samplerate"]) for i in (device_out, device_in)
    ]
    for rate in dict.fromkeys(candidates):
        try:
            sd.check_input_settings(device_in, channels=1, dtype="int16", samplerate=rate)
            sd.check_output_settings(device_out, channels=1, dtype="int16", samplerate=rate)
        except sd.PortAudioError as exc:
            if exc.args[1:2] == (_PA_DEVICE_UNAVAILABLE,):
                raise open_error(exc) from exc
            continue
        return rate
    raise SetupError(
        "The input and output devices share no sample rate: pick two of the same card "
        f"with --input_device/--output_device ({_LIST_HINT})"
    )


class RateBridge:
    """Runs the 16 kHz core from a device opened at another rate (raw ALSA devices often refuse
    16 kHz): the mic is resampled down and the output up by streaming soxr resamplers.

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


@attrs.frozen
class _Devices:
    input: int
    output: int
    rate: int
    names: str  # for the log


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


class SounddeviceAudio(CoreBackedAudio):
    """`AudioDuplex` on a sound card. `input_device`/`output_device`: an index, part of a name,
    or None for the system default (see `list_devices`). The keyword-only timings are for tests.
    """

    def __init__(
        self,
        input_device: DeviceSpec = None,
        output_device: DeviceSpec = None,
        latency: str | float = DEFAULT_LATENCY,
        *,
        stall_s: float = STALL_S,
        reopen_for_s: float = REOPEN_FOR_S,
        summary_every_s: float = SUMMARY_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        echo_canceller: EchoCanceller | None = None,
    ) -> None:
        self._echo_canceller = echo_canceller
        self._input_device = input_device
        self._output_device = output_device
        self._latency = latency
        self._stall_s = stall_s
        self._reopen_for_s = reopen_for_s
        self._summary_every_s = summary_every_s
        self._clock = clock
        self._core = DuplexCore(echo_canceller)
        self._bridge: RateBridge | None = None
        self._devices: _Devices | None = None
        self._stream: Any = None
        self._stream_lock = threading.Lock()
        self._closed = threading.Event()
        self._monitor: threading.Thread | None = None
        self.device_rate = SAMPLE_RATE
        # Written by the callback only, read by the monitor.
        self.callbacks = 0
        self.xruns = 0  # callbacks PortAudio flagged with an overflow or underflow
        self.callback_errors = 0  # exceptions caught in the callback (raising would kill it)
        self._last_error: BaseException | None = None
        self.callback_thread: int | None = None  # PortAudio's audio thread (native id)
        self.input_lag_s: float | None = None  # how late the last mic block was handed to us
        self.reopened = 0  # times the stream was reopened (lost, or stuck)
        self._restarts: deque[float] = deque()  # when a stuck stream was restarted
        self._losses: deque[float] = deque()  # when the device was lost

    # Setting up.

    def check(self) -> None:
        """Resolve the devices and the rate they share, starting nothing."""
        self._devices = self._resolve(_import_sounddevice())

    def open(self) -> None:
        sd = _import_sounddevice()
        # Resolved again even after `check`: indices can change while the models load.
        self._devices = self._resolve(sd)
        self._closed.clear()
        try:
            self._start_stream(sd, self._devices)
        except sd.PortAudioError as exc:
            raise open_error(exc) from exc
        self._monitor = threading.Thread(target=self._watch, name="audio-monitor", daemon=True)
        self._monitor.start()

    def close(self) -> None:
        """Stops everything within about half a second, even on a wedged device."""
        self._closed.set()
        if self._monitor is not None:
            self._monitor.join(timeout=0.1)  # it may be inside a PortAudio call: do not wait
            self._monitor = None
        with self._stream_lock:
            stream, self._stream = self._stream, None
        if stream is not None and not _shut(stream, _is_active(stream), CLOSE_WAIT_S):
            log.warning(
                "The sound device did not stop within %.1f s: left to the system", CLOSE_WAIT_S
            )

    def _resolve(self, sd: Any) -> _Devices:
        devices = sd.query_devices()
        default_in, default_out = sd.default.device
        device_in = resolve_device(devices, self._input_device, "input", default_in)
        device_out = resolve_device(devices, self._output_device, "output", default_out)
        rate = shared_rate(sd, devices, device_in, device_out)
        names = f"{devices[device_in]['name']!r} -> {devices[device_out]['name']!r}"
        return _Devices(device_in, device_out, rate, names)

    def _start_stream(self, sd: Any, devices: _Devices) -> None:
        bridge = None
        blocksize = BLOCK_SAMPLES
        if devices.rate != SAMPLE_RATE:
            bridge = RateBridge(self._core, devices.rate)
            blocksize = bridge.block_frames
        self._bridge = bridge
        self.device_rate = devices.rate
        stream = sd.RawStream(
            samplerate=devices.rate,
            blocksize=blocksize,
            device=(devices.input, devices.output),
            channels=1,
            dtype="int16",
            callback=self._callback,
            latency=self._latency,
        )
        self._prime_canceller(stream)
        try:
            stream.start()
        except BaseException:
            _shut(stream, graceful=False, wait_s=CLOSE_WAIT_S)
            raise
        with self._stream_lock:
            if not self._closed.is_set():
                self._stream = stream
                return
        _shut(stream, graceful=False, wait_s=CLOSE_WAIT_S)  # closed meanwhile

    def _prime_canceller(self, stream: Any) -> None:
        """A new stream (the audio thread is not running): the canceller starts afresh, its
        delay guessed from PortAudio's latencies plus the block in hand (AEC3 refines it)."""
        if self._echo_canceller is None:
            return
        input_s, output_s = stream.latency
        self._echo_canceller.reset()
        self._echo_canceller.set_delay_ms(round(1000 * (input_s + output_s + BLOCK_SECONDS)))

    # The audio thread: count, never log, never raise.

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
            if self._bridge is None:
                outdata[:] = self._core.tick(bytes(indata))
            else:
                outdata[:] = self._bridge.process(bytes(indata), frames)
        except Exception as exc:
            self.callback_errors += 1
            self._last_error = exc
            outdata[:] = bytes(len(outdata))

    # The monitor thread.

    def _watch(self) -> None:
        health = _Health(self, self._clock())
        while not self._closed.wait(_MONITOR_PERIOD_S):
            now = self._clock()
            lost = health.lost_because(now, _is_active(self._stream))
            if lost is not None:
                if self._lost_too_often(now, lost):
                    return
                log.warning("Sound device lost (%s): reopening it", lost)
                if not self._reopen(list_devices_again=True):
                    return
            else:
                stuck = health.stuck_because(now)
                # Never cut a reply short to unstick the stream: restart once it has played.
                if stuck is None or self._core.has_playback() or not self._may_restart(now):
                    health.summarize(now)
                    continue
                # Through PulseAudio a freshly opened stream often starts stuck: the first
                # restart is routine (info); a stream that gets stuck later is worth a warning.
                level = (
                    logging.INFO
                    if self.reopened == 0 and len(self._restarts) == 1
                    else logging.WARNING
                )
                log.log(level, "%s: restarting the sound stream", stuck)
                if not self._reopen(list_devices_again=False, level=level):
                    return
            health = _Health(self, self._clock())

    def _lost_too_often(self, now: float, reason: str) -> bool:
        """A device lost again and again right after reopening (a stalled source, a failing
        card) is lost for good: `AudioFailed` at the LOSSES_TO_FAIL-th loss within
        LOSSES_WITHIN_S."""
        self._losses.append(now)
        while now - self._losses[0] > LOSSES_WITHIN_S:
            self._losses.popleft()
        if len(self._losses) < LOSSES_TO_FAIL:
            return False
        log.warning(
            "Sound device lost again (%s), %d times in %.0f s: giving up",
            reason,
            LOSSES_TO_FAIL,
            LOSSES_WITHIN_S,
        )
        self._core.put_event(
            AudioFailed(
                f"The sound device keeps failing ({reason}, {LOSSES_TO_FAIL} times in "
                f"{LOSSES_WITHIN_S:.0f} s): check it, or pick another with --input_device/"
                f"--output_device ({_LIST_HINT})"
            )
        )
        return True

    def _may_restart(self, now: float) -> bool:
        while self._restarts and now - self._restarts[0] > 60.0:
            self._restarts.popleft()
        if len(self._restarts) >= MAX_RESTARTS:
            if len(self._restarts) == MAX_RESTARTS:  # say it once
                self._restarts.append(now)
                log.warning(
                    "The sound stream is still stuck after %d restarts in a minute: left as it is",
                    MAX_RESTARTS,
                )
            return False
        self._restarts.append(now)
        return True

    def _reopen(self, list_devices_again: bool, level: int = logging.WARNING) -> bool:
        """Abandon the stream and open the devices afresh, for `reopen_for_s`. False (and
        `AudioFailed` queued) when it could not, or `close` came first."""
        with self._stream_lock:
            stream, self._stream = self._stream, None
        shut = stream is None or _shut(stream, graceful=False, wait_s=CLOSE_WAIT_S)
        self.callback_thread = None
        self.input_lag_s = None
        started = self._clock()

        def attempt() -> None:  # raises SetupError, PortAudioError: the device is not back
            sd = _import_sounddevice()
            if list_devices_again and shut:  # PortAudio lists devices once (a replugged one)
                sd._terminate()
                sd._initialize()
            devices = self._resolve(sd)
            self._start_stream(sd, devices)
            self._devices = devices

        error = keep_trying(attempt, self._closed, self._reopen_for_s, self._clock)
        if self._closed.is_set():
            return False
        if error is None:
            assert self._devices is not None
            self.reopened += 1
            log.log(
                level,
                "Sound device reopened after %.1f s: %s",
                self._clock() - started,
                self._devices.names,
            )
            return True
        # PortAudioError's str() appends its code; its first argument is the message.
        detail = str(error.args[0] if error and error.args else error).split("\n")[0]
        if not isinstance(error, SetupError):  # a SetupError says what to do already
            detail = (
                f"{detail}: check that it is connected, or pick another with "
                f"--input_device/--output_device ({_LIST_HINT})"
            )
        self._core.put_event(
            AudioFailed(f"The sound device stopped working and could not be reopened: {detail}")
        )
        return False


def _is_active(stream: Any) -> bool:
    try:
        return stream is not None and bool(stream.active)
    except Exception:  # a stream PortAudio no longer knows
        return False


class _Health:
    """What the monitor remembers of the callback counters between two looks."""

    def __init__(self, audio: SounddeviceAudio, now: float) -> None:
        self._audio = audio
        self._callbacks = audio.callbacks
        self._progress_at = now
        self._errors: deque[tuple[float, int]] = deque([(now, audio.callback_errors)])
        self._summary_at = now
        self._summarized = (audio.xruns, audio.callback_errors)
        self._look_at = now
        self._thread_cpu: tuple[int, float] | None = None  # (thread, CPU seconds) at the look
        self._stuck_looks = 0

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

    def lost_because(self, now: float, active: bool) -> str | None:
        audio = self._audio
        if not active:
            return "the stream stopped"
        if audio.callbacks != self._callbacks:
            self._callbacks = audio.callbacks
            self._progress_at = now
        elif now - self._progress_at >= audio._stall_s:
            return f"no audio for {now - self._progress_at:.1f} s"
        errors = audio.callback_errors
        self._errors.append((now, errors))
        while now - self._errors[0][0] > 1.0:
            self._errors.popleft()
        recent = errors - self._errors[0][1]
        if recent >= ERRORS_FOR_LOSS:
            return f"{recent} callback errors in 1 s, the last {audio._last_error!r}"
        return None

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
