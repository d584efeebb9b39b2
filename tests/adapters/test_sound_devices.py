"""Choosing the sound devices PortAudio knows: matching the user's flags, the rate both devices
take, PortAudio's errors as one line, and the device list, on fake devices and through a
private PulseAudio server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.errors import SetupError
from adapters.sound_devices import list_devices, open_error, resolve_device, shared_rate
from adapters.sounddevice_audio import SounddeviceAudio
from tests.adapters.pulse_server import PulseServer, serving

DEVICES = [
    {"name": "HDA Intel PCH: ALC257 Analog (hw:0,0)", "max_input_channels": 2,
     "max_output_channels": 2},
    {"name": "HDMI 0", "max_input_channels": 0, "max_output_channels": 8},
    {"name": "USB Headset: Audio (hw:1,0)", "max_input_channels": 1, "max_output_channels": 2},
    {"name": "pulse", "max_input_channels": 32, "max_output_channels": 32},
    {"name": "pulse monitor", "max_input_channels": 32, "max_output_channels": 0},
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "kind", "expected"),
    [
        (None, "input", 3),
        ("usb", "input", 2),
        ("USB Headset", "output", 2),
        ("hdmi", "output", 1),
        ("pulse", "input", 3),  # the exact name wins over "pulse monitor"
        (4, "input", 4),
        ("4", "input", 4),  # as a command-line flag arrives
    ],
)
def test_resolve_device(spec: int | str | None, kind: str, expected: int) -> None:
    assert resolve_device(DEVICES, spec, kind, default=3) == expected


def test_without_a_default_the_first_device_of_its_kind_is_used() -> None:
    assert resolve_device(DEVICES, None, "output", default=-1) == 0


@pytest.mark.parametrize(
    ("devices", "spec", "kind", "message"),
    [
        ([], None, "input", "No input device found: connect one, or run `python -m composition"
         ".local --list_devices`"),
        (DEVICES, "webcam", "input", "No input device matches 'webcam': run `python -m "
         "composition.local --list_devices`"),
        (DEVICES, "hdmi", "input", "No input device matches 'hdmi'"),
        (DEVICES, 1, "input", "Device 1 is not an input device: run `python -m composition"),
        (DEVICES, 9, "output", "Device 9 is not an output device"),
        (DEVICES, "hw:", "input", "'hw:' matches several input devices ('HDA Intel PCH: ALC257 "
         "Analog (hw:0,0)', 'USB Headset: Audio (hw:1,0)'): give more of the name, or the index"),
    ],
)  # fmt: skip
def test_resolve_device_errors_are_one_actionable_line(
    devices: list[dict[str, object]], spec: int | str | None, kind: str, message: str
) -> None:
    with pytest.raises(SetupError) as error:
        resolve_device(devices, spec, kind, default=-1)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_busy_device_is_named_as_such() -> None:
    import sounddevice

    busy = sounddevice.PortAudioError("Error opening RawStream: Device unavailable", -9985)
    assert str(open_error(busy)).startswith("The sound device is busy (another program holds it)")
    other = sounddevice.PortAudioError("Error opening RawStream: Invalid number of channels", -9998)
    assert str(open_error(other)) == (
        "Cannot open the sound devices (Error opening RawStream: Invalid number of channels): "
        "pick others with --input_device/--output_device (run `python -m composition.local "
        "--list_devices`)"
    )


class FakePortAudio:
    """The two sounddevice checks `shared_rate` uses, for devices that take only some rates."""

    def __init__(self, input_rates: set[int], output_rates: set[int], code: int = -9997) -> None:
        import sounddevice

        self.PortAudioError = sounddevice.PortAudioError
        self._rates = {"input": input_rates, "output": output_rates}
        self._code = code

    def _check(self, kind: str, samplerate: int) -> None:
        if samplerate not in self._rates[kind]:
            raise self.PortAudioError("Error opening stream: Invalid sample rate", self._code)

    def check_input_settings(self, _device: int, samplerate: int, **_: object) -> None:
        self._check("input", samplerate)

    def check_output_settings(self, _device: int, samplerate: int, **_: object) -> None:
        self._check("output", samplerate)


RATES = [{"default_samplerate": 44_100.0}, {"default_samplerate": 48_000.0}]


@pytest.mark.parametrize(
    ("input_rates", "output_rates", "expected"),
    [
        ({16_000, 48_000}, {16_000, 48_000}, 16_000),
        ({44_100, 48_000}, {44_100, 48_000}, 48_000),  # the output's native rate first
        ({44_100}, {44_100, 48_000}, 44_100),
    ],
)
def test_a_device_that_refuses_16_khz_opens_at_a_native_rate(
    input_rates: set[int], output_rates: set[int], expected: int
) -> None:
    sd = FakePortAudio(input_rates, output_rates)
    assert shared_rate(sd, RATES, device_in=0, device_out=1) == expected


def test_devices_without_a_common_rate_or_busy_are_setup_errors() -> None:
    with pytest.raises(SetupError, match="share no sample rate: pick two of the same card"):
        shared_rate(FakePortAudio({44_100}, {48_000}), RATES, device_in=0, device_out=1)
    with pytest.raises(SetupError, match="The sound device is busy"):
        shared_rate(FakePortAudio(set(), set(), code=-9985), RATES, device_in=0, device_out=1)


def test_missing_portaudio_is_a_setup_error_with_the_install_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `import sounddevice` does when libportaudio cannot be found.
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SetupError) as error:
        list_devices()
    assert str(error.value) == (
        "PortAudio is not installed: run `sudo apt install libportaudio2` (Debian/Ubuntu) "
        "or `brew install portaudio` (macOS)"
    )
    with pytest.raises(SetupError, match="PortAudio is not installed"):
        SounddeviceAudio().open()


# Through a real sound server.


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    with serving(tmp_path_factory.mktemp("pulse")) as server:
        yield server


@pytest.mark.slow
def test_list_devices_shows_the_sound_server(pulse: PulseServer) -> None:
    table = list_devices()
    assert table.splitlines()[0].split() == ["#", "in", "out", "rate", "host", "api", "name"]
    assert any(line.split()[-1] == "pulse" for line in table.splitlines())
