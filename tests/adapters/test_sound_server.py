"""Both ways to a sound server, PortAudio through ALSA's PulseAudio plugin and PulseAudio's own
client, against a real one: a private PulseAudio daemon with a FIFO microphone and speaker,
with the real Silero VAD and the domain's turn segmenter."""

from __future__ import annotations

import logging
import os
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from adapters.duplex_core import DuplexCore
from adapters.errors import SetupError
from adapters.pulse_audio import PulseAudio, server_answers
from adapters.silero_vad import SileroVad
from adapters.sounddevice_audio import SounddeviceAudio
from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SECONDS,
    SAMPLE_RATE,
    AudioEvent,
    AudioFailed,
    MicBlock,
    PlaybackMark,
    ReplyDone,
    ReplyVoiced,
    silence,
)
from domain.turn_segmentation import TurnEnded, TurnSegmenter, VadConfig
from tests.adapters.duplex_checks import APIS, audio_log, healthy, is_mic, server_audio, wait_for
from tests.adapters.pulse_server import PulseServer, reinitialize_portaudio, serving
from tests.adapters.speech_samples import load_speech


@pytest.fixture(scope="module")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    with serving(tmp_path_factory.mktemp("pulse")) as server:
        yield server


@pytest.fixture
def bare_pulse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseServer]:
    """A server that only the PulseAudio client talks to, as when the agent runs. (`pulse` also
    has PortAudio list its devices, which opens streams of its own; on that server the old
    client's playback stream never filled up, and the timing tests below could not fail.)"""
    server = PulseServer(tmp_path)
    monkeypatch.setenv("PULSE_SERVER", server.server)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    return SileroVad()


def turns(vad: SileroVad, events: list[AudioEvent]) -> list[TurnEnded]:
    """The turns in what the VAD hears under half duplex: mic blocks while nothing played."""
    vad.reset()
    segmenter = TurnSegmenter(VadConfig())
    found = []
    for event in events:
        if isinstance(event, MicBlock) and not event.playing:
            probability = vad.speech_probability(event.pcm)
            found += segmenter.feed(event.pcm, probability, event.captured_at_s)
    return [event for event in found if isinstance(event, TurnEnded)]


