"""The sound devices PortAudio knows: the table `--list_devices` prints, the input and output
that the user's flags name, the sample rate both take, and PortAudio's open errors as one line
the user can act on. `sounddevice` is imported only when asked: importing it loads PortAudio,
which may be missing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from adapters.errors import SetupError
from domain.audio import SAMPLE_RATE

DeviceSpec = int | str | None

LIST_HINT = "run `python -m composition.local --list_devices`"
PICK_ANOTHER = f"pick another with --input_device/--output_device ({LIST_HINT})"
_PA_DEVICE_UNAVAILABLE = -9985  # paDeviceUnavailable: another program holds the device


def import_sounddevice() -> Any:  # the module; untyped
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
    sd = import_sounddevice()
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


@attrs.frozen
class Devices:
    """The input (None: the speaker only) and output a stream opens, at the rate both take."""

    input: int | None
    output: int
    rate: int
    names: str  # for the log


def choose_devices(
    sd: Any, input_spec: DeviceSpec, output_spec: DeviceSpec, capture: bool = True
) -> Devices:
    """The devices the specs name among those PortAudio lists now, and their shared rate;
    without `capture`, the output alone."""
    devices = sd.query_devices()
    default_in, default_out = sd.default.device
    device_in = resolve_device(devices, input_spec, "input", default_in) if capture else None
    device_out = resolve_device(devices, output_spec, "output", default_out)
    rate = shared_rate(sd, devices, device_in, device_out)
    speaker = repr(devices[device_out]["name"])
    if device_in is None:
        return Devices(None, device_out, rate, f"{speaker} (speaker only)")
    return Devices(device_in, device_out, rate, f"{devices[device_in]['name']!r} -> {speaker}")


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
        raise SetupError(f"No {kind} device found: connect one, or {LIST_HINT}")
    if isinstance(spec, int):
        if spec in usable:
            return spec
        raise SetupError(f"Device {spec} is not an {kind} device: {LIST_HINT}")
    wanted = spec.lower()
    matches = [i for i in usable if wanted in devices[i]["name"].lower()]
    exact = [i for i in matches if devices[i]["name"].lower() == wanted]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise SetupError(f"No {kind} device matches {spec!r}: {LIST_HINT}")
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
            f"another device with --input_device/--output_device ({LIST_HINT})"
        )
    return SetupError(
        f"Cannot open the sound devices ({exc.args[0]}): pick others with "
        f"--input_device/--output_device ({LIST_HINT})"
    )


def shared_rate(
    sd: Any, devices: Sequence[Mapping[str, Any]], device_in: int | None, device_out: int
) -> int:
    """16 kHz if both devices take it, else the first native rate both take (the output's
    alone when there is no input)."""
    opened = [i for i in (device_out, device_in) if i is not None]
    candidates = [SAMPLE_RATE] + [int(devices[i]["default_samplerate"]) for i in opened]
    for rate in dict.fromkeys(candidates):
        try:
            if device_in is not None:
                sd.check_input_settings(device_in, channels=1, dtype="int16", samplerate=rate)
            sd.check_output_settings(device_out, channels=1, dtype="int16", samplerate=rate)
        except sd.PortAudioError as exc:
            if exc.args[1:2] == (_PA_DEVICE_UNAVAILABLE,):
                raise open_error(exc) from exc
            continue
        return rate
    raise SetupError(
        "The input and output devices share no sample rate: pick two of the same card "
        f"with --input_device/--output_device ({LIST_HINT})"
    )
