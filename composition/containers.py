"""dependency-injector containers: core (logging), adapters (one per deployment profile, all with
the same provider names), and the application, which receives the adapters as a
`DependenciesContainer` so tests can hand it fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dependency_injector import containers, providers

from application.conversation import Conversation
from application.settings import ConversationSettings
from composition import stages
from composition.config import known_secrets
from composition.logging_setup import configure_logging
from domain.barge_in import BargeInConfig
from domain.chat_window import DEFAULT_SYSTEM_PROMPT, ChatConfig
from domain.sentence_batching import BatchingConfig
from domain.turn_segmentation import VadConfig


def conversation_settings(config: Mapping[str, Any]) -> ConversationSettings:
    """The conversation's validated bundles. Built by the CLI before any model loads, so an
    impossible combination is refused at once (`composition.local`)."""
    return ConversationSettings(
        vad=VadConfig(
            thresh=config["thresh"],
            min_speech_ms=config["min_speech_ms"],
            min_silence_ms=config["min_silence_ms"],
            speech_pad_ms=config["speech_pad_ms"],
            max_speech_ms=config["max_speech_ms"],
            partial_interval_ms=(
                config["live_transcription_update_interval"] * 1000
                if config["enable_live_transcription"]
                else 0
            ),
        ),
        chat=ChatConfig(
            chat_size=config["chat_size"],
            init_chat_role=config["init_chat_role"],
            init_chat_prompt=config["init_chat_prompt"] or DEFAULT_SYSTEM_PROMPT,
            user_role=config["user_role"],
            compact_history=config["compact_history"],
        ),
        batching=BatchingConfig(
            sentences_per_batch=config["stream_batch_sentences"],
            early_first_fragment=config["early_first_fragment"],
        ),
        live_transcription=config["enable_live_transcription"],
        enable_lang_prompt=config["enable_lang_prompt"],
        prefetch_replies=config["prefetch_replies"],
        watchdog_s=config["watchdog_s"],
        barge_in=(
            BargeInConfig(
                min_interruption_ms=config["min_interruption_ms"],
                thresh=config["thresh"],
                preroll_ms=config["speech_pad_ms"],
            )
            if config["barge_in"]
            else None
        ),
    )


class Core(containers.DeclarativeContainer):
    config = providers.Configuration()
    logging = providers.Resource(
        configure_logging,
        level=config.log_level,
        log_format=config.log_format,
        secrets=providers.Callable(known_secrets, config),
    )


class Adapters(containers.DeclarativeContainer):
    """The stage adapters, each chosen by its flag. Heavy models are built on first use."""

    config = providers.Configuration()
    secrets = providers.Callable(known_secrets, config)
    # The defaults this profile supplies for flags the user did not set.
    preset: providers.Object[dict[str, Any]] = providers.Object({})

    clock = providers.Singleton(stages.clock)
    console = providers.Singleton(stages.console)
    metrics = providers.Singleton(stages.metrics, config.metrics_jsonl, secrets)
    audio = providers.Singleton(stages.audio, config)
    vad = providers.Singleton(stages.vad, config)
    stt = providers.Singleton(stages.speech_to_text, config)
    llm = providers.Resource(stages.language_model, config)
    tts = providers.Singleton(stages.text_to_speech, config)


class EmbeddedAdapters(Adapters):
    """Offline on a CPU: Silero, faster-whisper tiny.en, SmolLM2 on llama.cpp, Piper."""

    preset = providers.Object(
        {"device": "cpu", "stt": "faster-whisper", "llm_backend": "llama-cpp", "tts": "piper"}
    )


class ApiAdapters(Adapters):
    """Local ears and voice, the language model behind an OpenAI-compatible API."""

    preset = providers.Object(
        {"device": "cpu", "stt": "faster-whisper", "llm_backend": "responses-api",
         "tts": "piper", "model_name": "gpt-5.4-mini"}
    )  # fmt: skip


class MacAdapters(Adapters):
    """Apple Silicon: Parakeet TDT, MLX-LM and Qwen3-TTS on MLX."""

    preset = providers.Object(
        {"device": "mps", "stt": "parakeet-tdt", "llm_backend": "mlx-lm", "tts": "qwen3",
         "model_name": "mlx-community/Qwen3-4B-Instruct-2507-4bit",
         "tts_model_name": "mlx-community/Qwen3-TTS-12Hz-0.6B-Base-6bit"}
    )  # fmt: skip


class CudaAdapters(Adapters):
    """An NVIDIA GPU: faster-whisper and transformers on CUDA."""

    preset = providers.Object(
        {"device": "cuda", "stt": "faster-whisper", "llm_backend": "transformers",
         "tts": "piper", "model_name": "Qwen/Qwen3-4B-Instruct-2507"}
    )  # fmt: skip


PROFILES: Mapping[str, type[Adapters]] = {
    "embedded": EmbeddedAdapters,
    "api": ApiAdapters,
    "mac": MacAdapters,
    "cuda": CudaAdapters,
}


class Application(containers.DeclarativeContainer):
    config = providers.Configuration()
    adapters = providers.DependenciesContainer()

    settings = providers.Singleton(conversation_settings, config)
    conversation = providers.Singleton(
        Conversation,
        audio=adapters.audio,
        vad=adapters.vad,
        stt=adapters.stt,
        llm=adapters.llm,
        tts=adapters.tts,
        console=adapters.console,
        clock=adapters.clock,
        metrics=adapters.metrics,
        settings=settings,
    )


def profile_presets() -> dict[str, dict[str, Any]]:
    return {name: profile.preset() for name, profile in PROFILES.items()}


def build_agent(config: Mapping[str, Any], adapters: containers.Container) -> Application:
    """The application wired to a profile's adapters (or to fakes, in tests)."""
    return Application(config=config, adapters=adapters)