def relative_spans(found: list[TurnEnded]) -> list[tuple[float, float]]:
    origin = found[0].speech_start_s
    return [(t.speech_start_s - origin, t.speech_end_s - origin) for t in found]


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_speech_into_the_microphone_becomes_the_expected_turns(
    api: str, pulse: PulseServer, vad: SileroVad
) -> None:
    speech = load_speech("beckett") + silence(SAMPLE_RATE)
    speech = speech[: len(speech) // BLOCK_BYTES * BLOCK_BYTES]
    expected = turns(vad, [MicBlock(speech[i : i + BLOCK_BYTES], i / 2 / SAMPLE_RATE)
                           for i in range(0, len(speech), BLOCK_BYTES)])  # fmt: skip
    audio = server_audio(api)
    audio.open()
    try:
        # 4 s of microphone first: a stream that starts stuck is restarted by then.
        for _ in range(4 * 31):
            wait_for(audio, is_mic, timeout_s=10)
        pulse.say(speech)
        # Counted in blocks, not seconds: a loaded machine only makes it slower.
        events = []
        for _ in range(len(speech) // BLOCK_BYTES + 16):
            events += wait_for(audio, is_mic, timeout_s=10)
    finally:
        audio.close()
    mic = [e for e in events if isinstance(e, MicBlock)]
    start = mic[0].captured_at_s
    assert [e.captured_at_s - start for e in mic] == pytest.approx(
        [i * BLOCK_SECONDS for i in range(len(mic))]
    )
    heard = turns(vad, events)
    assert len(heard) == len(expected) == 6  # "Ever tried." ... "Fail better."
    # A PortAudio stream restarted for spinning (ALSA's PulseAudio plugin, see the adapter)
    # loses the blocks of the restart, up to ~0.2 s; the turns must still be the same six.
    for got, want in zip(relative_spans(heard), relative_spans(expected), strict=True):
        assert got == pytest.approx(want, abs=0.25)
    assert healthy(audio)


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_a_reply_gates_the_microphone_plays_bit_exact_and_dither_fills_the_gaps(
    api: str, pulse: PulseServer, vad: SileroVad
) -> None:
    """Waits on events, never on the wall clock alone: a loaded machine only makes it slower."""
    reply = load_speech("two_cities")[: 94 * BLOCK_BYTES]  # 3 s
    said_during_reply = load_speech("beckett")[: 40 * BLOCK_BYTES]  # "Ever tried."
    said_after_reply = load_speech("beckett")[40 * BLOCK_BYTES : 80 * BLOCK_BYTES]  # "Ever failed."
    heard_before = len(pulse.heard())
    audio = server_audio(api)
    audio.open()
    try:
        # 4 s of microphone first: a stream that starts stuck is restarted by then (it would
        # drop what PortAudio held of the reply).
        events = []
        for _ in range(4 * 31):
            events += wait_for(audio, is_mic, timeout_s=10)
        audio.mark(ReplyVoiced(1))
        for i in range(0, len(reply), BLOCK_BYTES):
            audio.play(reply[i : i + BLOCK_BYTES])
        audio.mark(ReplyDone(1))
        pulse.say(said_during_reply)
        events += wait_for(
            audio, lambda e: isinstance(e, PlaybackMark) and isinstance(e.mark, ReplyDone), 20
        )
        pulse.say(said_after_reply + silence(SAMPLE_RATE))
        while pulse.saying:  # the feeder is still writing it into the pipe source
            events += wait_for(audio, is_mic, timeout_s=10)
        for _ in range(31):  # and 1 s more of microphone, for what is still on its way
            events += wait_for(audio, is_mic, timeout_s=10)
    finally:
        audio.close()
    marks = [e for e in events if isinstance(e, PlaybackMark)]
    assert [m.mark for m in marks] == [ReplyVoiced(1), ReplyDone(1)]
    started, done = (m.played_at_s for m in marks)
    assert done - started == pytest.approx(94 * BLOCK_SECONDS)

    # Every mic block arrives; those captured while the reply played say so.
    mic = [e for e in events if isinstance(e, MicBlock)]
    assert [e.captured_at_s for e in mic] == [i * BLOCK_SECONDS for i in range(len(mic))]
    assert [e.captured_at_s for e in mic if e.playing] == pytest.approx(
        [started + i * BLOCK_SECONDS for i in range(94)]
    )
    # Half duplex: what was said over the reply never reached the VAD; what was said after it
    # is a turn.
    (turn,) = turns(vad, events)
    assert turn.speech_start_s > done

    # The speaker got the reply bit-exact, with the dither before and after it. The pipe sink
    # hands audio on with some latency, more on a busy machine: wait for the reply and 4 blocks
    # after it.
    deadline = time.monotonic() + 20
    while True:
        played = pulse.heard()[heard_before:]
        at = played.find(reply)
        if at >= 0 and len(played) >= at + len(reply) + 4 * BLOCK_BYTES:
            break
        assert time.monotonic() < deadline, "the reply did not arrive bit-exact"
        time.sleep(0.05)
    assert at > 0
    dither = DuplexCore().dither
    for gap in (played[:at], played[at + len(reply) :]):
        samples = np.frombuffer(gap[: len(gap) // 2 * 2], "<i2")
        assert set(np.unique(samples)) <= {-1, 0, 1}
        assert samples.any()
        assert dither in gap
    assert healthy(audio)


def process_cpu_s() -> float:
    from adapters.cpu_watch import TICKS_PER_S, cpu_ticks

    return cpu_ticks(Path("/proc/self/stat").read_text()) / TICKS_PER_S


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("api", APIS)
def test_an_idle_stream_on_a_source_that_ran_for_a_while_costs_little_cpu(
    api: str, pulse: PulseServer
) -> None:
    """The idle spin of the issue: the pipe source has run since the module started, and a
    stream that starts stuck is restarted within a few seconds."""
    audio = server_audio(api)
    audio.open()
    try:
        for _ in range(5 * 31):  # 5 s of microphone to settle (and restart if stuck)
            wait_for(audio, is_mic, timeout_s=10)
        started, cpu = time.monotonic(), process_cpu_s()
        for _ in range(3 * 31):
            wait_for(audio, is_mic, timeout_s=10)
        share = (process_cpu_s() - cpu) / (time.monotonic() - started)
    finally:
        audio.close()
    # The spin costs most of a core, a healthy idle stream a few percent: half a core between
    # them leaves room for a loaded machine.
    assert share < 0.5, f"{100 * share:.0f} % of a core while idle"
    if isinstance(audio, SounddeviceAudio):
        assert audio.input_lag_s is not None and audio.input_lag_s < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_a_sound_server_that_dies_is_reported_reopened_when_back_and_failed_when_not(
    api: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the issue saw ("PaAlsaStream_WaitForFrames ... failed", then silence): the server
    under the stream goes away."""
    server = PulseServer(tmp_path)
    monkeypatch.setenv("PULSE_SERVER", server.server)
    server.start()
    reinitialize_portaudio()
    audio = server_audio(api)
    try:
        audio.open()
        wait_for(audio, is_mic, timeout_s=10)
        server.kill()
        time.sleep(1.0)
        server.start()  # back within the 3 s the adapter gives it
        blocks_before = audio.reopened
        wait_for(audio, lambda _: audio.reopened > blocks_before, timeout_s=10)
        after = wait_for(audio, is_mic, timeout_s=5)
        server.kill()  # and now for good
        failed = wait_for(audio, lambda e: isinstance(e, AudioFailed), timeout_s=10)[-1]
    finally:
        audio.close()
        server.stop()
        reinitialize_portaudio()
    assert isinstance(after[-1], MicBlock)
    assert isinstance(failed, AudioFailed)
    assert failed.reason.startswith("The sound device stopped working and could not be reopened")
    assert "\n" not in failed.reason
    lines = audio_log(caplog, audio)
    assert len(lines) == 3, lines
    assert lines[0].startswith("Sound device lost (")
    assert lines[1].startswith("Sound device reopened after ")
    assert lines[2].startswith("Sound device lost (")


# PulseAudio's client: what it says when the server or a device is not there.


def streams_on(server: PulseServer, kind: str) -> list[str]:
    """The server's streams of `kind` ("source-outputs": recording, "sink-inputs": playing)."""
    listed = subprocess.run(
        ["pactl", "list", "short", kind], env={**os.environ, "PULSE_SERVER": server.server},
        capture_output=True, text=True, check=True, timeout=10,
    )  # fmt: skip
    return listed.stdout.splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_speaking_without_listening_plays_the_reply_and_records_nothing(
    api: str, pulse: PulseServer
) -> None:
    """Typed turns spoken aloud: the reply reaches the speaker and its mark comes back, the
    server has no recording stream from the agent (no microphone in use), and silence stands in
    for the microphone, so the audio clock goes on."""
    reinitialize_portaudio()  # a test before may have left it a server that is gone
    audio = server_audio(api, capture=False)
    audio.open()
    try:
        heard_before = len(pulse.heard())
        for _ in range(4):
            audio.play(LOUD_BLOCK)
        audio.mark(ReplyDone(7))
        events = wait_for(audio, lambda e: isinstance(e, PlaybackMark), timeout_s=10)
        recording = streams_on(pulse, "source-outputs")
        playing = streams_on(pulse, "sink-inputs")
        deadline = time.monotonic() + 10
        while pulse.heard().find(LOUD_BLOCK, heard_before) < 0:
            assert time.monotonic() < deadline, "the reply never reached the speaker"
            time.sleep(0.01)
    finally:
        audio.close()
    assert recording == [] and len(playing) == 1
    mic = [e for e in events if isinstance(e, MicBlock)]
    assert mic and not any(block.pcm.strip(b"\0") for block in mic)


@pytest.mark.slow
def test_the_pulse_client_checks_the_server_and_devices_in_one_line(
    pulse: PulseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server_answers()
    PulseAudio().check()  # the defaults: the server's microphone and speaker
    PulseAudio("mic", "speaker").check()
    with pytest.raises(SetupError) as missing:
        PulseAudio("no-such-mic").check()
    assert str(missing.value) == (
        "The sound server has no input device named 'no-such-mic': `pactl list short "
        "sources` lists them (or --audio_api portaudio uses PortAudio instead)"
    )
    with pytest.raises(SetupError, match=r"no output device named 'hdmi'.*sinks"):
        PulseAudio(None, "hdmi").check()
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/native")
    assert not server_answers()
    with pytest.raises(SetupError) as refused:
        PulseAudio().check()
    assert str(refused.value) == (
        "No PulseAudio or PipeWire server answers: start one, or --audio_api portaudio uses "
        "PortAudio instead"
    )


LOUD_BLOCK = np.full(BLOCK_BYTES // 2, 20_000, "<i2").tobytes()


def is_loud(event: AudioEvent) -> bool:
    return isinstance(event, MicBlock) and int(np.frombuffer(event.pcm, "<i2").max()) > 10_000


@contextmanager
def five_quiet_moments() -> Iterator[tuple[PulseAudio, Iterator[int]]]:
    """The PulseAudio client after two seconds of ticks (the streams' steady state: the
    microphone's first blocks come in a burst), and five moments half a second apart."""

    def moments() -> Iterator[int]:
        for moment in range(5):
            for _ in range(16):
                wait_for(audio, is_mic, timeout_s=10)
            yield moment

    audio = PulseAudio()
    audio.open()
    try:
        for _ in range(62):
            wait_for(audio, is_mic, timeout_s=10)
        yield audio, moments()
    finally:
        audio.close()


@pytest.mark.slow
def test_the_pulse_client_reads_the_microphone_without_waiting_on_the_speaker(
    bare_pulse: PulseServer,
) -> None:
    """A click reaches the application within 40 ms of entering the microphone: the audio
    thread never first waits for room in the playback stream. The median of five clicks."""
    delays = []
    with five_quiet_moments() as (audio, moments):
        for _ in moments:
            bare_pulse.say(LOUD_BLOCK)
            wait_for(audio, is_loud, timeout_s=10)
            (said_at,) = bare_pulse.said_at()
            delays.append(time.monotonic() - said_at)
    assert statistics.median(delays) < 0.040


@pytest.mark.slow
def test_the_pulse_client_plays_a_reply_without_the_buffer_full_ahead(
    bare_pulse: PulseServer,
) -> None:
    """From `play` to the speaker: under 72 ms, the playback stream being held two blocks ahead
    while idle, not kept full. The median of five replies."""
    delays = []
    with five_quiet_moments() as (audio, moments):
        for _ in moments:
            heard_before = len(bare_pulse.heard())
            played_at = time.monotonic()
            for _ in range(4):
                audio.play(LOUD_BLOCK)
            deadline = played_at + 10
            while (at := bare_pulse.heard().find(LOUD_BLOCK, heard_before)) < 0:
                assert time.monotonic() < deadline, "the reply never reached the speaker"
                time.sleep(0.005)
            heard_at = bare_pulse.heard_at(at)
            assert heard_at is not None
            delays.append(heard_at - played_at)
    assert statistics.median(delays) < 0.072


@pytest.mark.slow
def test_the_pulse_client_closes_quickly_and_frees_its_streams(pulse: PulseServer) -> None:
    audio = PulseAudio()
    audio.open()
    wait_for(audio, is_mic, timeout_s=10)
    started = time.monotonic()
    audio.close()
    assert time.monotonic() - started < 0.6
    assert audio.failure is None
    while audio.next_event(timeout_s=0.1) is not None:  # what was queued before the close
        pass
    assert audio.next_event(timeout_s=0.3) is None  # nothing ticks any more


# PulseAudio's client on a fake libpulse: what only a misbehaving server shows.


class FakeStream:
    """A pasimple stream: reads return a block at once (or never, `stalled`), writes are kept."""

    def __init__(self, server: FakePulse, direction: int) -> None:
        self._server, self.direction = server, direction
        self.written: list[bytes] = []
        self.closed = False

    def read(self, size: int) -> bytes:
        if self._server.stalled.is_set():
            threading.Event().wait()  # a source that never delivers again
        time.sleep(0.001)
        return bytes(size)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_latency(self) -> int:  # microseconds
        return self._server.playback_latency_us

    def close(self) -> None:
        self.closed = True


class FakePulse:
    """The pasimple module, as `adapters.pulse_audio` uses it."""

    PA_STREAM_PLAYBACK, PA_STREAM_RECORD, PA_SAMPLE_S16LE = 1, 2, 3

    class PaSimpleError(Exception):
        pass

    def __init__(self) -> None:
        self.streams: list[FakeStream] = []
        self.playback_latency_us = 50_000  # between one and two blocks: within the hold
        self.stalled = threading.Event()
        self.refuse = False

    def PaSimple(self, direction: int, *_: object, **__: object) -> FakeStream:
        if self.refuse:
            raise self.PaSimpleError("Error while creating stream: 6")
        self.streams.append(FakeStream(self, direction))
        return self.streams[-1]


@pytest.fixture
def fake_pulse(monkeypatch: pytest.MonkeyPatch) -> FakePulse:
    fake = FakePulse()
    monkeypatch.setattr("adapters.pulse_audio._pasimple", lambda: fake)
    return fake


REPLY_BLOCK = (1000).to_bytes(2, "little", signed=True) * (BLOCK_BYTES // 2)


def played_through(fake_pulse: FakePulse, latency_us: int, reply_blocks: int) -> PulseAudio:
    """100 ticks at a constant playback latency, reply audio in the first ones."""
    fake_pulse.playback_latency_us = latency_us
    audio = PulseAudio()
    audio.open()
    try:
        for _ in range(reply_blocks):
            audio.play(REPLY_BLOCK)
        wait_for(audio, lambda _: audio.ticks >= 100, timeout_s=10)
    finally:
        audio.close()
    return audio


def written(fake_pulse: FakePulse) -> list[bytes]:
    (playback,) = (s for s in fake_pulse.streams if s.direction == FakePulse.PA_STREAM_PLAYBACK)
    return playback.written


def test_one_block_goes_out_per_tick_while_the_playback_latency_is_held(
    fake_pulse: FakePulse,
) -> None:
    audio = played_through(fake_pulse, 50_000, reply_blocks=40)
    assert written(fake_pulse)[:40] == [REPLY_BLOCK] * 40
    assert len(written(fake_pulse)) == audio.ticks
    assert audio.dropped_dither == 0


def test_a_speaker_behind_costs_dither_never_reply_audio(fake_pulse: FakePulse) -> None:
    # The speaker's clock is slower (or the ticks caught up with the microphone): the
    # playback latency stays above the hold.
    audio = played_through(fake_pulse, 120_000, reply_blocks=40)
    assert written(fake_pulse) == [REPLY_BLOCK] * 40  # every block of the reply, no dither
    assert audio.dropped_dither == audio.ticks - 40


def test_a_speaker_run_dry_is_refilled_with_dither(fake_pulse: FakePulse) -> None:
    audio = played_through(fake_pulse, 0, reply_blocks=10)  # 0: the stream ran dry
    dither = DuplexCore().dither
    assert written(fake_pulse) == [REPLY_BLOCK] * 10 + [dither] * 2 * (audio.ticks - 10)


def test_a_tick_that_finds_the_speaker_nearly_dry_holds_the_playback_a_block_longer(
    fake_pulse: FakePulse, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.pulse_audio")
    audio = PulseAudio()
    audio.open()
    try:
        wait_for(audio, lambda _: audio.ticks >= 10, timeout_s=10)  # held at 50 ms
        fake_pulse.playback_latency_us = 5_000  # a late tick: a sixth of a block left
        late_at = audio.ticks
        wait_for(audio, lambda _: audio.ticks >= late_at + 2, timeout_s=10)
        fake_pulse.playback_latency_us = 80_000  # over the first hold, under the second
        wait_for(audio, lambda _: audio.ticks >= late_at + 50, timeout_s=10)
        deadline = time.monotonic() + 5
        while not audio_log(caplog, audio) and time.monotonic() < deadline:
            time.sleep(0.01)  # the monitor logs it, within a tenth of a second
    finally:
        audio.close()
    assert audio.dropped_dither == 0
    assert audio_log(caplog, audio) == ["Playback now held 96 ms ahead"]


def test_a_stalled_server_is_reopened_and_failed_when_it_stays_away(
    fake_pulse: FakePulse, caplog: pytest.LogCaptureFixture
) -> None:
    audio = PulseAudio(stall_s=0.3, reopen_for_s=0.6)
    audio.open()
    try:
        wait_for(audio, is_mic, timeout_s=5)
        fake_pulse.stalled.set()  # reads block for good
        fake_pulse.refuse = True  # and the server takes no new stream
        failed = wait_for(audio, lambda e: isinstance(e, AudioFailed), timeout_s=5)[-1]
    finally:
        audio.close()
    assert isinstance(failed, AudioFailed)
    assert failed.reason == (
        "The sound device stopped working and could not be reopened: No PulseAudio or "
        "PipeWire server answers: start one, or --audio_api portaudio uses PortAudio instead"
    )
    assert audio_log(caplog, audio)[0].startswith("Sound device lost (no audio for 0.")


def test_a_server_that_stalls_again_after_each_reopening_is_audio_failed_at_the_third_loss(
    fake_pulse: FakePulse, caplog: pytest.LogCaptureFixture
) -> None:
    audio = PulseAudio(stall_s=0.3)
    audio.open()
    try:
        wait_for(audio, is_mic, timeout_s=5)
        fake_pulse.stalled.set()  # every stream, the reopened ones too, stops delivering
        failed = wait_for(audio, lambda e: isinstance(e, AudioFailed), timeout_s=10)[-1]
    finally:
        audio.close()
    assert isinstance(failed, AudioFailed)
    assert re.fullmatch(
        r"The sound device keeps failing \(no audio for 0\.\d s, 3 times in 30 s\): check it, "
        r"or pick another with --input_device/--output_device \(`pactl list short sources` and "
        r"`pactl list short sinks` list them\), or --audio_api portaudio uses PortAudio instead",
        failed.reason,
    ), failed.reason
    lines = audio_log(caplog, audio)
    assert len(lines) == 6, lines
    assert all(line.startswith("Sound device lost (no audio for 0.") for line in lines[0:4:2])
    assert all(line.startswith("Sound device reopened after") for line in lines[1:4:2])
    assert re.fullmatch(r"Sound device lost again \(no audio for 0\.\d s\), 3 times in 30 s: "
                        r"giving up", lines[4]), lines[4]  # fmt: skip
    # The last streams' thread is still stuck in a read: left to the system, not freed.
    assert lines[5] == "The sound device did not stop within 0.4 s: left to the system"
    assert audio.reopened == 2
    records = [s for s in fake_pulse.streams if s.direction == FakePulse.PA_STREAM_RECORD]
    assert len(records) == 3
    assert audio.next_event(timeout_s=0.3) is None  # failed once, and the monitor has ended
