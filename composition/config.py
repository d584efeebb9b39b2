"""Turning argv and the environment into one resolved configuration (a plain dict).

Precedence: explicit flag > environment (`VOICE_AGENT_<FLAG>`) > preset > default. Presets
(`--profile`, `--local_mac_optimal_settings`, `--device`) only supply defaults: upstream's
mac preset overwrote flags the user had set and dropped `--model_name`; here an explicit flag
always wins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

from composition.flags import FLAGS, GEN_PREFIXES, Flag, parse_bool, parse_float
from domain.turn_segmentation import HYSTERESIS

API_BACKENDS = ("responses-api", "chat-completions")
# Backends that talk HTTP through the openai client, bounded by --llm_timeout_s.
TIMED_BACKENDS = (*API_BACKENDS, "llama-cpp")
API_DEFAULT_MODEL = "gpt-5.4-mini"
STAGE_DEVICES = ("stt_device", "llm_device", "tts_device")


class ConfigError(ValueError):
    """A flag or environment value that cannot be used; the message says which and why."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m composition.local",
        description="A local voice agent: microphone -> VAD -> STT -> LLM -> TTS -> speakers. "
        "Runs offline by default. Every flag can also be set as VOICE_AGENT_<FLAG> in the "
        "environment; --llm_gen_<param> and --stt_gen_<param> pass any other generation "
        "parameter through.",
        argument_default=argparse.SUPPRESS,
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for flag in FLAGS:
        group = groups.setdefault(flag.group, parser.add_argument_group(flag.group))
        shown = "inf" if flag.default == float("inf") else flag.default
        kwargs: dict[str, Any] = {"help": f"{flag.help} (default: {shown})"}
        if flag.is_bool:
            kwargs.update(nargs="?", const=True, type=parse_bool, metavar="BOOL")
        else:
            kwargs.update(type=flag.parse, choices=flag.choices)
        group.add_argument(f"--{flag.name}", **kwargs)
    return parser


def _parse_gen_overrides(extra: Sequence[str]) -> dict[str, Any]:
    """`--llm_gen_top_p 0.9` and the like, kept as typed values under their flag name."""
    overrides: dict[str, Any] = {}
    items = list(extra)
    while items:
        token = items.pop(0)
        name = token[2:].split("=", 1)[0] if token.startswith("--") else ""
        if not name.startswith(GEN_PREFIXES):
            raise ConfigError(f"unrecognised argument: {token}")
        if "=" in token:
            raw = token.split("=", 1)[1]
        elif items and not items[0].startswith("--"):
            raw = items.pop(0)
        else:
            raw = "true"
        overrides[name] = _guess_type(raw)
    return overrides


def _guess_type(raw: str) -> Any:
    for parse in (int, parse_float, parse_bool):
        try:
            return parse(raw)
        except ValueError:
            continue
    return raw


def _from_env(flag: Flag, environ: Mapping[str, str]) -> Any:
    raw = environ.get(flag.env_var)
    if raw is None:
        return None
    try:
        value = flag.parse(raw)
    except ValueError as error:
        raise ConfigError(f"{flag.env_var}={raw!r}: {error}") from None
    if flag.choices and value not in flag.choices:
        raise ConfigError(f"{flag.env_var}={raw!r}: choose from {', '.join(flag.choices)}")
    return value


