"""Parakeet TDT on parakeet-mlx. The pure parts run everywhere; the model tests need parakeet-mlx
(Apple Silicon, or mlx[cpu] on Linux) and skip without it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from adapters.errors import SetupError
from adapters.parakeet_stt import DEFAULT_MODEL, ParakeetSpeechToText, check_language, model_input
from domain.audio import SAMPLE_RATE
from domain.messages import FinalTranscript, PartialTranscript
from tests.adapters.speech_samples import BECKETT_TEXT, load_speech
from tests.adapters.wer import word_error_rate

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HOP = 160  # one mel frame of Parakeet's 10 ms stride at 16 kHz


def test_without_parakeet_mlx_construction_fails_with_one_actionable_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "parakeet_mlx", None)  # what `import` sees when absent

    with pytest.raises(SetupError) as failure:
        ParakeetSpeechToText()

    message = str(failure.value)
    assert "\n" not in message
    assert "pip install parakeet-mlx" in message
    assert "--stt faster-whisper" in message


@pytest.mark.parametrize("setting", ["en", "EN", "en-US", "en_GB"])
def test_english_settings_are_accepted_silently(setting: str) -> None:
    with capture_logs() as logs:
        check_language(setting, DEFAULT_MODEL)

    assert logs == []


def test_auto_means_english_and_says_so() -> None:
    with capture_logs() as logs:
        check_language("auto", DEFAULT_MODEL)

    assert [log["event"] for log in logs] == ["stt_language"]


def test_another_language_is_refused_in_one_line_naming_the_way_out() -> None:
    with pytest.raises(SetupError) as failure:
        check_language("fr", DEFAULT_MODEL)

    message = str(failure.value)
    assert "\n" not in message
    assert "English-only" in message
    assert "--language en" in message
    assert "--stt faster-whisper" in message


def test_speech_becomes_float32_at_16khz_sample_for_sample() -> None:
    pcm = load_speech("beckett")
    pcm_samples = np.frombuffer(pcm, dtype="<i2")

    samples = model_input(pcm, SAMPLE_RATE, HOP)

    assert samples is not None
    assert samples.dtype == np.float32
    assert samples.size == pcm_samples.size
    np.testing.assert_array_equal(samples * 32768.0, pcm_samples.astype(np.float32))
    assert float(np.max(np.abs(samples))) < 1.0


def test_a_model_at_another_rate_gets_resampled_speech_of_the_same_duration() -> None:
    pcm = load_speech("beckett")
    seconds = len(pcm) / 2 / SAMPLE_RATE

    samples = model_input(pcm, 8000, HOP)

    assert samples is not None
    assert samples.dtype == np.float32
    assert samples.size == pytest.approx(seconds * 8000, abs=2)


def test_near_silence_and_less_than_one_mel_frame_give_nothing_to_decode() -> None:
    hiss = (np.random.default_rng(0).normal(0, 50, SAMPLE_RATE)).astype("<i2").tobytes()
    blip = (np.full(HOP - 1, 8000)).astype("<i2").tobytes()

    assert model_input(b"", SAMPLE_RATE, HOP) is None
    assert model_input(hiss, SAMPLE_RATE, HOP) is None  # below -40 dBFS
    assert model_input(blip, SAMPLE_RATE, HOP) is None
    assert model_input(blip + blip, SAMPLE_RATE, HOP) is not None


def _tiny_random_tdt(directory: Path) -> Path:
    """A two-layer Parakeet TDT with random weights, in the on-disk form `from_pretrained` reads
    (config.json + model.safetensors): it exercises the real library calls, not the accuracy."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from parakeet_mlx.utils import from_config

    vocabulary = [*"abcdefghijklmnopqrstuvwxyz", "▁"]
    durations = [0, 1, 2, 3, 4]
    config = {
        "target": "nemo.collections.asr.models.rnnt_bpe_models.EncDecRNNTBPEModel",
        "model_defaults": {"tdt_durations": durations},
        "preprocessor": {
            "sample_rate": SAMPLE_RATE, "normalize": "per_feature", "window_size": 0.025,
            "window_stride": 0.01, "window": "hann", "features": 80, "n_fft": 512, "dither": 1e-5,
        },
        "encoder": {
            "feat_in": 80, "n_layers": 2, "d_model": 64, "n_heads": 4, "ff_expansion_factor": 2,
            "subsampling_factor": 8, "self_attention_model": "rel_pos",
            "subsampling": "dw_striding", "conv_kernel_size": 9, "subsampling_conv_channels": 32,
            "pos_emb_max_len": 5000,
        },
        "decoder": {
            "blank_as_pad": True, "vocab_size": len(vocabulary),
            "prednet": {"pred_hidden": 64, "pred_rnn_layers": 1},
        },
        "joint": {
            "num_classes": len(vocabulary), "vocabulary": vocabulary,
            "num_extra_outputs": len(durations),
            "jointnet": {
                "joint_hidden": 64, "activation": "relu", "encoder_hidden": 64, "pred_hidden": 64,
            },
        },
        "decoding": {"model_type": "tdt", "durations": durations, "greedy": {"max_symbols": 10}},
    }  # fmt: skip
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    mx.random.seed(0)
    weights = dict(tree_flatten(from_config(config).parameters()))
    mx.save_safetensors(str(directory / "model.safetensors"), weights)
    return directory


@pytest.mark.slow
def test_a_random_tdt_model_runs_through_the_real_library(tmp_path: Path) -> None:
    pytest.importorskip("parakeet_mlx")
    stt = ParakeetSpeechToText(str(_tiny_random_tdt(tmp_path)))
    stt.warm_up()
    speech = load_speech("beckett")

    final = stt.transcribe(speech)
    partial = stt.transcribe_partial(speech[: len(speech) // 2])

    assert isinstance(final, FinalTranscript) and final.language == "en"
    assert isinstance(partial, PartialTranscript)
    assert final.text  # random weights emit tokens; the text is noise
    assert stt.transcribe(bytes(SAMPLE_RATE * 2)) == FinalTranscript("", "en")


@pytest.mark.slow
def test_the_real_model_transcribes_real_speech() -> None:
    pytest.importorskip("parakeet_mlx")
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(DEFAULT_MODEL, "model.safetensors"), str):
        pytest.skip(f"{DEFAULT_MODEL} is not in the Hugging Face cache")
    stt = ParakeetSpeechToText()
    stt.warm_up()

    final = stt.transcribe(load_speech("beckett"))

    assert final.language == "en"
    assert word_error_rate(BECKETT_TEXT, final.text) < 0.1
