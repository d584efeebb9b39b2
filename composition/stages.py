"""How each adapter the agent can run is built from the resolved configuration, by the name
its flag gives it (`composition.backends` declares the names and what each honours); the
adapters container's selectors come from these tables.

Builders are generators, run as dependency-injector `Resource`s: whatever they open (a model, a
server, a device) lives until the container shuts them down. Importing this module is cheap:
adapter modules are imported inside the builders, and load their libraries lazily.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from adapters.errors import SetupError
from adapters.system_clock import MonotonicClock
from adapters.terminal_console import TerminalConsole
from composition.backends import explicit_gen
from composition.settings import first_request
from ports import (
    AudioDuplex,
    EchoCanceller,
    EndOfTurn,
    LanguageModel,
    MetricsSink,
    SpeechToText,
    TextToSpeech,
    VoiceActivity,
)

if TYPE_CHECKING:
    from adapters.model_catalogue import CatalogueModel, GenerationSettings

Config = Mapping[str, Any]
# A stage's builder: a generator run as a dependency-injector Resource.
Builder = Callable[[Config], Iterator[Any]]
# How long the other programs' load is measured at start.
LOAD_MEASURE_S = 0.5


class WarmsUp(Protocol):
    def warm_up(self) -> None: ...


def warmed(
    build: Callable[[Config], Iterator[WarmsUp]], config: Config
) -> Generator[WarmsUp, None, None]:
    """A stage's Resource: built, warmed up before the microphone opens, closed on shutdown."""
    with contextmanager(build)(config) as adapter:
        adapter.warm_up()
        yield adapter


def clock() -> MonotonicClock:
    return MonotonicClock()


def console(text: bool) -> TerminalConsole:
    """Typed (`--text`), each reply is one line, as in a chat."""
    return TerminalConsole(joined=text)


def metrics(jsonl_path: str | None, secrets: list[str]) -> MetricsSink:
    from adapters.metrics_sinks import FanOut, JsonlMetrics, TurnLog
    from composition.logging_setup import SecretRedactor

    sinks: list[MetricsSink] = [TurnLog()]  # the log redacts secrets itself
    if jsonl_path:
        sinks.append(JsonlMetrics(jsonl_path, scrub=SecretRedactor(secrets).scrub))
    return FanOut(sinks)


# -- audio ------------------------------------------------------------------------------------


def audio_source(config: Config) -> str:
    if config["text"] and not config["speak"]:
        return "none"
    if config["input_wav"]:
        return "wav"
    api = config["audio_api"]
    if api == "auto":
        from adapters.pulse_audio import server_answers

        named = config["input_device"] is not None or config["output_device"] is not None
        api = "portaudio" if named or not server_answers() else "pulse"
    return "device" if api == "portaudio" else "pulse"


def no_sound(config: Config) -> Iterator[AudioDuplex]:
    from adapters.no_sound import NoSound

    yield NoSound()


def _opened_audio(audio: AudioDuplex) -> Iterator[AudioDuplex]:
    """Checked before any model loads (a wrong device or file fails at once); closed last."""
    audio.check()
    try:
        yield audio
    finally:
        audio.close()


def wav_audio(config: Config) -> Iterator[AudioDuplex]:
    from adapters.simulated_room import SimulatedRoom
    from adapters.wav_replay import WavReplayAudio

    output = config["output_wav"]
    # Without the simulated room the replay has no echo: nothing to cancel.
    echo = config["simulated_echo"]
    yield from _opened_audio(
        WavReplayAudio(
            Path(config["input_wav"]),
            Path(output) if output else None,
            room=SimulatedRoom() if echo else None,
            echo_canceller=echo_canceller() if echo and config["aec"] else None,
        )
    )


def device_audio(config: Config) -> Iterator[AudioDuplex]:
    from adapters.sounddevice_audio import SounddeviceAudio

    latency = config["audio_latency"]
    latency = latency if latency in ("low", "high") else float(latency)
    yield from _opened_audio(
        SounddeviceAudio(
            config["input_device"],
            config["output_device"],
            latency,
            echo_canceller=echo_canceller() if config["aec"] else None,
        )
    )


def pulse_audio(config: Config) -> Iterator[AudioDuplex]:
    from adapters.pulse_audio import PulseAudio

    yield from _opened_audio(
        PulseAudio(
            config["input_device"],
            config["output_device"],
            echo_canceller=echo_canceller() if config["aec"] else None,
        )
    )


def echo_canceller() -> EchoCanceller:
    from adapters.webrtc_echo import WebrtcEchoCanceller

    return WebrtcEchoCanceller()


AUDIO_BUILDERS: Mapping[str, Builder] = {
    "none": no_sound,
    "wav": wav_audio,
    "device": device_audio,
    "pulse": pulse_audio,
}


# -- voice activity ---------------------------------------------------------------------------


def silero_vad(config: Config) -> Iterator[VoiceActivity]:
    from adapters.silero_vad import SileroVad

    yield SileroVad()


