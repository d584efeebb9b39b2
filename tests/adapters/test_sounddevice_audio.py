"""The PortAudio adapter on a fake sounddevice: its callback, and what its supervisor does with
a lost, refused or stuck stream. Choosing the devices is in test_sound_devices.py, the rate
bridge in test_rate_bridge.py; what the adapter does with sound through a real server, beside
PulseAudio's own client, in test_sound_server.py."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.duplex_core import DuplexCore
from adapters.errors import SetupError
from adapters.sounddevice_audio import SounddeviceAudio
from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SAMPLES,
    AudioFailed,
    MicBlock,
    PlaybackMark,
    ReplyDone,
)
from tests.adapters.duplex_checks import audio_log, is_mic, wait_for


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


# Device loss and recovery, on a fake PortAudio whose streams call back from their own thread.


class FakeStream:
    """A started stream calls back every 4 ms from its own thread until stopped, or until the
    test makes it die (the callback thread ends, `active` turns False: ALSA's WaitForFrames
    failing), stall (active, but no more callbacks) or wedge (stop/abort/close never return)."""

    def __init__(self, sd: FakeSounddevice, callback: Any, blocksize: int, **_: object) -> None:
        self._sd = sd
        self._callback = callback
        self._blocksize = blocksize
        self.active = False
        self.stalled = sd.stall_new_streams
        self.wedged = False
        self.spinning = sd.spin_new_streams  # polls in a loop between callbacks
        self.lag_s = sd.lag_s  # how late each mic block comes
        self.out_bytes = 2 * blocksize
        self.closed = False
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._sd.refuse_opens:
            raise self._sd.PortAudioError("Error starting stream: Device unavailable", -9985)
        self.active = True
        self._running.set()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running.is_set():
            if not self.stalled:
                outdata = memoryview(bytearray(self.out_bytes))
                status = "output underflow" if self._sd.xrun_every_callback else None
                times = SimpleNamespace(currentTime=10.0, inputBufferAdcTime=10.0 - self.lag_s)
                self._callback(bytes(2 * self._blocksize), outdata, self._blocksize, times, status)
            if self.spinning:
                end = time.perf_counter() + 0.004
                while time.perf_counter() < end:
                    pass
            else:
                time.sleep(0.004)

    def die(self) -> None:
        self._running.clear()
        self.active = False

    def _end(self) -> None:
        if self.wedged:
            threading.Event().wait()  # forever
        self._running.clear()
        self.active = False

    def stop(self) -> None:
        self._end()

    def abort(self) -> None:
        self._end()

    def close(self) -> None:
        self._end()
        self.closed = True


class FakeSounddevice:
    """The parts of the sounddevice module the adapter uses, with one pulse-like device."""

    def __init__(self) -> None:
        import sounddevice

        self.PortAudioError = sounddevice.PortAudioError
        self.devices = [{"name": "pulse", "max_input_channels": 32, "max_output_channels": 32,
                         "default_samplerate": 44_100.0, "hostapi": 0}]  # fmt: skip
        self.default = type("Default", (), {"device": (0, 0)})()
        self.streams: list[FakeStream] = []
        self.refuse_opens = False
        self.xrun_every_callback = False
        self.spin_new_streams = False
        self.stall_new_streams = False
        self.lag_s = 0.01  # of new streams
        self.reinitialized = 0

    def query_devices(self) -> list[dict[str, Any]]:
        return list(self.devices)

    def check_input_settings(self, *_: object, **__: object) -> None:
        pass

    def check_output_settings(self, *_: object, **__: object) -> None:
        pass

    def RawStream(self, **kwargs: Any) -> FakeStream:  # sounddevice's name
        stream = FakeStream(self, **kwargs)
        self.streams.append(stream)
        return stream

    def _terminate(self) -> None:
        pass

    def _initialize(self) -> None:
        self.reinitialized += 1


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> FakeSounddevice:
    sd = FakeSounddevice()
    monkeypatch.setattr("adapters.sound_devices.import_sounddevice", lambda: sd)
    return sd


def lose_and_recover(audio: SounddeviceAudio, sd: FakeSounddevice, lose: Callable[[], None],
                     caplog: pytest.LogCaptureFixture) -> list[str]:  # fmt: skip
    audio.open()
    try:
        wait_for(audio, is_mic, timeout_s=2)
        started = time.monotonic()
        lose()
        wait_for(audio, lambda _: len(sd.streams) == 2, timeout_s=5)
        # Reply audio queued across the loss still plays, and the mic comes back.
        audio.play(bytes(BLOCK_BYTES))
        audio.mark(ReplyDone(1))
        events = wait_for(audio, lambda e: isinstance(e, PlaybackMark), timeout_s=2)
        recovered_s = time.monotonic() - started
        events += wait_for(audio, is_mic, timeout_s=2)
    finally:
        audio.close()
    assert any(isinstance(e, MicBlock) and e.playing for e in events)
    assert audio.reopened == 1
    assert sd.reinitialized == 1  # PortAudio listed the devices again
    assert sd.streams[0].closed and sd.streams[1].closed
    assert recovered_s < 3.5  # detected within ~1 s, reopened at once
    return audio_log(caplog, audio)


@pytest.mark.parametrize(
    ("lose", "reason"),
    [
        (lambda s: s.die(), "the stream stopped"),
        (lambda s: setattr(s, "stalled", True), "no audio for 1.0 s"),
        (lambda s: setattr(s, "out_bytes", 100), "callback errors in 1 s, the last ValueError"),
    ],
    ids=["stream-stopped", "no-callbacks", "callback-errors"],
)
def test_a_lost_device_is_reported_in_one_line_and_reopened(
    fake_sd: FakeSounddevice,
    caplog: pytest.LogCaptureFixture,
    lose: Callable[[FakeStream], None],
    reason: str,
) -> None:
    audio = SounddeviceAudio(stall_s=1.0)
    lines = lose_and_recover(audio, fake_sd, lambda: lose(fake_sd.streams[0]), caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("Sound device lost (") and reason in lines[0]
    assert lines[0].endswith("): reopening it")
    assert lines[1].startswith("Sound device reopened after ")
    assert lines[1].endswith("s: 'pulse' -> 'pulse'")


def test_a_device_that_does_not_come_back_is_audio_failed_after_3_s(
    fake_sd: FakeSounddevice, caplog: pytest.LogCaptureFixture
) -> None:
    audio = SounddeviceAudio()
    audio.open()
    try:
        wait_for(audio, is_mic, timeout_s=2)
        fake_sd.devices = []  # unplugged
        lost_at = time.monotonic()
        fake_sd.streams[0].die()
        events = wait_for(audio, lambda e: isinstance(e, AudioFailed), timeout_s=6)
        failed_after_s = time.monotonic() - lost_at
    finally:
        audio.close()
    failed = events[-1]
    assert isinstance(failed, AudioFailed)
    assert failed.reason == (
        "The sound device stopped working and could not be reopened: No input device found: "
        "connect one, or run `python -m composition.local --list_devices`"
    )
    assert 3.0 <= failed_after_s < 6.0  # 3 s of attempts, with room for a loaded machine
    assert audio_log(caplog, audio) == ["Sound device lost (the stream stopped): reopening it"]
    assert audio.next_event(timeout_s=0.3) is None  # once, and the monitor has ended


def test_a_device_lost_again_after_each_reopening_is_audio_failed_at_the_third_loss(
    fake_sd: FakeSounddevice, caplog: pytest.LogCaptureFixture
) -> None:
    audio = SounddeviceAudio(stall_s=0.5)
    audio.open()
    try:
        wait_for(audio, is_mic, timeout_s=2)
        fake_sd.stall_new_streams = True  # opens fine, then never calls back
        fake_sd.streams[0].stalled = True
        failed = wait_for(audio, lambda e: isinstance(e, AudioFailed), timeout_s=6)[-1]
    finally:
        audio.close()
    assert failed == AudioFailed(
        "The sound device keeps failing (no audio for 0.5 s, 3 times in 30 s): check it, or "
        "pick another with --input_device/--output_device (run `python -m composition.local "
        "--list_devices`)"
    )
    lines = audio_log(caplog, audio)
    assert len(lines) == 5, lines
    assert all(line.startswith("Sound device lost (no audio for 0.5 s)") for line in lines[0:4:2])
    assert all(line.startswith("Sound device reopened after") for line in lines[1:4:2])
    assert lines[4] == "Sound device lost again (no audio for 0.5 s), 3 times in 30 s: giving up"
    assert len(fake_sd.streams) == 3


def test_a_device_that_refuses_to_reopen_is_audio_failed(fake_sd: FakeSounddevice) -> None:
    audio = SounddeviceAudio(reopen_for_s=1.0)
    audio.open()
    try:
        wait_for(audio, is_mic, timeout_s=2)
        fake_sd.refuse_opens = True
        fake_sd.streams[0].die()
        failed = wait_for(audio, lambda e: isinstance(e, AudioFailed), timeout_s=4)[-1]
    finally:
        audio.close()
    assert isinstance(failed, AudioFailed)
    assert failed.reason == (
        "The sound device stopped working and could not be reopened: Error starting stream: "
        "Device unavailable: check that it is connected, or pick another with --input_device/"
        "--output_device (run `python -m composition.local --list_devices`)"
    )
    assert len(fake_sd.streams) >= 3  # tried more than once


@pytest.mark.parametrize(
    ("stick", "line"),
    [
        (
            lambda sd: setattr(sd, "spin_new_streams", True),
            r"The audio thread spins at \d+ % of a core, the microphone 0.01 s late",
        ),
        (
            lambda sd: setattr(sd, "lag_s", 1.5),
            r"The microphone is 1.5 s late \(queued by the sound server\)",
        ),
    ],
    ids=["spinning", "late"],
)
def test_a_stuck_stream_is_restarted_once_in_one_line(
    fake_sd: FakeSounddevice,
    caplog: pytest.LogCaptureFixture,
    stick: Callable[[FakeSounddevice], None],
    line: str,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.sounddevice_audio")
    stick(fake_sd)
    audio = SounddeviceAudio()
    audio.open()
    try:
        wait_for(audio, is_mic, timeout_s=2)
        fake_sd.spin_new_streams, fake_sd.lag_s = False, 0.01  # the new stream is fine
        wait_for(audio, lambda _: len(fake_sd.streams) == 2, timeout_s=5)
        time.sleep(2.5)  # two more looks: no second restart
    finally:
        audio.close()
    first, second = audio_log(caplog, audio)
    assert re.fullmatch(line + ": restarting the sound stream", first), first
    assert second.startswith("Sound device reopened after ")
    # Routine right after opening through PulseAudio: the first restart is only info.
    assert [r.levelno for r in caplog.records] == [logging.INFO, logging.INFO]
    assert fake_sd.reinitialized == 0  # the same devices: no need to list them again
    assert len(fake_sd.streams) == 2


def test_a_stuck_stream_is_restarted_only_once_the_reply_has_played(
    fake_sd: FakeSounddevice,
) -> None:
    fake_sd.lag_s = 2.0
    audio = SounddeviceAudio()
    audio.open()
    try:
        for _ in range(600):  # 2.4 s at the fake's pace, longer than two looks of 1 s
            audio.play(bytes(BLOCK_BYTES))
        audio.mark(ReplyDone(1))
        fake_sd.lag_s = 0.01
        done = wait_for(audio, lambda e: isinstance(e, PlaybackMark), timeout_s=10)[-1]
        assert len(fake_sd.streams) == 1  # not restarted while the reply played
        wait_for(audio, lambda _: len(fake_sd.streams) == 2, timeout_s=3)
    finally:
        audio.close()
    assert isinstance(done, PlaybackMark)


def test_a_stream_that_stays_stuck_is_restarted_at_most_5_times_a_minute(
    fake_sd: FakeSounddevice, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.sounddevice_audio")
    monkeypatch.setattr("adapters.sounddevice_audio.STUCK_LOOK_S", 0.2)
    fake_sd.lag_s = 2.0
    audio = SounddeviceAudio()
    audio.open()
    try:
        wait_for(audio, lambda _: len(fake_sd.streams) == 6, timeout_s=10)
        time.sleep(1.5)
    finally:
        audio.close()
    lines = audio_log(caplog, audio)
    assert len(fake_sd.streams) == 6
    assert lines.count("The microphone is 2.0 s late (queued by the sound server): "
                       "restarting the sound stream") == 5  # fmt: skip
    assert lines[-1] == (
        "The sound stream is still stuck after 5 restarts in a minute: left as it is"
    )


def test_close_returns_within_half_a_second_on_a_wedged_device(fake_sd: FakeSounddevice) -> None:
    audio = SounddeviceAudio()
    audio.open()
    wait_for(audio, is_mic, timeout_s=2)
    fake_sd.streams[0].wedged = True
    started = time.monotonic()
    audio.close()
    assert time.monotonic() - started < 0.75  # 0.1 + 0.4 s by construction, plus scheduling


def test_close_while_the_device_is_being_reopened_is_quick_and_leaves_nothing_open(
    fake_sd: FakeSounddevice,
) -> None:
    audio = SounddeviceAudio()
    audio.open()
    wait_for(audio, is_mic, timeout_s=2)
    fake_sd.refuse_opens = True
    fake_sd.streams[0].die()
    time.sleep(0.5)  # the monitor is retrying
    started = time.monotonic()
    audio.close()
    assert time.monotonic() - started < 0.75
    time.sleep(0.6)
    assert not any(stream.active for stream in fake_sd.streams)
    events = list(iter(lambda: audio.next_event(0), None))
    assert not any(isinstance(e, AudioFailed) for e in events)


def test_xruns_and_callback_errors_are_summed_up_at_most_once_per_period(
    fake_sd: FakeSounddevice, caplog: pytest.LogCaptureFixture
) -> None:
    fake_sd.xrun_every_callback = True
    audio = SounddeviceAudio(summary_every_s=0.5)
    audio.open()
    try:
        time.sleep(1.3)
    finally:
        audio.close()
    lines = audio_log(caplog, audio)
    assert 1 <= len(lines) <= 2, lines
    assert all(
        re.fullmatch(r"Audio glitches in the last 0 s: \d+ xruns, 0 callback errors", line)
        or re.fullmatch(r"Audio glitches in the last 1 s: \d+ xruns, 0 callback errors", line)
        for line in lines
    ), lines
    assert audio.xruns > 0


def test_check_resolves_the_devices_without_opening_a_stream(fake_sd: FakeSounddevice) -> None:
    SounddeviceAudio("pulse", "pulse").check()
    assert fake_sd.streams == []
    with pytest.raises(SetupError, match="No input device matches 'usb'"):
        SounddeviceAudio("usb").check()
    assert fake_sd.streams == []
