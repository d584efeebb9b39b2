"""Turning argv and the environment into one resolved configuration (a plain dict).

Precedence: explicit flag > environment (`VOICE_AGENT_<FLAG>`) > preset > default. Presets
(`--profile`, `--local_mac_optimal_settings`, `--device`) only supply defaults: upstream's
mac preset overwrote flags the user had set and dropped `--model_name`; here an explicit flag
always wins.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, NoReturn

from composition.backends import GEN_OPTIONS_OF, LLM, explicit_gen
from composition.settings import (
    GEN_PREFIXES,
    SETTINGS,
    STAGE_DEVICES,
    ConfigError,
    Setting,
    check_each,
    parse_bool,
    parse_float,
    profile_presets,
)

LOCAL_PROG, SERVE_PROG = "python -m composition.local", "python -m composition.serve"
API_BACKENDS = ("responses-api", "chat-completions")
# Backends that talk HTTP through the openai client, bounded by --llm_timeout_s.
TIMED_BACKENDS = (*API_BACKENDS, "llama-cpp")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line: argparse's usage would print every one of the flags first."""
        self.exit(2, f"{self.prog}: error: {message} (--help lists the flags)\n")


def build_parser(prog: str = LOCAL_PROG) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="A local voice agent: microphone -> VAD -> STT -> LLM -> TTS -> speakers. "
        "Runs offline by default. Every flag can also be set as VOICE_AGENT_<FLAG> in the "
        "environment; --llm_gen_<param> and --stt_gen_<param> pass any other generation "
        "parameter through.",
        argument_default=argparse.SUPPRESS,
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        group = groups.setdefault(setting.group, parser.add_argument_group(setting.group))
        shown = "inf" if setting.default == float("inf") else setting.default
        kwargs: dict[str, Any] = {"help": f"{setting.help} (default: {shown})"}
        if setting.is_bool:
            kwargs.update(nargs="?", const=True, type=parse_bool, metavar="BOOL")
        else:
            kwargs.update(type=setting.parse, choices=setting.choices)
        group.add_argument(f"--{setting.name}", **kwargs)
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


def _from_env(setting: Setting, environ: Mapping[str, str]) -> Any:
    raw = environ.get(setting.env_var)
    if raw is None:
        return None
    try:
        value = setting.parse(raw)
    except ValueError as error:
        raise ConfigError(f"{setting.env_var}={raw!r}: {error}") from None
    if setting.choices and value not in setting.choices:
        raise ConfigError(f"{setting.env_var}={raw!r}: choose from {', '.join(setting.choices)}")
    return value


