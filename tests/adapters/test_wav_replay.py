"""WAV replay: a file as the microphone in real time, another recording the speaker, with the
same gating as the sound device. Real files in tmp_path, real time (a second or so per test)."""

from __future__ import annotations

import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from adapters.duplex_core import make_dither
from adapters.errors import SetupError
from adapters.wav_replay import WavReplayAudio
from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SECONDS,
    RESPONSE_DONE_MARK,
    SAMPLE_RATE,
    VOICED_MARK,
    AudioEvent,
    EndOfInput,
    MicBlock,
    PlaybackMark,
)


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
    events: list[AudioEvent] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        event = audio.next_event(timeout_s=0.1)
        if event is not None:
            events.append(event)
        if isinstance(event, EndOfInput):
            return events
    raise AssertionError("no EndOfInput")


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
        audio.mark(4, VOICED_MARK)
        for i in range(0, len(reply), BLOCK_BYTES):
            audio.play(reply[i : i + BLOCK_BYTES])
        audio.mark(4, RESPONSE_DONE_MARK)
        events = [first, *collect_until_end(audio)]
        # The input ended mid-reply: the reply still plays to its end.
        done = audio.next_event(timeout_s=1.0)
        time.sleep(3 * BLOCK_SECONDS)
    finally:
        audio.close()
    voiced = next(e for e in events if isinstance(e, PlaybackMark))
    assert voiced.label == VOICED_MARK
    assert done == PlaybackMark(4, RESPONSE_DONE_MARK, voiced.played_at_s + 20 * BLOCK_SECONDS)
    mic_times = [e.captured_at_s for e in events if isinstance(e, MicBlock)]
    assert mic_times == [i * BLOCK_SECONDS for i in range(len(mic_times))]
    assert mic_times[-1] < voiced.played_at_s  # the rest of the input was heard over the reply

    out = read_back(tmp_path / "out.wav")
    assert len(out) % BLOCK_BYTES == 0
    start = round(voiced.played_at_s / BLOCK_SECONDS) * BLOCK_BYTES
    assert out[start : start + len(reply)] == reply
    dither = make_dither()
    around = out[:start] + out[start + len(reply) :]
    assert around == dither * (len(around) // BLOCK_BYTES)
    assert len(around) >= 3 * BLOCK_BYTES


def test_another_sample_rate_is_resampled(tmp_path: Path) -> None:
    t = np.arange(44_100 // 2) / 44_100
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    audio = WavReplayAudio(write_wav(tmp_path / "in.wav", tone, rate=44_100))
    audio.open()
    try:
        events = collect_until_end(audio)
    finally:
        audio.close()
    pcm = np.frombuffer(b"".join(e.pcm for e in events if isinstance(e, MicBlock)), "<i2")
    assert len(pcm) == 16 * 512  # 0.5 s at 16 kHz, padded to whole blocks
    spectrum = np.abs(np.fft.rfft(pcm[: SAMPLE_RATE // 2].astype(np.float64)))
    assert np.argmax(spectrum) * SAMPLE_RATE / (SAMPLE_RATE // 2) == pytest.approx(440, abs=2)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: write_wav(p, bytes(4 * 1000), channels=2), r"has 2 channel\(s\) of 16-bit"),
        (lambda p: p, "Cannot read the input WAV"),
        (lambda p: (p.write_bytes(b"not a wav at all"), p)[1], "Cannot read the input WAV"),
        (lambda p: write_wav(p, b""), "holds no audio"),
    ],
)
def test_unusable_input_is_a_one_line_setup_error(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    with pytest.raises(SetupError, match=message) as error:
        WavReplayAudio(make(tmp_path / "in.wav"))
    assert "\n" not in str(error.value)


def test_an_unwritable_output_is_a_setup_error(tmp_path: Path) -> None:
    audio = WavReplayAudio(write_wav(tmp_path / "in.wav", bytes(1024)), tmp_path / "no" / "o.wav")
    with pytest.raises(SetupError, match="Cannot write the output WAV"):
        audio.open()
