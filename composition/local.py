"""`python -m composition.local`: the voice agent on this machine's microphone and speakers.

Start-up, in order: the whole configuration is validated (every flag, and the settings bundles the
conversation will be built from), the audio devices or files are checked, then every model loads
with a progress line and is warmed up before the microphone opens. Problems the user can fix end
with one line on stderr (`error: ...`) and exit code 2, never a traceback.

Ctrl-C (SIGINT) or SIGTERM at any moment prints "Stopping." once and ends the process within a
second, with exit code 130 (SIGINT) or 143 (SIGTERM), as shells report a process a signal ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from composition.config import (
    API_BACKENDS,
    LOCAL_PROG,
    build_parser,
    known_secrets,
    redacted,
    refuse_other_modes_flags,
    resolve,
    validate,
)
from composition.settings import ConfigError

EXIT_SETUP_ERROR = 2
# After SIGINT or SIGTERM the process is gone within this, whatever it was doing: a graceful
# stop (threads joined, devices and servers closed) gets that long, then the process ends.
STOP_DEADLINE_S = 0.8


def exit_code(signum: int) -> int:
    """128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + signum


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread wherever it was (loading a model, waiting
    for a server, running). A BaseException, like KeyboardInterrupt, so no `except Exception`
    in a library swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopOnSignal:
    """Turns the first SIGINT or SIGTERM into `Interrupted` in the main thread, and makes sure
    the process ends within `STOP_DEADLINE_S` of it even when the main thread cannot run Python
    (a model loading in C, a join that hangs, interpreter shutdown): a watcher thread wakes on
    the signal itself, through the wakeup fd that the C-level handler writes, and ends the
    process at the deadline. Later signals only wait for that."""

    def __init__(self) -> None:
        self.signum: int | None = None
        # False once a stop is under way (or the run ended): signals no longer raise.
        self.raising = True
        # A progress line ("Loading ...") is open: "Stopping." goes on a new line.
        self.line_open = False
        self._announcing = threading.Lock()
        self._read_fd = self._write_fd = -1  # the wakeup pipe, opened only once installed
        self._previous: dict[int, Any] = {}
        self._previous_fd = -1

    def install(self) -> StopOnSignal:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="stop-on-signal", daemon=True).start()
        return self

    def uninstall(self) -> None:
        """Restores the previous handlers (for `main` called inside another program)."""
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        os.close(self._write_fd)  # the watcher reads end-of-file and ends

    def __enter__(self) -> StopOnSignal:
        return self.install()

    def __exit__(self, *_: object) -> None:
        self.uninstall()

    def announce(self) -> None:
        """Prints "Stopping." once, whoever gets there first."""
        # Taken once and never given back: whoever comes second returns at once, and nobody
        # waits (a handler that interrupted the first caller would wait forever).
        if not self._announcing.acquire(blocking=False):
            return
        # os.write, not print: this may run in a signal handler, in the middle of a print.
        os.write(sys.stderr.fileno(), b"\nStopping.\n" if self.line_open else b"Stopping.\n")
        self.line_open = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            self._quiet_from_now_on()
        if self.raising:
            self.raising = False
            raise Interrupted(signum)
        self.announce()

    def _watch(self) -> None:
        received = os.read(self._read_fd, 16)
        if not received:
            os.close(self._read_fd)
            return  # uninstalled without a signal
        # The read end stays open: a later signal's byte must not meet a closed pipe.
        self._quiet_from_now_on()
        time.sleep(STOP_DEADLINE_S)
        # Still here: the graceful stop did not finish in time. No flush: the main thread may
        # hold a stream's lock, blocked on a full pipe.
        self.announce()
        os._exit(exit_code(self.signum or received[0]))

    @staticmethod
    def _quiet_from_now_on() -> None:
        """A thread or a destructor that fails while the agent is being stopped fails because
        of the stop: no traceback for it."""
        threading.excepthook = lambda _: None
        sys.unraisablehook = lambda _: None

    @staticmethod
    def exit_now(code: int) -> None:
        """Ends the process from the main thread once the agent cleaned up after a signal."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # the process ends either way
                stream.flush()
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI, callable in-process (tests): signal handlers are restored on return."""
    with StopOnSignal() as stopper:
        return start(argv, stopper)


# What runs once the configuration is whole: the agent on this machine, or a server.
Door = Callable[[dict[str, Any], StopOnSignal], int]


