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
from composition.settings import TIMER, chosen_tools
from composition.stage_settings import AudioSettings, LlmSettings, SttSettings, TtsSettings
from domain.timers import SET_TIMER
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
from ports.tools import Toolbox

if TYPE_CHECKING:
    from adapters.model_catalogue import CatalogueModel, GenerationSettings
    from adapters.no_sound import Unheard

Config = Mapping[str, Any]
# A stage's builder: a generator run as a dependency-injector Resource, given its stage's
# settings (composition/stage_settings.py; the configuration where a stage reads none).
Builder = Callable[[Any], Iterator[Any]]
# How long the other programs' load is measured at start.
LOAD_MEASURE_S = 0.5


class WarmsUp(Protocol):
    def warm_up(self) -> None: ...


def warmed(build: Builder, settings: Any) -> Generator[WarmsUp, None, None]:
    """A stage's Resource: built, warmed up before the microphone opens, closed on shutdown."""
    with contextmanager(build)(settings) as adapter:
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
        # Typed turns spoken aloud ask the server for a speaker: no microphone is opened.
        api = "portaudio" if named or not server_answers(capture=not config["text"]) else "pulse"
    return "device" if api == "portaudio" else "pulse"


def no_sound(settings: AudioSettings) -> Iterator[AudioDuplex]:
    from adapters.no_sound import NoSound

    yield NoSound()


def _opened_audio(audio: AudioDuplex) -> Iterator[AudioDuplex]:
    """Checked before any model loads (a wrong device or file fails at once); closed last."""
    audio.check()
    try:
        yield audio
    finally:
        audio.close()


def wav_audio(settings: AudioSettings) -> Iterator[AudioDuplex]:
    from adapters.simulated_room import SimulatedRoom
    from adapters.wav_replay import WavReplayAudio

    assert settings.input_wav is not None  # how this builder is chosen
    output = settings.output_wav
    # Without the simulated room the replay has no echo: nothing to cancel.
    echo = settings.simulated_echo
    yield from _opened_audio(
        WavReplayAudio(
            Path(settings.input_wav),
            Path(output) if output else None,
            room=SimulatedRoom() if echo else None,
            echo_canceller=echo_canceller() if echo and settings.aec else None,
        )
    )


def device_audio(settings: AudioSettings) -> Iterator[AudioDuplex]:
    from adapters.sounddevice_audio import SounddeviceAudio

    latency = settings.audio_latency
    yield from _opened_audio(
        SounddeviceAudio(
            settings.input_device,
            settings.output_device,
            latency if latency in ("low", "high") else float(latency),
            capture=not settings.text,
            echo_canceller=echo_canceller() if settings.aec and not settings.text else None,
        )
    )