def resolve(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The configuration for `argv`: every setting's value, plus `llm_gen` / `stt_gen` dicts of
    generation parameters and `explicit`, the names the user set."""
    environ = os.environ if environ is None else environ
    presets = profile_presets()
    namespace, extra = build_parser().parse_known_args(list(argv))
    explicit: dict[str, Any] = vars(namespace)
    gen = _parse_gen_overrides(extra)
    for setting in SETTINGS:
        if setting.name not in explicit and (value := _from_env(setting, environ)) is not None:
            explicit[setting.name] = value

    def given(name: str) -> Any:
        return explicit.get(name, gen.get(name))

    profile = given("profile")
    if profile is None:
        profile = "mac" if given("local_mac_optimal_settings") else "embedded"
    values: dict[str, Any] = {s.name: s.default for s in SETTINGS}
    values.update(presets[profile])
    values["profile"] = profile
    values.update(explicit)
    if given("device") is not None or "device" in presets[profile]:
        for name in STAGE_DEVICES:
            if given(name) is None:
                values[name] = values["device"]
    backend_model = LLM[values["llm_backend"]].default_model
    if given("model_name") is None and backend_model is not None:
        values["model_name"] = backend_model
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
    user's terms (the flags), one line per refusal: every setting's own validation (declared
    with it), then the rules that span settings."""
    check_each(values)
    if values["input_wav"] is None and values["output_wav"] is not None:
        raise ConfigError("--output_wav needs --input_wav (WAV replay replaces both devices)")
    if values["speak"] and not values["text"]:
        raise ConfigError("--speak goes with --text (a spoken conversation always speaks)")
    if values["text"] and values["input_wav"] is not None:
        raise ConfigError("--text reads typed lines: it takes no --input_wav")
    if values["input_wav"] is None and values["simulated_echo"]:
        raise ConfigError("--simulated_echo needs --input_wav (it simulates the room of a replay)")
    if not values["max_speech_ms"] > values["min_speech_ms"]:
        raise ConfigError(
            f"--max_speech_ms ({values['max_speech_ms']:g}) must be longer than "
            f"--min_speech_ms ({values['min_speech_ms']:g})"
        )
    if not values["smart_turn_max_silence_ms"] > values["smart_turn_pause_ms"]:
        raise ConfigError(
            f"--smart_turn_max_silence_ms ({values['smart_turn_max_silence_ms']:g}) must be "
            f"longer than --smart_turn_pause_ms ({values['smart_turn_pause_ms']:g}), or the "
            "end-of-turn model is never asked"
        )
    slowest = max(values["question_silence_ms"], values["statement_silence_ms"])
    if not values["incomplete_silence_ms"] > slowest:
        raise ConfigError(
            f"--incomplete_silence_ms ({values['incomplete_silence_ms']:g}) must be longer "
            "than --question_silence_ms and --statement_silence_ms: words that trail off wait "
            "longest"
        )
    if values["llm_backend"] in TIMED_BACKENDS:
        _timeout_within_watchdog(values["llm_timeout_s"], values["watchdog_s"])
    if not 2 * values["stt_timeout_s"] < values["watchdog_s"]:
        # A turn's decode may wait for the pause's, which hung on the same speech, to give up.
        raise ConfigError(
            f"--stt_timeout_s {values['stt_timeout_s']:g} lets a hung recogniser hold a turn for "
            f"up to {2 * values['stt_timeout_s']:g} s, not less than --watchdog_s "
            f"{values['watchdog_s']:g}, which would close it before the fault is known: lower "
            f"--stt_timeout_s below {values['watchdog_s'] / 2:g} or raise --watchdog_s"
        )
    refuse_unhonoured_options(values)
    check_gen_ranges(values)


# The generation options whose range is known, whatever the backend: (prefix, option) -> a
# test of the value and what it must be. An out-of-range value otherwise fails every turn.
_GEN_RANGES: Mapping[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("stt_gen_", "beam_size"): (lambda v: _whole(v) and v >= 1, "a whole number, at least 1"),
    ("llm_gen_", "top_p"): (lambda v: _number(v) and 0 < v <= 1, "a number above 0, at most 1"),
    ("llm_gen_", "top_k"): (lambda v: _whole(v) and v >= 0, "a whole number, 0 or more"),
    ("llm_gen_", "min_new_tokens"): (lambda v: _whole(v) and v >= 0, "a whole number, 0 or more"),
    ("llm_gen_", "repeat_penalty"): (lambda v: _number(v) and v > 0, "a number above 0"),
    ("llm_gen_", "repetition_penalty"): (lambda v: _number(v) and v > 0, "a number above 0"),
}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_gen_ranges(values: Mapping[str, Any]) -> None:
    for (prefix, option), (fits, what) in _GEN_RANGES.items():
        value = values[prefix.rstrip("_")].get(option)
        if value is not None and not fits(value):
            raise ConfigError(f"--{prefix}{option} must be {what} (got {value})")


def refuse_unhonoured_options(config: Mapping[str, Any]) -> None:
    """Every generation option the user set must be one the chosen backend honours: upstream
    dropped the others in silence."""
    for setting, (backends, prefix) in GEN_OPTIONS_OF.items():
        name = config[setting]
        honoured = backends[name].gen_options
        if honoured is None:
            continue
        gen = config[prefix.rstrip("_")]
        refused = sorted(set(explicit_gen(gen, config.get("explicit", ()), prefix)) - honoured)
        if refused:
            takes = ", ".join(f"--{prefix}{option}" for option in sorted(honoured))
            raise ConfigError(
                f"--{setting} {name} cannot honour "
                f"{', '.join(f'--{prefix}{option}' for option in refused)}: "
                + (f"it takes {takes}" if takes else f"it takes no --{prefix}* option")
            )


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


# Flags that only one entry point reads: given to the other, they would be ignored in silence.
LOCAL_ONLY = ("text", "speak", "audio_api", "input_device", "output_device", "audio_latency",
              "input_wav", "output_wav", "simulated_echo")  # fmt: skip
SERVER_ONLY = tuple(s.name for s in SETTINGS if s.group == "server")


def refuse_other_modes_flags(flags: Collection[str], prog: str) -> None:
    """A flag on the command line that `prog` would not read is refused, naming the entry point
    that does (the environment may hold both kinds: it is shared by the two)."""
    serving = prog == SERVE_PROG
    foreign = [name for name in (LOCAL_ONLY if serving else SERVER_ONLY) if name in flags]
    if foreign:
        if serving:
            why = f"{LOCAL_PROG}: a served session's sound and words come from its client"
        else:
            why = f"{SERVE_PROG}, which serves the agent to browsers and other programs"
        raise ConfigError(f"--{foreign[0]} is for {why}")


def known_secrets(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """Every credential the agent may hold, so logs, metrics and errors can scrub them."""
    environ = os.environ if environ is None else environ
    candidates = [
        values.get("responses_api_api_key"), environ.get("OPENAI_API_KEY"),
        values.get("serve_token"),
    ]  # fmt: skip
    return [c for c in candidates if c]


def redacted(values: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as it may be shown: API keys replaced, never printed."""
    shown = dict(values)
    for secret in ("responses_api_api_key", "serve_token"):
        shown[secret] = "***" if shown.get(secret) else None
    return shown
