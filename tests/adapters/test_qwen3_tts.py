"""Qwen3-TTS on mlx-audio. The conversion of the library's streamed results runs everywhere on
real mx arrays (mlx[cpu] on Linux); the model test needs mlx-audio and the cached model."""

from __future__ import annotations

import inspect
import os
import sys
import threading
from collections.abc import Generator
from types import SimpleNamespace

import numpy as np
import pytest

from adapters.errors import SetupError
from adapters.qwen3_tts import (
    DEFAULT_HEADROOM,
    DEFAULT_MODEL,
    Qwen3TextToSpeech,
    check_voice,
    qwen_language,
    stream_reply,
    to_float,
)
from domain.audio import SAMPLE_RATE
from tests.adapters.wer import word_error_rate

os.environ.setdefault("HF_HUB_OFFLINE", "1")

mx = pytest.importorskip("mlx.core")

SOURCE_RATE = 24_000  # Qwen3-TTS's codec rate
CHUNK = 7680  # 0.32 s at 24 kHz: 4 codec frames of 1920 samples, the adapter's streaming interval
SUPPORTED = ("auto", "chinese", "english", "french", "german")


def test_without_mlx_audio_construction_fails_with_one_actionable_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mlx_audio", None)  # what `import` sees when absent

    with pytest.raises(SetupError) as failure:
        Qwen3TextToSpeech()

    message = str(failure.value)
    assert "\n" not in message
    assert "pip install mlx-audio" in message
    assert "--tts piper" in message


@pytest.mark.parametrize(
    ("code", "expected"),
    [("fr", "french"), ("fr-FR", "french"), ("EN", "english"), (None, "auto"), ("auto", "auto"),
     ("it", "auto"), ("xx", "auto")],
)  # fmt: skip
def test_language_codes_become_the_model_s_language_names_or_auto(
    code: str | None, expected: str
) -> None:
    assert qwen_language(code, SUPPORTED) == expected


def test_a_base_model_takes_no_voice_and_a_custom_voice_model_a_known_one() -> None:
    check_voice(None, [], "base", DEFAULT_MODEL)
    check_voice("Ryan", ["ryan", "vivian"], "custom_voice", "cv")


@pytest.mark.parametrize(
    ("voice", "speakers", "model_type", "says"),
    [
        ("Ryan", [], "base", "no preset voices"),
        (None, ["ryan", "vivian"], "custom_voice", "choose one of ryan, vivian"),
        ("Bob", ["ryan", "vivian"], "custom_voice", "choose one of ryan, vivian"),
        (None, [], "voice_design", "use a Base or CustomVoice model"),
    ],
)
def test_voice_mistakes_are_refused_at_start_up_in_one_line(
    voice: str | None, speakers: list[str], model_type: str, says: str
) -> None:
    with pytest.raises(SetupError) as failure:
        check_voice(voice, speakers, model_type, "some/model")

    assert says in str(failure.value)
    assert "\n" not in str(failure.value)


def test_bfloat16_audio_of_any_shape_becomes_flat_float32() -> None:
    audio = mx.array([[0.5, -0.25, 1.0]]).astype(mx.bfloat16)

    samples = to_float(audio)

    assert samples.dtype == np.float32
    np.testing.assert_array_equal(samples, [0.5, -0.25, 1.0])


def _results(
    chunks: list[np.ndarray], lock: threading.Lock, asked: list[int]
) -> Generator[SimpleNamespace, None, None]:
    """Shaped like mlx-audio's streamed `GenerationResult`s (`.audio`: an mx.array, bfloat16 as
    the 6-bit model may give); records each step and whether it ran under the lock."""
    for index, chunk in enumerate(chunks):
        asked.append(index)
        assert lock.locked(), "the library stepped outside the MLX lock"
        yield SimpleNamespace(audio=mx.array(chunk).astype(mx.bfloat16), sample_rate=SOURCE_RATE)


def _tone(seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SOURCE_RATE)) / SOURCE_RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _samples(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), dtype="<i2")


def test_each_result_is_handed_on_before_the_library_is_asked_for_the_next() -> None:
    lock = threading.Lock()
    asked: list[int] = []
    tone = _tone(0.96)
    stream = stream_reply(
        _results(np.split(tone, 3), lock, asked), lock, SOURCE_RATE, DEFAULT_HEADROOM
    )

    first = next(stream)

    assert asked == [0]
    assert len(first) > 0
    assert not lock.locked(), "the MLX lock is held while the reply plays"
    rest = list(stream)
    assert asked == [0, 1, 2]
    # 24 kHz -> 16 kHz, nothing lost at the chunk joins or in the resampler's tail.
    assert _samples([first, *rest]).size == tone.size * SAMPLE_RATE // SOURCE_RATE


def test_output_keeps_the_voice_s_shape_at_the_headroom_level() -> None:
    lock = threading.Lock()
    tone = _tone(0.96, amplitude=0.5)

    samples = _samples(
        list(stream_reply(_results(np.split(tone, 3), lock, []), lock, SOURCE_RATE, 0.75))
    )

    peak = np.max(np.abs(samples.astype(np.int32)))
    assert peak == pytest.approx(0.5 * 0.75 * 32767, rel=0.02)
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float32)))
    assert np.argmax(spectrum) * SAMPLE_RATE / samples.size == pytest.approx(220, abs=2)


def test_full_scale_audio_never_reaches_the_int16_rails_yet_stays_loud() -> None:
    # The codec clamps at +-1: a clipped, square-ish wave is the worst case for resampler overshoot.
    lock = threading.Lock()
    square = np.sign(_tone(0.96)).astype(np.float32)

    samples = _samples(
        list(stream_reply(_results(np.split(square, 3), lock, []), lock, SOURCE_RATE, 0.75))
    )

    peak = int(np.max(np.abs(samples.astype(np.int32))))
    assert 0.7 * 32767 < peak < 32767


def test_an_abandoned_reply_closes_the_library_stream_and_frees_the_lock() -> None:
    lock = threading.Lock()
    asked: list[int] = []
    library = _results(np.split(_tone(0.96), 3), lock, asked)
    stream = stream_reply(library, lock, SOURCE_RATE, DEFAULT_HEADROOM)

    next(stream)
    stream.close()  # the user interrupted the reply

    assert asked == [0]
    assert inspect.getgeneratorstate(library) == inspect.GEN_CLOSED
    assert not lock.locked()


@pytest.mark.slow
def test_the_real_model_speaks_words_whisper_hears_back() -> None:
    pytest.importorskip("mlx_audio")
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(DEFAULT_MODEL, "config.json"), str):
        pytest.skip(f"{DEFAULT_MODEL} is not in the Hugging Face cache")
    from adapters.faster_whisper_stt import FasterWhisperSpeechToText

    tts = Qwen3TextToSpeech()
    tts.warm_up()
    text = "The weather is sunny today. Tomorrow it will rain."

    chunks = list(tts.synthesize(text, "en"))

    assert len(chunks) >= 2  # streamed, not one block at the end
    samples = _samples(chunks)
    assert int(np.max(np.abs(samples.astype(np.int32)))) < 32767
    heard = FasterWhisperSpeechToText().transcribe(b"".join(chunks)).text
    assert word_error_rate(text, heard) < 0.3
    assert list(tts.synthesize("   ", "en")) == []