VAD_BUILDERS: Mapping[str, Builder] = {"silero": silero_vad}


# -- end of turn (with --turn_detection silence or transcript there is no model) ----------------


def smart_turn(config: Config) -> Iterator[EndOfTurn]:
    from adapters.smart_turn import SmartTurn

    yield SmartTurn()


END_OF_TURN_BUILDERS: Mapping[str, Builder] = {
    "smart-turn": smart_turn,
    "transcript+smart-turn": smart_turn,
}


# -- speech to text ---------------------------------------------------------------------------


def faster_whisper(config: Config) -> Iterator[SpeechToText]:
    from adapters.faster_whisper_stt import FasterWhisperSpeechToText

    yield FasterWhisperSpeechToText(
        config["faster_whisper_stt_model_name"],
        device=config["stt_device"] or "cpu",
        cpu_threads=free_cores(os.cpu_count() or 1),
        language=config["language"],
        allowed_languages=_codes(config["languages"]),
        **config["stt_gen"],
    )


def transformers_whisper(config: Config) -> Iterator[SpeechToText]:
    from adapters.transformers_whisper_stt import DEFAULT_MODEL as WHISPER
    from adapters.transformers_whisper_stt import TransformersWhisperSpeechToText

    yield TransformersWhisperSpeechToText(
        config["stt_model_name"] or WHISPER,
        device=config["stt_device"] or "cpu",
        torch_dtype=config["stt_torch_dtype"] or "float32",
        gen_kwargs=config["stt_gen"],
        language=config["language"],
        allowed_languages=_codes(config["languages"]),
    )


def parakeet(config: Config) -> Iterator[SpeechToText]:
    from adapters.parakeet_stt import DEFAULT_MODEL as PARAKEET
    from adapters.parakeet_stt import ParakeetSpeechToText

    yield ParakeetSpeechToText(config["stt_model_name"] or PARAKEET, language=config["language"])


# -- language model ---------------------------------------------------------------------------


def transformers_llm(config: Config) -> Iterator[LanguageModel]:
    from adapters.model_catalogue import catalogue_model
    from adapters.model_files import model_path
    from adapters.transformers_llm import TransformersLanguageModel

    device = config["llm_device"] or "cpu"
    # Half precision is what GPUs are fast at; on a CPU bfloat16 keeps float32's range.
    dtype = config["llm_torch_dtype"] or ("bfloat16" if device == "cpu" else "float16")
    name = config["model_name"]
    if not name or catalogue_model(name) is not None:
        name = str(model_path(name).path)  # transformers converts the GGUF once
    yield TransformersLanguageModel(
        model_name=name,
        device=device,
        torch_dtype=dtype,
        gen_kwargs=config["llm_gen"],
        is_vlm=config["llm_is_vlm"],
        threads=config["llm_threads"],
    )


def mlx_llm(config: Config) -> Iterator[LanguageModel]:
    from adapters.mlx_llm import MlxLanguageModel

    if not config["model_name"]:
        raise SetupError(
            "--llm_backend mlx-lm needs --model_name: a Hub id or a local MLX/transformers "
            "directory (mlx-lm cannot read GGUF)"
        )
    yield MlxLanguageModel(model_name=config["model_name"], gen_kwargs=config["llm_gen"])


def llama_cpp(config: Config) -> Iterator[LanguageModel]:
    """A local llama.cpp server that lives exactly as long as the agent, on the cores other
    programs leave it (adapters/llama_cpp_llm.py)."""
    from adapters.llama_cpp_llm import LlamaCppLanguageModel, Server
    from adapters.llama_server import SHARED_NICENESS, LlamaServer
    from adapters.machine_load import MachineLoad
    from adapters.model_files import model_path
    from adapters.openai_chat_completions import ChatCompletionsLanguageModel
    from composition.default_model import default_model
    from domain.generation_threads import GenerationThreads, ThreadPlan, ThreadsConfig

    most = config["llm_threads"]
    model = model_path(config["model_name"] or default_model(most))
    settings = generation_settings(config, model.entry)
    cores = os.cpu_count() or 1
    threads = ThreadsConfig(
        cores=cores,
        most=most,
        niceness=config["llm_niceness"],
        shared_niceness=min(config["llm_niceness"], SHARED_NICENESS),
    )

    def start(plan: ThreadPlan) -> LlamaServer:
        # With every thread it has, the model reads prompts on every core (nothing is spoken
        # yet then); with fewer, the machine is shared, and reading takes no more than writing.
        batch = cores if plan.threads >= most else plan.threads
        return LlamaServer(
            model.path, threads=plan.threads, batch_threads=batch, niceness=plan.niceness
        )

    def connect(server: Server) -> ChatCompletionsLanguageModel:
        return ChatCompletionsLanguageModel(
            model=model.name,
            api_key=server.api_key,
            base_url=server.base_url,
            max_output_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            top_k=settings.top_k,
            repeat_penalty=settings.repeat_penalty,
            timeout_s=config["llm_timeout_s"],
            pinned_slots=True,  # the conversation keeps one slot's cache; primes read into it
        )

    with LlamaCppLanguageModel(
        start,
        connect,
        GenerationThreads(threads, others_at_start()),
        load=MachineLoad(),
        max_output_tokens=settings.max_new_tokens,
        # The server keeps what it read: warmed with the system prompt, the first turn reads
        # only the user's words.
        warm_up_prompt=first_request(config),
    ) as llm:
        yield llm


