"""The sound-device adapter: device selection and errors without a device, then the real thing
through a private PulseAudio server (FIFO microphone and speaker), with the real Silero VAD and
the domain's turn segmenter."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adapters.duplex_core import DuplexCore
from adapters.errors import SetupError
from adapters.silero_vad import SileroVad
from adapters.sounddevice_audio import (
    RateBridge,
    SounddeviceAudio,
    list_devices,
    open_error,
    resolve_device,
    shared_rate,
)
from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SAMPLES,
    BLOCK_SECONDS,
    RESPONSE_DONE_MARK,
    SAMPLE_RATE,
    VOICED_MARK,
    AudioEvent,
    MicBlock,
    PlaybackMark,
    silence,
)
from domain.turn_segmentation import TurnEnded, TurnSegmenter, VadConfig
from tests.adapters.pulse_server import PulseServer, reinitialize_portaudio
from tests.adapters.speech_samples import load_speech

DEVICES = [
    {"name": "HDA Intel PCH: ALC257 Analog (hw:0,0)", "max_input_channels": 2,
     "max_output_channels": 2},
    {"name": "HDMI 0", "max_input_channels": 0, "max_output_channels": 8},
    {"name": "USB Headset: Audio (hw:1,0)", "max_input_channels": 1, "max_output_channels": 2},
    {"name": "pulse", "max_input_channels": 32, "max_output_channels": 32},
    {"name": "pulse monitor", "max_input_channels": 32, "max_output_channels": 0},
]  # fmt: skip


# Device selection, errors and resampling: no device needed.


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


def test_a_device_name_that_does_not_exist_is_a_setup_error() -> None:
    with pytest.raises(SetupError, match=r"No input device matches 'no such mic': run `python"):
        SounddeviceAudio(input_device="no such mic").open()


def test_the_callback_never_raises_and_counts_what_went_wrong() -> None:
    audio = SounddeviceAudio()
    outdata = memoryview(bytearray(BLOCK_BYTES))
    audio._callback(bytes(BLOCK_BYTES), outdata, BLOCK_SAMPLES, None, "output underflow")
    assert outdata.tobytes() == DuplexCore().dither
    assert audio.next_event(0) == MicBlock(bytes(BLOCK_BYTES), 0.0)
    # A block of the wrong size cannot be written into PortAudio's buffer: silence instead.
    short = memoryview(bytearray(b"\1" * 100))
    audio._callback(bytes(100), short, 50, None, None)
    assert short.tobytes() == bytes(100)
    assert (audio.xruns, audio.callback_errors) == (1, 1)


def tone(hz: float, rate: int, seconds: float, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2")


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("device_rate", [48_000, 44_100])
def test_rate_bridge_resamples_both_ways_in_512_sample_blocks(device_rate: int) -> None:
    core = DuplexCore()
    bridge = RateBridge(core, device_rate)
    frames = bridge.block_frames
    mic = tone(440, device_rate, 4.0)
    reply = tone(1000, SAMPLE_RATE, 64 * BLOCK_SECONDS).tobytes()
    for i in range(0, len(reply), BLOCK_BYTES):
        core.play(reply[i : i + BLOCK_BYTES])
    played = [
        bridge.process(mic[i : i + frames].tobytes(), frames)
        for i in range(0, len(mic) - frames + 1, frames)
    ]
    assert all(len(block) == 2 * frames for block in played)
    assert bridge.short_blocks == 0
    # The reply came out first (mic gated), then the mic was forwarded in 512-sample blocks.
    heard = b"".join(
        e.pcm for e in iter(lambda: core.next_event(0), None) if isinstance(e, MicBlock)
    )
    assert len(heard) % BLOCK_BYTES == 0
    # 4 s of mic is 125 blocks: 64 went by while the reply played, the rest was forwarded.
    assert len(heard) // BLOCK_BYTES == pytest.approx(125 - 64, abs=2)
    assert dominant_hz(np.frombuffer(heard, "<i2"), SAMPLE_RATE) == pytest.approx(440, abs=1)
    out = np.frombuffer(b"".join(played), "<i2")
    reply_out = out[int(0.2 * device_rate) : int(1.8 * device_rate)]
    assert dominant_hz(reply_out, device_rate) == pytest.approx(1000, abs=1)
    assert np.abs(reply_out).max() == pytest.approx(8000, rel=0.02)


# Through a real sound server.


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PULSE_SERVER", server.server)
        server.start()
        try:
            reinitialize_portaudio()
            yield server
        finally:
            server.stop()
            reinitialize_portaudio()


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def collect(audio: SounddeviceAudio, seconds: float) -> list[AudioEvent]:
    events = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event = audio.next_event(timeout_s=0.1)
        if event is not None:
            events.append(event)
    return events


def turns(vad: SileroVad, events: list[AudioEvent]) -> list[TurnEnded]:
    vad.reset()
    segmenter = TurnSegmenter(VadConfig())
    found = []
    for event in events:
        if isinstance(event, MicBlock):
            probability = vad.speech_probability(event.pcm)
            found += segmenter.feed(event.pcm, probability, event.captured_at_s)
    return [event for event in found if isinstance(event, TurnEnded)]


def relative_spans(found: list[TurnEnded]) -> list[tuple[float, float]]:
    origin = found[0].speech_start_s
    return [(t.speech_start_s - origin, t.speech_end_s - origin) for t in found]


@pytest.mark.slow
def test_list_devices_shows_the_sound_server(pulse: PulseServer) -> None:
    table = list_devices()
    assert table.splitlines()[0].split() == ["#", "in", "out", "rate", "host", "api", "name"]
    assert any(line.split()[-1] == "pulse" for line in table.splitlines())


@pytest.mark.slow
def test_speech_into_the_microphone_becomes_the_expected_turns(
    pulse: PulseServer, vad: SileroVad
) -> None:
    speech = load_speech("beckett") + silence(SAMPLE_RATE)
    speech = speech[: len(speech) // BLOCK_BYTES * BLOCK_BYTES]
    expected = turns(vad, [MicBlock(speech[i : i + BLOCK_BYTES], i / 2 / SAMPLE_RATE)
                           for i in range(0, len(speech), BLOCK_BYTES)])  # fmt: skip
    audio = SounddeviceAudio("pulse", "pulse")
    audio.open()
    try:
        pulse.say(speech)
        events = collect(audio, len(speech) / 2 / SAMPLE_RATE + 0.5)
    finally:
        audio.close()
    mic = [e for e in events if isinstance(e, MicBlock)]
    assert [e.captured_at_s for e in mic] == [i * BLOCK_SECONDS for i in range(len(mic))]
    heard = turns(vad, events)
    assert len(heard) == len(expected) == 6  # "Ever tried." ... "Fail better."
    for got, want in zip(relative_spans(heard), relative_spans(expected), strict=True):
        assert got == pytest.approx(want, abs=0.1)
    assert audio.callback_errors == 0


@pytest.mark.slow
def test_a_reply_gates_the_microphone_plays_bit_exact_and_dither_fills_the_gaps(
    pulse: PulseServer, vad: SileroVad
) -> None:
    reply = load_speech("two_cities")[: 94 * BLOCK_BYTES]  # 3 s
    said_during_reply = load_speech("beckett")[: 40 * BLOCK_BYTES]  # "Ever tried."
    said_after_reply = load_speech("beckett")[40 * BLOCK_BYTES : 80 * BLOCK_BYTES]  # "Ever failed."
    heard_before = len(pulse.heard())
    audio = SounddeviceAudio("pulse", "pulse")
    audio.open()
    try:
        events = collect(audio, 0.5)
        audio.mark(1, VOICED_MARK)
        for i in range(0, len(reply), BLOCK_BYTES):
            audio.play(reply[i : i + BLOCK_BYTES])
        audio.mark(1, RESPONSE_DONE_MARK)
        pulse.say(said_during_reply)
        events += collect(audio, 3.5)
        pulse.say(said_after_reply + silence(SAMPLE_RATE))
        events += collect(audio, 2.6)
    finally:
        audio.close()
    marks = [e for e in events if isinstance(e, PlaybackMark)]
    assert [(m.turn_id, m.label) for m in marks] == [(1, VOICED_MARK), (1, RESPONSE_DONE_MARK)]
    started, done = (m.played_at_s for m in marks)
    assert done - started == pytest.approx(94 * BLOCK_SECONDS)

    # Half duplex: no mic block while the reply played; listening again right after.
    mic_times = [e.captured_at_s for e in events if isinstance(e, MicBlock)]
    assert not [t for t in mic_times if started <= t < done]
    assert min(t for t in mic_times if t >= done) == pytest.approx(done)
    # What was said over the reply never reached the VAD; what was said after it is a turn.
    (turn,) = turns(vad, events)
    assert turn.speech_start_s > done

    # The speaker got the reply bit-exact, with the dither before and after it. The pipe sink
    # hands audio on with some latency, more on a busy machine: wait for it.
    deadline = time.monotonic() + 5
    while (at := (played := pulse.heard()[heard_before:]).find(reply)) < 0:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(0.3)  # and for dither after it
    played = pulse.heard()[heard_before:]
    assert at > 0, "the reply did not arrive bit-exact"
    dither = DuplexCore().dither
    for gap in (played[:at], played[at + len(reply) :]):
        samples = np.frombuffer(gap[: len(gap) // 2 * 2], "<i2")
        assert set(np.unique(samples)) <= {-1, 0, 1}
        assert samples.any()
        assert dither in gap
    assert audio.callback_errors == 0
    print(f"xruns: {audio.xruns}")
