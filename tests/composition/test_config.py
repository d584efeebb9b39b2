"""Flags, environment and presets resolve with the documented precedence."""

import math

import pytest

from adapters.faster_whisper_stt import SHORT_WINDOW_MAX_S
from composition.config import redacted, resolve, validate
from composition.containers import conversation_settings
from composition.settings import SETTINGS, ConfigError
from domain.end_of_turn import TranscriptTurnConfig


def config(*argv: str, **environ: str) -> dict[str, object]:
    return resolve(list(argv), environ=environ)


def test_the_embedded_profile_is_the_offline_default() -> None:
    values = config()
    assert (values["profile"], values["stt"], values["llm_backend"], values["tts"]) == (
        "embedded", "faster-whisper", "llama-cpp", "piper"
    )  # fmt: skip
    assert values["stt_device"] == values["llm_device"] == values["tts_device"] == "cpu"
    assert values["model_name"] is None  # the catalogue's default, Qwen2.5-Coder-0.5B


def test_upstream_defaults_are_kept_where_the_spec_does_not_change_them() -> None:
    values = config()
    assert values["chat_size"] == 30 and values["stream_batch_sentences"] == 3
    assert values["init_chat_role"] == "system" and values["user_role"] == "user"
    assert values["thresh"] == 0.6 and values["min_speech_ms"] == 384
    assert values["speech_pad_ms"] == 500
    assert values["compact_history"] is True and values["enable_lang_prompt"] is False
    assert values["responses_api_stream"] is True
    assert values["responses_api_disable_thinking"] is True
    assert values["llm_gen"] == {"max_new_tokens": 160, "min_new_tokens": 0,
                                 "temperature": 0.0, "do_sample": False}  # fmt: skip


def test_a_long_turn_is_cut_in_parts_that_fit_the_recogniser_unless_told_otherwise() -> None:
    vad = conversation_settings(config()).vad
    assert vad.max_speech_ms == 20_000
    assert vad.max_speech_ms / 1000 <= SHORT_WINDOW_MAX_S  # faster-whisper's fast path
    assert math.isinf(conversation_settings(config("--max_speech_ms", "inf")).vad.max_speech_ms)


def test_flag_beats_environment_beats_default() -> None:
    assert config(VOICE_AGENT_CHAT_SIZE="7")["chat_size"] == 7
    assert config("--chat_size", "3", VOICE_AGENT_CHAT_SIZE="7")["chat_size"] == 3
    assert config(VOICE_AGENT_COMPACT_HISTORY="false")["compact_history"] is False


def test_the_mac_preset_supplies_defaults_but_explicit_flags_win() -> None:
    values = config("--local_mac_optimal_settings", "--model_name", "my/model", "--stt",
                    "faster-whisper")  # fmt: skip
    assert values["profile"] == "mac"
    assert values["llm_backend"] == "mlx-lm" and values["tts"] == "qwen3"
    assert values["stt"] == "faster-whisper"  # upstream overwrote this
    assert values["model_name"] == "my/model"  # upstream dropped this
    assert values["llm_device"] == "mps"


def test_device_routes_every_stage_and_per_stage_flags_override_it() -> None:
    values = config("--device", "cuda", "--tts_device", "cpu")
    assert (values["stt_device"], values["llm_device"], values["tts_device"]) == (
        "cuda", "cuda", "cpu"
    )  # fmt: skip


def test_api_backends_default_to_the_seeds_model() -> None:
    assert config("--profile", "api")["model_name"] == "gpt-5.4-mini"
    assert config("--llm_backend", "chat-completions")["model_name"] == "gpt-5.4-mini"
    assert config("--llm_backend", "chat-completions", "--model_name", "x")["model_name"] == "x"


def test_generation_overrides_pass_through_typed() -> None:
    values = config("--llm_gen_top_p", "0.9", "--stt_gen_beam_size=5", "--llm_gen_temperature",
                    "0.7")  # fmt: skip
    assert values["llm_gen"]["top_p"] == 0.9 and values["llm_gen"]["temperature"] == 0.7  # type: ignore[index]
    assert values["stt_gen"] == {"beam_size": 5}