@functools.cache
def others_at_start() -> float | None:
    """The cores' worth of CPU other programs use as the agent starts (None: unknown), measured
    once for every stage that sizes its threads."""
    from adapters.machine_load import MachineLoad

    return MachineLoad().measure(LOAD_MEASURE_S)


def free_cores(most: int) -> int:
    """Threads for a stage that takes its count once: `most`, less the cores other programs
    keep busy as the agent starts (at least one)."""
    others = others_at_start()
    if others is None:
        return most
    return max(1, min(most, int((os.cpu_count() or 1) - others + 0.5)))


def generation_settings(config: Config, entry: CatalogueModel | None) -> GenerationSettings:
    """What a llama.cpp model is run with: the catalogue entry's settings for speech (greedy,
    with its authors' repetition penalty), under any `--llm_gen_*` flag the user set. With
    `--llm_gen_do_sample` the authors' sampling settings replace greedy decoding."""
    from adapters.model_catalogue import GenerationSettings

    gen = config["llm_gen"]
    explicit = explicit_gen(config, "llm_gen_")
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
        "max_new_tokens": explicit.get("max_new_tokens"),
        "temperature": explicit.get("temperature") if sampling else None,
        "top_p": gen.get("top_p"),
        "top_k": gen.get("top_k"),
        "repeat_penalty": gen.get("repeat_penalty", gen.get("repetition_penalty")),
    }
    return attrs.evolve(
        base, **{name: value for name, value in chosen.items() if value is not None}
    )


def _api_model(config: Config, cls: type[Any]) -> Iterator[LanguageModel]:
    sampling = explicit_gen(config, "llm_gen_")  # unset: the provider's own defaults
    yield cls(
        model=config["model_name"],
        api_key=config["responses_api_api_key"],
        base_url=config["responses_api_base_url"],
        stream=config["responses_api_stream"],
        disable_thinking=config["responses_api_disable_thinking"],
        reasoning_effort=config["responses_api_reasoning_effort"],
        max_output_tokens=config["llm_gen"].get("max_new_tokens"),
        temperature=sampling.get("temperature"),
        top_p=sampling.get("top_p"),
        timeout_s=config["llm_timeout_s"],
    )


def responses_api(config: Config) -> Iterator[LanguageModel]:
    from adapters.openai_responses import ResponsesLanguageModel

    yield from _api_model(config, ResponsesLanguageModel)


def chat_completions(config: Config) -> Iterator[LanguageModel]:
    from adapters.openai_chat_completions import ChatCompletionsLanguageModel

    yield from _api_model(config, ChatCompletionsLanguageModel)


# -- text to speech ---------------------------------------------------------------------------


def piper(config: Config) -> Iterator[TextToSpeech]:
    from adapters.piper_tts import DEFAULT_THREADS, PiperTextToSpeech

    yield PiperTextToSpeech(
        config["piper_voice"],
        threads=free_cores(DEFAULT_THREADS),
        device=config["tts_device"] or "cpu",
    )


UNSPOKEN = "unspoken"  # text mode's voice, no flag's choice


def voice(config: Config) -> str:
    """The text-to-speech engine the flags choose; text mode without --speak has none."""
    return UNSPOKEN if config["text"] and not config["speak"] else config["tts"]


def unspoken(config: Config) -> Iterator[TextToSpeech]:
    from adapters.no_sound import Unspoken

    yield Unspoken()


def qwen3(config: Config) -> Iterator[TextToSpeech]:
    from adapters.qwen3_tts import DEFAULT_MODEL, Qwen3TextToSpeech

    yield Qwen3TextToSpeech(config["tts_model_name"] or DEFAULT_MODEL)


# -- the choice -------------------------------------------------------------------------------

STT_BUILDERS: Mapping[str, Builder] = {
    "faster-whisper": faster_whisper,
    "whisper": transformers_whisper,
    "parakeet-tdt": parakeet,
}
LLM_BUILDERS: Mapping[str, Builder] = {
    "llama-cpp": llama_cpp,
    "transformers": transformers_llm,
    "mlx-lm": mlx_llm,
    "responses-api": responses_api,
    "chat-completions": chat_completions,
}
TTS_BUILDERS: Mapping[str, Builder] = {"piper": piper, "qwen3": qwen3}


def _codes(csv: str) -> list[str]:
    return [code.strip() for code in csv.split(",") if code.strip()]
