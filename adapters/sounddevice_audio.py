"""The microphone and speaker of local mode: one duplex PortAudio stream through sounddevice.

Each 32 ms callback hands the captured block to `DuplexCore.tick` and plays what it returns, so
the gating (mic forwarded only while no reply is queued, dither while idle, marks echoed when
reached) is the same code the WAV replay runs. `sounddevice` is imported only when a device is
used: importing it loads PortAudio, which may be missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adapters.duplex_core import CoreBackedAudio, DuplexCore
from adapters.errors import SetupError
from domain.audio import BLOCK_BYTES, BLOCK_SAMPLES, SAMPLE_RATE

DeviceSpec = int | str | None
# PortAudio's "low" latency through ALSA's PulseAudio plugin busy-waits: one core at 82-98 %
# while idle (measured here), against 2 % with "high", which gave the same 64/96 ms there.
# Settable (--audio_latency) for a device where "high" means a long buffer.
DEFAULT_LATENCY = "high"

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


class SounddeviceAudio(CoreBackedAudio):
    """`AudioDuplex` on a sound card. `input_device`/`output_device`: an index, part of a name,
    or None for the system default (see `list_devices`)."""

    def __init__(
        self,
        input_device: DeviceSpec = None,
        output_device: DeviceSpec = None,
        latency: str | float = DEFAULT_LATENCY,
    ) -> None:
        self._input_device = input_device
        self._output_device = output_device
        self._latency = latency
        self._core = DuplexCore()
        self._bridge: RateBridge | None = None
        self._stream: Any = None
        self.device_rate = SAMPLE_RATE
        self.xruns = 0  # callbacks PortAudio flagged with an overflow or underflow
        self.callback_errors = 0  # exceptions caught in the callback (raising would kill it)

    def open(self) -> None:
        sd = _import_sounddevice()
        devices = sd.query_devices()
        default_in, default_out = sd.default.device
        device_in = resolve_device(devices, self._input_device, "input", default_in)
        device_out = resolve_device(devices, self._output_device, "output", default_out)
        self.device_rate = shared_rate(sd, devices, device_in, device_out)
        blocksize = BLOCK_SAMPLES
        if self.device_rate != SAMPLE_RATE:
            self._bridge = RateBridge(self._core, self.device_rate)
            blocksize = self._bridge.block_frames
        try:
            self._stream = sd.RawStream(
                samplerate=self.device_rate,
                blocksize=blocksize,
                device=(device_in, device_out),
                channels=1,
                dtype="int16",
                callback=self._callback,
                latency=self._latency,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            raise open_error(exc) from exc

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()  # plays out what PortAudio still holds
            self._stream.close()
            self._stream = None

    def _callback(self, indata: Any, outdata: Any, frames: int, _time: Any, status: Any) -> None:
        try:
            if status:
                self.xruns += 1
            if self._bridge is None:
                outdata[:] = self._core.tick(bytes(indata))
            else:
                outdata[:] = self._bridge.process(bytes(indata), frames)
        except Exception:
            self.callback_errors += 1
            outdata[:] = bytes(len(outdata))