def start(
    argv: Sequence[str] | None,
    stopper: StopOnSignal,
    door: Door | None = None,
    prog: str = LOCAL_PROG,
) -> int:
    """Every entry point's start: flags, configuration, then `door` (default: `run`), with
    problems the user can fix as one `error:` line and exit code 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    config: dict[str, Any] = {}
    try:
        # --help and bad choices before heavy imports
        flags, _ = build_parser(prog).parse_known_args(argv)
        from adapters.errors import SetupError

        try:
            config = resolve(argv)
            check_config(config)
            refuse_other_modes_flags(vars(flags), prog)
            if config["list_devices"]:
                from adapters.sound_devices import list_devices

                print(list_devices())
                return 0
            if config["print_config"]:
                print(json.dumps(describe(config), indent=2, default=str))
                return 0
            return (door or run)(config, stopper)
        except (SetupError, ConfigError) as error:
            if stopper.signum is not None:
                raise  # a consequence of the signal (a library that turned it into its own error)
            from composition.logging_setup import SecretRedactor

            scrub = SecretRedactor(known_secrets(config)).scrub
            print(f"error: {scrub(str(error))}", file=sys.stderr)
            return EXIT_SETUP_ERROR
    except BaseException:
        if stopper.signum is None:
            raise
        # Stopped by a signal: whatever the interruption became on its way up (libraries catch
        # and convert exceptions, an import cut short fails as ImportError), no traceback.
        stopper.announce()
        return exit_code(stopper.signum)
    finally:
        stopper.raising = False


def check_config(config: dict[str, Any]) -> None:
    """Every flag, then the settings bundles the conversation is built from (their own
    validators), before anything loads: an impossible combination is one `ConfigError`."""
    from composition.containers import conversation_settings

    validate(config)
    try:
        conversation_settings(config)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"these settings do not fit together: {error}") from None


# What each audio source of composition/stages.py reaches the sound through.
AUDIO_PATHS = {
    "none": "none (text mode)",
    "wav": "wav replay",
    "device": "sounddevice (PortAudio)",
    "pulse": "PulseAudio client (pasimple)",
}


TYPED = "none (typed turns)"


def describe(config: dict[str, Any]) -> dict[str, Any]:
    """What would run, without loading anything; keys redacted."""
    from composition.stages import audio_source, voice

    # JSON has no infinity: say "inf", as the flag does.
    shown = {k: "inf" if v == float("inf") else v for k, v in redacted(config).items()}
    # As --audio_api auto would choose now: asks whether a sound server answers.
    source = audio_source(config)
    audio = AUDIO_PATHS[source] + (", speaker only" if config["text"] and source != "none" else "")
    return {
        "profile": shown["profile"],
        "stages": {
            "audio": audio,
            # Typed turns load no ears (composition/stages.py, `hearing`).
            "vad": TYPED if config["text"] else "silero (onnxruntime)",
            "end_of_turn": TYPED if config["text"] else shown["turn_detection"],
            "stt": TYPED if config["text"] else {"engine": shown["stt"],
                                                   "device": shown["stt_device"]},
            "llm": {"backend": shown["llm_backend"], "model": llm_model(shown),
                    "device": shown["llm_device"]},
            "tts": {"engine": voice(shown), "device": shown["tts_device"]},
        },
        "settings": {k: v for k, v in shown.items() if k != "explicit"},
        "explicit": shown["explicit"],
    }  # fmt: skip


def llm_model(config: dict[str, Any]) -> str | None:
    """The model the language-model backend will load: the catalogue's default when none is
    named for a backend that has one (llama.cpp's as this machine's cached pace chooses it)."""
    from adapters.model_catalogue import DEFAULT_MODEL

    named: str | None = config["model_name"]
    if named or config["llm_backend"] not in ("llama-cpp", "transformers"):
        return named
    if config["llm_backend"] == "llama-cpp":
        from composition.default_model import default_model

        return default_model(config["llm_threads"], may_measure=False)
    return DEFAULT_MODEL


def run(config: dict[str, Any], stopper: StopOnSignal) -> int:
    from adapters.blas_threads import limit_blas_threads
    from adapters.cpu_watch import CpuWatch
    from composition.containers import Adapters, Core, build_agent

    core = Core(config=config)
    core.init_resources()
    try:
        with open_stages(config, Adapters(config=config), stopper) as adapters:
            limit_blas_threads()  # once the models have loaded numpy's BLAS
            conversation = build_agent(config, adapters).conversation()
            conversation.start()
            # An idle agent spinning a core is logged with its busiest threads, to be caught.
            cpu_watch = CpuWatch(lambda: conversation.idle)
            cpu_watch.start()
            try:
                if config["text"]:
                    from application.typing import converse_by_text

                    converse_by_text(conversation, sys.stdin)  # until the lines end
                else:
                    while not conversation.wait(0.5):
                        pass
            except Interrupted:
                stopper.raising = False
                stopper.announce()
                cpu_watch.stop()
                conversation.stop()
                raise
            stopper.raising = False  # the run ended by itself: a signal now only hurries it
            cpu_watch.stop()
            conversation.stop()
            return 1 if conversation.crashed else 0
    finally:
        stopper.raising = False
        core.shutdown_resources()


@contextlib.contextmanager
def open_stages(
    config: dict[str, Any],
    adapters: Any,
    stopper: StopOnSignal,
    stages: Sequence[tuple[str, str | None]] | None = None,
) -> Iterator[Any]:
    """Opens every stage's Resource, in order, before the microphone opens: the audio devices
    or files are checked first (a wrong one fails before seconds go into models), then each
    model loads and warms up with a progress line. On the way out, whatever opened is closed in
    the reverse order: the models (a llama.cpp server with its model), the audio last."""
    from adapters.errors import SetupError
    from composition.containers import STAGES, opened_resource
    from ports.language_model import LanguageModelError

    opened: list[Any] = []
    try:
        adapters.tools()  # a bad --tools_module fails before seconds go into the models
        adapters.metrics()  # and so does a --metrics_jsonl that cannot be written
        for name, label in STAGES if stages is None else stages:
            resource = opened_resource(adapters, name)
            if resource is None:
                continue
            # Listed before it opens: a signal just after it opened must still close it (closing
            # one that never opened does nothing).
            opened.append(resource)
            if label is None:
                resource()
                continue
            started = time.monotonic()
            print(f"Loading {label}…", end="", file=sys.stderr, flush=True)
            stopper.line_open = True
            try:
                resource()
            except BaseException as error:
                if stopper.signum is not None:
                    raise  # stopped by a signal: "Stopping." ends the line
                _end_line(stopper, " failed")
                if isinstance(error, LanguageModelError):
                    raise SetupError(provider_failure(config, error)) from None
                raise
            _end_line(stopper, f" ready in {time.monotonic() - started:.1f} s")
        yield adapters
    finally:
        stopper.raising = False
        for resource in reversed(opened):
            resource.shutdown()


def _end_line(stopper: StopOnSignal, text: str) -> None:
    print(text, file=sys.stderr, flush=True)
    stopper.line_open = False


def provider_failure(config: dict[str, Any], error: Exception) -> str:
    """One line for a language model that failed its warm-up: where, why, and what to do."""
    from adapters.openai_common import (
        OFFICIAL_BASE_URL,
        ProviderTimeout,
        ProviderUnreachable,
        is_loopback,
    )

    url = config["responses_api_base_url"] or OFFICIAL_BASE_URL
    if config["llm_backend"] not in API_BACKENDS:
        return f"the {config['llm_backend']} language model failed its warm-up: {error}"
    if isinstance(error, ProviderUnreachable):
        remedy = "start the server" if is_loopback(url) else "check the network"
        return (
            f"cannot reach the language model at {url} ({error.reason}): {remedy} or fix "
            "--responses_api_base_url"
        )
    if isinstance(error, ProviderTimeout):
        return (
            f"the language model at {url} accepted the connection but sent nothing for "
            f"{config['llm_timeout_s']:g} s: is the server stuck or overloaded? "
            "(--llm_timeout_s, --responses_api_base_url)"
        )
    return (
        f"the language model at {url} refused the warm-up request ({error}): check "
        "--model_name, the key (--responses_api_api_key or OPENAI_API_KEY) and "
        "--responses_api_base_url"
    )


def _cli() -> None:
    # Never uninstalled: a signal while the interpreter shuts down still ends it in time.
    stopper = StopOnSignal().install()
    try:
        code = start(None, stopper)
    except BrokenPipeError:  # `... | head`: the reader left, which is no error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    if stopper.signum is not None:
        # Stopped by a signal and already cleaned up: skip the interpreter's teardown, during
        # which Python puts the default handlers back (another Ctrl-C would kill it mid-way).
        stopper.exit_now(code)
    sys.exit(code)


if __name__ == "__main__":
    _cli()