def test_booleans_read_like_upstreams() -> None:
    assert config("--enable_live_transcription", "False")["enable_live_transcription"] is False
    assert config("--enable_lang_prompt")["enable_lang_prompt"] is True


def test_bad_values_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="VOICE_AGENT_CHAT_SIZE"):
        config(VOICE_AGENT_CHAT_SIZE="many")
    with pytest.raises(ConfigError, match="unrecognised argument"):
        config("--no_such_flag", "1")
    with pytest.raises(ConfigError, match="input_wav"):
        validate(config("--output_wav", "x.wav"))
    with pytest.raises(ConfigError, match="audio_latency"):
        validate(config("--audio_latency", "soon"))
    validate(config("--audio_latency", "0.05"))


def test_keys_are_redacted() -> None:
    values = config("--responses_api_api_key", "sk-very-secret")
    assert "sk-very-secret" not in str(redacted(values))


def test_every_flag_of_the_seeds_exists() -> None:
    names = {setting.name for setting in SETTINGS}
    seeds = {
        "model_name", "chat_size", "init_chat_role", "init_chat_prompt", "user_role",
        "enable_lang_prompt", "stream_batch_sentences", "compact_history", "llm_backend",
        "llm_device", "llm_torch_dtype", "llm_gen_max_new_tokens", "llm_gen_min_new_tokens",
        "llm_gen_temperature", "llm_gen_do_sample", "llm_is_vlm", "responses_api_api_key",
        "responses_api_base_url", "responses_api_stream", "responses_api_disable_thinking",
        "responses_api_reasoning_effort", "local_mac_optimal_settings", "device", "stt", "tts",
        "language", "enable_live_transcription", "mode", "thresh", "min_speech_ms",
        "speech_pad_ms", "max_speech_ms", "min_silence_ms", "input_device", "output_device",
        "list_devices", "stt_model_name", "stt_device", "stt_torch_dtype",
    }  # fmt: skip
    assert seeds <= names


def test_the_transcript_judges_the_end_of_a_turn_unless_another_judge_is_chosen() -> None:
    vad = conversation_settings(config()).vad
    assert config()["turn_detection"] == "transcript" and vad.model_turn is None
    assert vad.transcript_turn == TranscriptTurnConfig()  # the domain's measured defaults
    chosen = config("--turn_detection", "transcript+smart-turn", "--question_silence_ms", "250")
    judged = conversation_settings(chosen).vad.transcript_turn
    assert judged is not None and judged.ask_audio and judged.question_ms == 250
    silence = conversation_settings(config("--turn_detection", "silence")).vad
    assert silence.transcript_turn is None and silence.model_turn is None


def test_silences_that_would_end_trailing_words_first_are_refused() -> None:
    with pytest.raises(ConfigError, match="incomplete_silence_ms"):
        validate(config("--incomplete_silence_ms", "400"))


def test_smart_turn_alone_judges_from_the_audio() -> None:
    assert conversation_settings(config()).vad.model_turn is None
    chosen = config("--turn_detection", "smart-turn", "--smart_turn_max_silence_ms", "1500")
    model_turn = conversation_settings(chosen).vad.model_turn
    assert model_turn is not None
    assert (model_turn.first_ask_ms, model_turn.max_silence_ms) == (200, 1500)
    # The speculative transcript starts no later than the model's first question.
    assert conversation_settings(chosen).vad.pause_ms <= model_turn.first_ask_ms


def test_smart_turn_timings_that_would_never_ask_the_model_are_refused() -> None:
    with pytest.raises(ConfigError, match="smart_turn_max_silence_ms"):
        validate(config("--smart_turn_pause_ms", "400", "--smart_turn_max_silence_ms", "300"))
    with pytest.raises(ConfigError, match="smart_turn_pause_ms"):
        validate(config("--smart_turn_pause_ms", "0"))
