"""`python -m composition.local`: the voice agent on this machine's microphone and speakers.

Loads every model with a progress line and warms it up before the microphone opens; problems the
user can fix end with one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from composition.config import (
    ConfigError,
    build_parser,
    known_secrets,
    redacted,
    resolve,
    validate,
)

EXIT_SETUP_ERROR = 2

# The order stages load in (the language model first: a missing key or server fails before
# seconds go into the other models), with what the progress line calls them.
STAGES = (("llm", "language model"), ("vad", "voice activity"), ("stt", "speech-to-text"),
          ("tts", "text-to-speech"), ("audio", "audio"))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    build_parser().parse_known_args(argv)  # --help and bad choices answer before heavy imports
    from adapters.errors import SetupError
    from composition.containers import profile_presets

    config: dict[str, Any] = {}
    try:
        config = resolve(argv, profile_presets())
        validate(config)
        if config["list_devices"]:
            from adapters.sounddevice_audio import list_devices

            print(list_devices())
            return 0
        if config["print_config"]:
            print(json.dumps(describe(config), indent=2, default=str))
            return 0
        return run(config)
    except (SetupError, ConfigError) as error:
        from composition.logging_setup import SecretRedactor

        scrub = SecretRedactor(known_secrets(config)).scrub
        print(f"error: {scrub(str(error))}", file=sys.stderr)
        return EXIT_SETUP_ERROR


def describe(config: dict[str, Any]) -> dict[str, Any]:
    """What would run, without loading anything; keys redacted."""
    # JSON has no infinity: say "inf", as the flag does.
    shown = {k: "inf" if v == float("inf") else v for k, v in redacted(config).items()}
    return {
        "profile": shown["profile"],
        "stages": {
            "audio": "wav replay" if shown["input_wav"] else "sounddevice",
            "vad": "silero (onnxruntime)",
            "stt": {"engine": shown["stt"], "device": shown["stt_device"]},
            "llm": {"backend": shown["llm_backend"], "model": shown["model_name"],
                    "device": shown["llm_device"]},
            "tts": {"engine": shown["tts"], "device": shown["tts_device"]},
        },
        "settings": {k: v for k, v in shown.items() if k != "explicit"},
        "explicit": shown["explicit"],
    }  # fmt: skip


def run(config: dict[str, Any]) -> int:
    from composition.containers import PROFILES, Core, build_agent

    core = Core(config=config)
    core.init_resources()
    adapters = PROFILES[config["profile"]](config=config)
    try:
        _load_stages(adapters)
        conversation = build_agent(config, adapters).conversation()
        _stop_on_sigterm()
        conversation.start()
        try:
            while not conversation.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("\nStopping.", file=sys.stderr)
        conversation.stop()
        return 1 if conversation.crashed else 0
    finally:
        adapters.shutdown_resources()
        core.shutdown_resources()


def _load_stages(adapters: Any) -> None:
    """Build and warm up every stage before the microphone opens, saying what takes time."""
    for name, label in STAGES:
        started = time.monotonic()
        print(f"Loading {label}…", end="", file=sys.stderr, flush=True)
        try:
            adapter = getattr(adapters, name)()
            if hasattr(adapter, "warm_up"):
                adapter.warm_up()
        except BaseException:
            print(" failed", file=sys.stderr, flush=True)
            raise
        print(f" ready in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def _stop_on_sigterm() -> None:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    sys.exit(main())
