"""How each stage's adapter is built from the resolved configuration. Importing adapter modules
is cheap (they load their libraries lazily); models load when these functions run."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from adapters.errors import SetupError
from adapters.metrics_sinks import FanOut, JsonlMetrics, TurnLog
from adapters.system_clock import MonotonicClock
from adapters.terminal_console import TerminalConsole
from composition.logging_setup import SecretRedactor
from ports import (
    AudioDuplex,
    EchoCanceller,
    LanguageModel,
    MetricsSink,
    SpeechToText,
    TextToSpeech,
    VoiceActivity,
)

if TYPE_CHECKING:
    from adapters.model_catalogue import CatalogueModel, GenerationSettings

Config = Mapping[str, Any]


def clock() -> MonotonicClock:
    return MonotonicClock()


def console() -> TerminalConsole:
    return TerminalConsole()


def metrics(jsonl_path: str | None, secrets: list[str]) -> MetricsSink:
    sinks: list[MetricsSink] = [TurnLog()]  # the log redacts secrets itself
    if jsonl_path:
        sinks.append(JsonlMetrics(jsonl_path, scrub=SecretRedactor(secrets).scrub))
    return FanOut(sinks)


def audio(config: Config) -> AudioDuplex:
    if config["input_wav"]:
        from adapters.simulated_room import SimulatedRoom
        from adapters.wav_replay import WavReplayAudio

        output = config["output_wav"]
        # Without the simulated room the replay has no echo: nothing to cancel.
        echo = config["simulated_echo"]
        return WavReplayAudio(
            Path(config["input_wav"]),
            Path(output) if output else None,
            room=SimulatedRoom() if echo else None,
            echo_canceller=echo_canceller() if echo and config["aec"] else None,
        )
    from adapters.sounddevice_audio import SounddeviceAudio

    latency = config["audio_latency"]
    latency = latency if latency in ("low", "high") else float(latency)
    return SounddeviceAudio(
        config["input_device"],
        config["output_device"],
        latency,
        echo_canceller=echo_canceller() if config["aec"] else None,
    )


def echo_canceller() -> EchoCanceller:
    from adapters.webrtc_echo import WebrtcEchoCanceller

    return WebrtcEchoCanceller()


def vad(config: Config) -> VoiceActivity:
    from adapters.silero_vad import SileroVad

    return SileroVad()


def speech_to_text(config: Config) -> SpeechToText:
    engine = config["stt"]
    if engine == "faster-whisper":
        from adapters.faster_whisper_stt import FasterWhisperSpeechToText

        return FasterWhisperSpeechToText(
            config["faster_whisper_stt_model_name"],
            device=config["stt_device"] or "cpu",
            language=config["language"],
            allowed_languages=_codes(config["languages"]),
            **_known(config["stt_gen"], "beam_size"),
        )
    if engine == "whisper":
        from adapters.transformers_whisper_stt import DEFAULT_MODEL as WHISPER
        from adapters.transformers_whisper_stt import TransformersWhisperSpeechToText

        return TransformersWhisperSpeechToText(
            config["stt_model_name"] or WHISPER,
            device=config["stt_device"] or "cpu",
            torch_dtype=config["stt_torch_dtype"] or "float32",
            gen_kwargs=config["stt_gen"],
            language=config["language"],
            allowed_languages=_codes(config["languages"]),
        )
    if engine == "parakeet-tdt":
        from adapters.parakeet_stt import DEFAULT_MODEL as PARAKEET
        from adapters.parakeet_stt import ParakeetSpeechToText

        return ParakeetSpeechToText(
            config["stt_model_name"] or PARAKEET, language=config["language"]
        )
    raise SetupError(f"--stt {engine} is not available in this build")


def language_model(config: Config) -> Iterator[LanguageModel]:
    """A Resource: a local server (llama-cpp) lives exactly as long as the agent."""
    backend = config["llm_backend"]
    if backend == "llama-cpp":
        yield from _llama_cpp(config)
    elif backend in ("responses-api", "chat-completions"):
        yield _api_model(config)
    elif backend == "transformers":
        yield _transformers_model(config)
    else:
        yield _mlx_model(config)


def _transformers_model(config: Config) -> LanguageModel:
    from adapters.model_catalogue import catalogue_model
    from adapters.model_files import model_path
    from adapters.transformers_llm import TransformersLanguageModel

    device = config["llm_device"] or "cpu"
    # Half precision is what GPUs are fast at; on a CPU bfloat16 keeps float32's range.
    dtype = config["llm_torch_dtype"] or ("bfloat16" if device == "cpu" else "float16")
    name = config["model_name"]
    if not name or catalogue_model(name) is not None:
        name = str(model_path(name).path)  # transformers converts the GGUF once
    return TransformersLanguageModel(
        model_name=name,
        device=device,
        torch_dtype=dtype,
        gen_kwargs=config["llm_gen"],
        is_vlm=config["llm_is_vlm"],
        threads=config["llm_threads"],
    )


def _mlx_model(config: Config) -> LanguageModel:
    from adapters.mlx_llm import MlxLanguageModel

    if not config["model_name"]:
        raise SetupError(
            "--llm_backend mlx-lm needs --model_name: a Hub id or a local MLX/transformers "
            "directory (mlx-lm cannot read GGUF)"
        )
    return MlxLanguageModel(model_name=config["model_name"], gen_kwargs=config["llm_gen"])


def _llama_cpp(config: Config) -> Iterator[LanguageModel]:
    from adapters.llama_server import LlamaServer
    from adapters.model_files import model_path
    from adapters.openai_chat_completions import ChatCompletionsLanguageModel

    model = model_path(config["model_name"])
    settings = generation_settings(config, model.entry)
    with LlamaServer(
        model.path, threads=config["llm_threads"], batch_threads=os.cpu_count()
    ) as server:
        yield ChatCompletionsLanguageModel(
            model=model.name,
            api_key=server.api_key,
            base_url=server.base_url,
            max_output_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            repeat_penalty=settings.repeat_penalty,
            timeout_s=config["llm_timeout_s"],
        )


def generation_settings(config: Config, entry: CatalogueModel | None) -> GenerationSettings:
    """What a llama.cpp model is run with: the catalogue entry's settings for speech (greedy,
    with its authors' repetition penalty), under any `--llm_gen_*` flag the user set. With
    `--llm_gen_do_sample` the authors' sampling settings replace greedy decoding."""
    from adapters.model_catalogue import GenerationSettings

    gen = config["llm_gen"]
    explicit = {name.removeprefix("llm_gen_") for name in config.get("explicit", ())}
    explicit &= set(gen)
    sampling = bool(gen.get("do_sample"))
    if entry is None:
        # Greedy unless sampling was asked for, like the other local backends.
        temperature = gen.get("temperature", 0.0) if sampling else 0.0
        base = GenerationSettings(max_new_tokens=gen["max_new_tokens"], temperature=temperature)
    else:
        base = entry.authors_sampling if sampling else entry.generation
    if not sampling:
        base = attrs.evolve(base, temperature=0.0)
    chosen = {
        "max_new_tokens": gen.get("max_new_tokens") if "max_new_tokens" in explicit else None,
        "temperature": gen.get("temperature") if sampling and "temperature" in explicit else None,
        "top_p": gen.get("top_p"),
        "top_k": gen.get("top_k"),
        "repeat_penalty": gen.get("repeat_penalty", gen.get("repetition_penalty")),
    }
    return attrs.evolve(
        base, **{name: value for name, value in chosen.items() if value is not None}
    )