def resolve(
    argv: Sequence[str],
    presets: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The configuration for `argv`: every flag's value, plus `llm_gen` / `stt_gen` dicts of
    generation parameters and `explicit`, the names the user set. `presets` maps each profile
    to the defaults it supplies."""
    environ = os.environ if environ is None else environ
    namespace, extra = build_parser().parse_known_args(list(argv))
    explicit: dict[str, Any] = vars(namespace)
    gen = _parse_gen_overrides(extra)
    for flag in FLAGS:
        if flag.name not in explicit and (value := _from_env(flag, environ)) is not None:
            explicit[flag.name] = value

    def given(name: str) -> Any:
        return explicit.get(name, gen.get(name))

    profile = given("profile")
    if profile is None:
        profile = "mac" if given("local_mac_optimal_settings") else "embedded"
    values: dict[str, Any] = {f.name: f.default for f in FLAGS}
    values.update(presets[profile])
    values["profile"] = profile
    values.update(explicit)
    if given("device") is not None or "device" in presets[profile]:
        for name in STAGE_DEVICES:
            if given(name) is None:
                values[name] = values["device"]
    if given("model_name") is None and values["llm_backend"] in API_BACKENDS:
        values["model_name"] = API_DEFAULT_MODEL
    values["llm_gen"] = _gen_params("llm_gen_", values, gen)
    values["stt_gen"] = _gen_params("stt_gen_", values, gen)
    values["explicit"] = sorted(explicit) + sorted(gen)
    return values


def _gen_params(prefix: str, values: Mapping[str, Any], gen: Mapping[str, Any]) -> dict[str, Any]:
    named = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
    named.update({k[len(prefix) :]: v for k, v in gen.items() if k.startswith(prefix)})
    return named


def validate(values: Mapping[str, Any]) -> None:
    """Impossible values and combinations, caught before anything loads, each named in the
    user's terms (the flags), one line per refusal."""
    if values["input_wav"] is None and values["output_wav"] is not None:
        raise ConfigError("--output_wav needs --input_wav (WAV replay replaces both devices)")
    if values["input_wav"] is None and values["simulated_echo"]:
        raise ConfigError("--simulated_echo needs --input_wav (it simulates the room of a replay)")
    latency = values["audio_latency"]
    if latency not in ("low", "high"):
        try:
            if not float(latency) > 0:
                raise ValueError
        except ValueError:
            raise ConfigError("--audio_latency takes low, high or a number of seconds") from None
    _at_least(values, "chat_size", 1)
    _at_least(values, "stream_batch_sentences", 1)
    _at_least(values, "llm_threads", 1)
    _at_least(values, "llm_gen_max_new_tokens", 1)
    for name in ("init_chat_role", "user_role"):
        if not str(values[name]).strip():
            raise ConfigError(f"--{name} must not be empty")
    thresh = values["thresh"]
    if not HYSTERESIS < thresh <= 1:
        raise ConfigError(
            f"--thresh ({thresh:g}) must be above {HYSTERESIS} and at most 1: speech goes on "
            f"while the probability stays above thresh - {HYSTERESIS}"
        )
    _positive(values, "min_silence_ms", "milliseconds")
    _positive(values, "watchdog_s", "seconds")
    _positive(values, "llm_timeout_s", "seconds")
    for name in ("min_speech_ms", "speech_pad_ms", "live_transcription_update_interval"):
        if not values[name] >= 0:
            raise ConfigError(f"--{name} ({values[name]:g}) cannot be negative")
    if not values["max_speech_ms"] > values["min_speech_ms"]:
        raise ConfigError(
            f"--max_speech_ms ({values['max_speech_ms']:g}) must be longer than "
            f"--min_speech_ms ({values['min_speech_ms']:g})"
        )
    if values["llm_backend"] in TIMED_BACKENDS:
        _timeout_within_watchdog(values["llm_timeout_s"], values["watchdog_s"])


def _at_least(values: Mapping[str, Any], name: str, least: int) -> None:
    if not values[name] >= least:
        raise ConfigError(f"--{name} must be at least {least} (got {values[name]})")


def _positive(values: Mapping[str, Any], name: str, unit: str) -> None:
    if not values[name] > 0:
        raise ConfigError(f"--{name} must be more than 0 {unit} (got {values[name]:g})")


def _timeout_within_watchdog(timeout_s: float, watchdog_s: float) -> None:
    """A hung provider must fail (and be apologised for) before the watchdog gives up on the
    turn in silence."""
    from adapters.openai_common import longest_wait_s

    longest = longest_wait_s(timeout_s)
    if longest < watchdog_s:
        return
    tenths = range(min(int(timeout_s * 10), int(watchdog_s * 10)), 0, -1)
    fits = next((t / 10 for t in tenths if longest_wait_s(t / 10) < watchdog_s), None)
    lower = f"lower --llm_timeout_s to {fits:g} or " if fits else ""
    raise ConfigError(
        f"--llm_timeout_s {timeout_s:g} lets a hung language model hold a reply for up to "
        f"{longest:g} s, not less than --watchdog_s {watchdog_s:g}, which would end the turn "
        f"without an apology: {lower}raise --watchdog_s"
    )


def known_secrets(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """Every credential the agent may hold, so logs, metrics and errors can scrub them."""
    environ = os.environ if environ is None else environ
    candidates = [values.get("responses_api_api_key"), environ.get("OPENAI_API_KEY")]
    return [c for c in candidates if c]


def redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as it may be shown: API keys replaced, never printed."""
    shown = dict(values)
    key = shown.get("responses_api_api_key")
    shown["responses_api_api_key"] = "***" if key else None
    return shown
