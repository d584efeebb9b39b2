"""WAV replay: a file as the microphone in real time, another recording the speaker, with the
same gating as the sound device. Real files in tmp_path, real time (a second or so per test)."""

from __future__ import annotations

import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from adapters.duplex_core import make_dither
from adapters.errors import SetupError
from adapters.wav_replay import WavReplayAudio, read_wav
from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SECONDS,
    SAMPLE_RATE,
    AudioEvent,
    EndOfInput,
    MicBlock,
    PlaybackMark,
    ReplyDone,
    ReplyVoiced,
)
from tests.adapters.duplex_checks import wait_for


def write_wav(path: Path, pcm: bytes, rate: int = SAMPLE_RATE, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return path


def noise(n_samples: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return rng.integers(-3000, 3000, n_samples, dtype="<i2").tobytes()


def collect_until_end(audio: WavReplayAudio, timeout_s: float = 5.0) -> list[AudioEvent]:
    return wait_for(audio, lambda event: isinstance(event, EndOfInput), timeout_s)


def read_back(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
        return wav.readframes(wav.getnframes())


def test_the_input_is_the_microphone_in_real_time_then_ends_once(tmp_path: Path) -> None:
    pcm = noise(10 * 512 + 100, seed=1)  # not a whole number of blocks
    audio = WavReplayAudio(write_wav(tmp_path / "in.wav", pcm))
    started = time.monotonic()
    audio.open()
    try:
        events = collect_until_end(audio)
        took = time.monotonic() - started
        later = [audio.next_event(timeout_s=0.2) for _ in range(2)]
    finally:
        audio.close()
    mic = [e for e in events if isinstance(e, MicBlock)]
    assert [e.captured_at_s for e in mic] == [i * BLOCK_SECONDS for i in range(11)]
    assert b"".join(e.pcm for e in mic) == pcm + bytes(BLOCK_BYTES - 200)
    assert events[-1] == EndOfInput()
    assert later == [None, None]  # once, and no mic blocks after the end
    assert 10 * BLOCK_SECONDS <= took < 11 * BLOCK_SECONDS + 0.15  # paced, not read at once


def test_the_output_records_dither_and_the_reply_on_the_input_timeline(tmp_path: Path) -> None:
    reply = noise(20 * 512, seed=2)
    audio = WavReplayAudio(
        write_wav(tmp_path / "in.wav", noise(8 * 512, seed=3)), tmp_path / "out.wav"
    )
    audio.open()
    try:
        first = audio.next_event(timeout_s=1)
        audio.mark(ReplyVoiced(4))
        for i in range(0, len(reply), BLOCK_BYTES):
            audio.play(reply[i : i + BLOCK_BYTES])
        audio.mark(ReplyDone(4))
        events = [first, *collect_until_end(audio)]
        # The input ended mid-reply: the reply still plays to its end.
        done = audio.next_event(timeout_s=1.0)
        time.sleep(3 * BLOCK_SECONDS)
    finally:
        audio.close()
    voiced = next(e for e in events if isinstance(e, PlaybackMark))
    assert voiced.mark == ReplyVoiced(4)
    assert done == PlaybackMark(ReplyDone(4), voiced.played_at_s + 20 * BLOCK_SECONDS)
    mic = [e for e in events if isinstance(e, MicBlock)]
    assert [e.captured_at_s for e in mic] == [i * BLOCK_SECONDS for i in range(8)]
    # The input went on over the reply, marked as such.
    assert [e.playing for e in mic] == [e.captured_at_s >= voiced.played_at_s for e in mic]
    assert mic[-1].playing

    out = read_back(tmp_path / "out.wav")
    assert len(out) % BLOCK_BYTES == 0
    start = round(voiced.played_at_s / BLOCK_SECONDS) * BLOCK_BYTES
    assert out[start : start + len(reply)] == reply
    dither = make_dither()
    around = out[:start] + out[start + len(reply) :]
    assert around == dither * (len(around) // BLOCK_BYTES)
    assert len(around) >= 3 * BLOCK_BYTES


def replayed(path: Path) -> np.ndarray:
    audio = WavReplayAudio(path)
    audio.open()
    try:
        events = collect_until_end(audio)
    finally:
        audio.close()
    return np.frombuffer(b"".join(e.pcm for e in events if isinstance(e, MicBlock)), "<i2")


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(pcm))


def tone(hz: float, rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * hz * t)


def test_a_44_1_khz_stereo_wav_is_mixed_down_and_resampled(tmp_path: Path) -> None:
    left = (8000 * tone(440, 44_100, 0.5)).astype("<i2")
    right = (8000 * tone(440, 44_100, 0.5) * 0.5).astype("<i2")
    stereo = np.stack([left, right], axis=1).tobytes()
    pcm = replayed(write_wav(tmp_path / "in.wav", stereo, rate=44_100, channels=2))
    assert len(pcm) == 16 * 512  # 0.5 s at 16 kHz, padded to whole blocks
    assert dominant_hz(pcm[: SAMPLE_RATE // 2]) == pytest.approx(440, abs=2)
    middle = pcm[1000:7000]
    assert np.abs(middle).max() == pytest.approx(0.75 * 8000, rel=0.02)  # the channels' mean


def test_a_float32_wav_is_converted(tmp_path: Path) -> None:
    import soundfile

    path = tmp_path / "in.wav"
    samples = (0.5 * tone(1000, SAMPLE_RATE, 0.25)).astype(np.float32)
    soundfile.write(str(path), samples, SAMPLE_RATE, subtype="FLOAT")
    assert soundfile.info(str(path)).subtype == "FLOAT"
    pcm = replayed(path)
    expected = np.round(samples * 32768).astype("<i2")
    assert np.abs(pcm[: len(expected)].astype(int) - expected).max() <= 1
    assert not pcm[len(expected) :].any()


@pytest.mark.parametrize("width", [1, 3, 4])
def test_without_soundfile_the_stdlib_reads_integer_wavs_of_any_width(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setitem(sys.modules, "soundfile", None)  # import soundfile -> ImportError
    samples = 0.5 * tone(440, 22_050, 0.25)
    scaled = np.round(samples * (2 ** (8 * width - 1) - 1)).astype(np.int64)
    if width == 1:
        raw = (scaled + 128).astype(np.uint8).tobytes()
    else:
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in scaled)
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(22_050)
        wav.writeframes(raw)
    pcm = read_wav(path)
    got = np.frombuffer(pcm, "<i2")[: SAMPLE_RATE // 4]
    assert dominant_hz(got) == pytest.approx(440, abs=4)
    assert np.abs(got[500:3500]).max() == pytest.approx(16384, rel=0.03)


def test_a_16_bit_mono_16_khz_wav_passes_bit_exact(tmp_path: Path) -> None:
    pcm = noise(4 * 512, seed=5)
    assert read_wav(write_wav(tmp_path / "in.wav", pcm)) == pcm


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "Cannot read the input WAV"),
        (lambda p: (p.write_bytes(b"not a wav at all"), p)[1], "Cannot read the input WAV"),
        (lambda p: write_wav(p, b""), "holds no audio"),
    ],
)
def test_unusable_input_is_a_one_line_setup_error_from_check(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    audio = WavReplayAudio(make(tmp_path / "in.wav"))  # reads nothing yet
    with pytest.raises(SetupError, match=message) as error:
        audio.check()
    assert "\n" not in str(error.value)
    with pytest.raises(SetupError, match=message):
        audio.open()  # checks first when check() was not called


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("no/o.wav", "the folder .*no does not exist"),
        (".", "it is a directory"),
    ],
)
def test_an_unwritable_output_fails_the_check_before_anything_starts(
    tmp_path: Path, output: str, message: str
) -> None:
    audio = WavReplayAudio(write_wav(tmp_path / "in.wav", bytes(1024)), tmp_path / output)
    with pytest.raises(SetupError, match=f"Cannot write the output WAV .*: {message}"):
        audio.check()
    assert audio.next_event(timeout_s=0.1) is None  # nothing ticks


def test_check_starts_nothing_and_open_uses_what_it_read(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "in.wav", noise(2 * 512, seed=6))
    audio = WavReplayAudio(path, tmp_path / "out.wav")
    audio.check()
    assert audio.next_event(timeout_s=0.1) is None
    assert not (tmp_path / "out.wav").exists()
    path.unlink()  # read once, by the check
    audio.open()
    try:
        events = collect_until_end(audio)
    finally:
        audio.close()
    assert sum(isinstance(e, MicBlock) for e in events) == 2


def test_a_simulated_room_feeds_the_reply_back_into_the_microphone(tmp_path: Path) -> None:
    from adapters.simulated_room import RoomSpec, SimulatedRoom

    quiet = write_wav(tmp_path / "in.wav", bytes(BLOCK_BYTES * 20))
    room = SimulatedRoom(RoomSpec(delay_ms=0, noise_dbfs=-120, reverb_db=-40, gain=0.5))
    audio = WavReplayAudio(quiet, room=room)
    audio.play((1000).to_bytes(2, "little", signed=True) * (BLOCK_BYTES // 2))  # the first tick's
    audio.open()
    try:
        events = collect_until_end(audio)
    finally:
        audio.close()
    mics = [e for e in events if isinstance(e, MicBlock)]
    levels = [int(np.abs(np.frombuffer(m.pcm, "<i2")).max()) for m in mics]
    # Played in the first tick, heard at half its level in the second, then its faint tail.
    assert mics[0].playing and levels[0] == 0
    assert 450 <= levels[1] <= 550
    assert max(levels[2:8]) < 50
    assert max(levels[10:]) <= 1  # past the 200 ms tail the dither's echo rounds away