def pulse_audio(settings: AudioSettings) -> Iterator[AudioDuplex]:
    from adapters.pulse_audio import PulseAudio

    yield from _opened_audio(
        PulseAudio(
            settings.input_device,
            settings.output_device,
            capture=not settings.text,
            echo_canceller=echo_canceller() if settings.aec and not settings.text else None,
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

UNHEARD = "unheard"  # typed turns: no voice detector, recogniser or end-of-turn model


def hearing(text: bool, chosen: str) -> str:
    """A hearing stage's choice: what the flag chose, or nothing to load for typed turns."""
    return UNHEARD if text else chosen


def unheard() -> Unheard:
    from adapters.no_sound import Unheard

    return Unheard()


def session_vad() -> VoiceActivity:
    """A VAD of a Realtime session's own: it keeps state from block to block."""
    from adapters.silero_vad import SileroVad

    vad = SileroVad()
    vad.warm_up()
    return vad


# -- end of turn (with --turn_detection silence or transcript there is no model) ----------------


def smart_turn(config: Config) -> Iterator[EndOfTurn]:
    from adapters.smart_turn import SmartTurn

    yield SmartTurn()


END_OF_TURN_BUILDERS: Mapping[str, Builder] = {
    "smart-turn": smart_turn,
    "transcript+smart-turn": smart_turn,
}


# -- speech to text ---------------------------------------------------------------------------


def faster_whisper(settings: SttSettings) -> Iterator[SpeechToText]:
    from adapters.faster_whisper_stt import FasterWhisperSpeechToText

    yield FasterWhisperSpeechToText(
        settings.faster_whisper_stt_model_name,
        device=settings.stt_device or "cpu",
        cpu_threads=free_cores(os.cpu_count() or 1),
        language=settings.language,
        allowed_languages=settings.allowed_languages,
        **settings.stt_gen,
    )


def transformers_whisper(settings: SttSettings) -> Iterator[SpeechToText]:
    from adapters.transformers_whisper_stt import DEFAULT_MODEL as WHISPER
    from adapters.transformers_whisper_stt import TransformersWhisperSpeechToText

    yield TransformersWhisperSpeechToText(
        settings.stt_model_name or WHISPER,
        device=settings.stt_device or "cpu",
        torch_dtype=settings.stt_torch_dtype or "float32",
        gen_kwargs=settings.stt_gen,
        language=settings.language,
        allowed_languages=settings.allowed_languages,
    )


def parakeet(settings: SttSettings) -> Iterator[SpeechToText]:
    from adapters.parakeet_stt import DEFAULT_MODEL as PARAKEET
    from adapters.parakeet_stt import ParakeetSpeechToText

    yield ParakeetSpeechToText(settings.stt_model_name or PARAKEET, language=settings.language)


# -- language model ---------------------------------------------------------------------------


def transformers_llm(settings: LlmSettings) -> Iterator[LanguageModel]:
    from adapters.model_catalogue import catalogue_model
    from adapters.model_files import model_path
    from adapters.transformers_llm import TransformersLanguageModel

    device = settings.llm_device or "cpu"
    # Half precision is what GPUs are fast at; on a CPU bfloat16 keeps float32's range.
    dtype = settings.llm_torch_dtype or ("bfloat16" if device == "cpu" else "float16")
    name = settings.model_name
    if not name or catalogue_model(name) is not None:
        name = str(model_path(name).path)  # transformers converts the GGUF once
    yield TransformersLanguageModel(
        model_name=name,
        device=device,
        torch_dtype=dtype,
        gen_kwargs=settings.llm_gen,
        is_vlm=settings.llm_is_vlm,
        threads=settings.llm_threads,
        tools=settings.tool_specs,
    )


def mlx_llm(settings: LlmSettings) -> Iterator[LanguageModel]:
    from adapters.mlx_llm import MlxLanguageModel

    if not settings.model_name:
        raise SetupError(
            "--llm_backend mlx-lm needs --model_name: a Hub id or a local MLX/transformers "
            "directory (mlx-lm cannot read GGUF)"
        )
    yield MlxLanguageModel(
        model_name=settings.model_name, gen_kwargs=settings.llm_gen, tools=settings.tool_specs
    )


def llama_cpp(settings: LlmSettings) -> Iterator[LanguageModel]:
    """A local llama.cpp server that lives exactly as long as the agent, on the cores other
    programs leave it (adapters/llama_cpp_llm.py)."""
    from adapters.llama_cpp_llm import LlamaCppLanguageModel, Server
    from adapters.llama_server import SHARED_NICENESS, LlamaServer
    from adapters.machine_load import MachineLoad
    from adapters.model_files import model_path
    from adapters.openai_chat_completions import ChatCompletionsLanguageModel
    from composition.default_model import default_model
    from domain.generation_threads import GenerationThreads, ThreadPlan, ThreadsConfig

    most = settings.llm_threads
    model = model_path(settings.model_name or default_model(most))
    generation = generation_settings(settings, model.entry)
    cores = os.cpu_count() or 1
    threads = ThreadsConfig(
        cores=cores,
        most=most,
        niceness=settings.llm_niceness,
        shared_niceness=min(settings.llm_niceness, SHARED_NICENESS),
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
            max_output_tokens=generation.max_new_tokens,
            temperature=generation.temperature,
            top_p=generation.top_p,
            top_k=generation.top_k,
            repeat_penalty=generation.repeat_penalty,
            timeout_s=settings.llm_timeout_s,
            pinned_slots=True,  # the conversation keeps one slot's cache; primes read into it
            tools=settings.tool_specs,
        )

    with LlamaCppLanguageModel(
        start,
        connect,
        GenerationThreads(threads, others_at_start()),
        load=MachineLoad(),
        max_output_tokens=generation.max_new_tokens,
        # The server keeps what it read: warmed with the system prompt, the first turn reads
        # only the user's words.
        warm_up_prompt=settings.warm_up_prompt,
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


def generation_settings(settings: LlmSettings, entry: CatalogueModel | None) -> GenerationSettings:
    """What a llama.cpp model is run with: the catalogue entry's settings for speech (greedy,
    with its authors' repetition penalty), under any `--llm_gen_*` flag the user set. With
    `--llm_gen_do_sample` the authors' sampling settings replace greedy decoding."""
    from adapters.model_catalogue import GenerationSettings

    gen = settings.llm_gen
    explicit = settings.chosen_gen
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


def _api_model(settings: LlmSettings, cls: type[Any]) -> Iterator[LanguageModel]:
    sampling = settings.chosen_gen  # unset: the provider's own defaults
    yield cls(
        model=settings.model_name,
        api_key=settings.responses_api_api_key,
        base_url=settings.responses_api_base_url,
        stream=settings.responses_api_stream,
        disable_thinking=settings.responses_api_disable_thinking,
        reasoning_effort=settings.responses_api_reasoning_effort,
        max_output_tokens=settings.llm_gen.get("max_new_tokens"),
        temperature=sampling.get("temperature"),
        top_p=sampling.get("top_p"),
        timeout_s=settings.llm_timeout_s,
        tools=settings.tool_specs,
    )


def responses_api(settings: LlmSettings) -> Iterator[LanguageModel]:
    from adapters.openai_responses import ResponsesLanguageModel

    yield from _api_model(settings, ResponsesLanguageModel)


def chat_completions(settings: LlmSettings) -> Iterator[LanguageModel]:
    from adapters.openai_chat_completions import ChatCompletionsLanguageModel

    yield from _api_model(settings, ChatCompletionsLanguageModel)


# -- text to speech ---------------------------------------------------------------------------


def piper(settings: TtsSettings) -> Iterator[TextToSpeech]:
    from adapters.piper_tts import DEFAULT_THREADS, PiperTextToSpeech

    yield PiperTextToSpeech(
        settings.piper_voice,
        threads=free_cores(DEFAULT_THREADS),
        device=settings.tts_device or "cpu",
    )


UNSPOKEN = "unspoken"  # text mode's voice, no flag's choice


def voice(config: Config) -> str:
    """The text-to-speech engine the flags choose; text mode without --speak has none."""
    return UNSPOKEN if config["text"] and not config["speak"] else config["tts"]


def unspoken() -> TextToSpeech:
    from adapters.no_sound import Unspoken

    return Unspoken()


def qwen3(settings: TtsSettings) -> Iterator[TextToSpeech]:
    from adapters.qwen3_tts import DEFAULT_MODEL, Qwen3TextToSpeech

    yield Qwen3TextToSpeech(settings.tts_model_name or DEFAULT_MODEL)


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


# -- tools --------------------------------------------------------------------------------------


def toolbox(tools: str, tools_module: str | None) -> Toolbox | None:
    """The tools `--tools` names (comma-separated built-ins) and every public function of
    `--tools_module`; None when there are none. Two tools of one name are a `SetupError`."""
    from adapters.builtin_tools import BUILTIN_TOOLS
    from adapters.python_tools import PythonToolbox, load_module

    chosen = chosen_tools(tools)
    # The timer is the conversation's own tool (application/reminders.py), not a function here.
    functions = [BUILTIN_TOOLS[name] for name in chosen if name in BUILTIN_TOOLS]
    if tools_module:
        functions += load_module(tools_module)
    names = [function.__name__ for function in functions]
    names += [SET_TIMER.name] if TIMER in chosen else []
    if taken := sorted({name for name in names if names.count(name) > 1}):
        raise SetupError(
            f"--tools_module {tools_module}: {', '.join(taken)} is already a built-in tool's "
            "name; rename it, or leave the built-in out of --tools"
        )
    return PythonToolbox(functions) if functions else None