def _api_model(config: Config) -> LanguageModel:
    from adapters.openai_chat_completions import ChatCompletionsLanguageModel
    from adapters.openai_responses import ResponsesLanguageModel

    cls = (
        ResponsesLanguageModel
        if config["llm_backend"] == "responses-api"
        else ChatCompletionsLanguageModel
    )
    return cls(
        model=config["model_name"],
        api_key=config["responses_api_api_key"],
        base_url=config["responses_api_base_url"],
        stream=config["responses_api_stream"],
        disable_thinking=config["responses_api_disable_thinking"],
        reasoning_effort=config["responses_api_reasoning_effort"],
        max_output_tokens=config["llm_gen"].get("max_new_tokens"),
        timeout_s=config["llm_timeout_s"],
    )


def text_to_speech(config: Config) -> TextToSpeech:
    engine = config["tts"]
    if engine == "piper":
        from adapters.piper_tts import PiperTextToSpeech

        return PiperTextToSpeech(config["piper_voice"], device=config["tts_device"] or "cpu")
    from adapters.qwen3_tts import DEFAULT_MODEL, Qwen3TextToSpeech

    return Qwen3TextToSpeech(config["tts_model_name"] or DEFAULT_MODEL)


def _known(params: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: params[name] for name in names if name in params}


def _codes(csv: str) -> list[str]:
    return [code.strip() for code in csv.split(",") if code.strip()]
