"""`python -m composition.serve`: the agent served over OpenAI's Realtime protocol, at
`ws://HOST:PORT/v1/realtime`, with a browser page at `http://HOST:PORT/`.

The same settings as local mode (plus the server's own: --host, --port, --serve_token,
--max_sessions, --max_message_kb) and the same start-up: the configuration is checked whole,
then the models load once, with progress lines, and every session shares them. Each session
gets its own conversation (history, turn-taking, barge-in), its own VAD (it keeps state) and the
client's audio; no sound device of this machine is opened.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from composition.config import SERVE_PROG
from composition.local import Interrupted, StopOnSignal, llm_model, open_stages, start
from composition.settings import ConfigError

# The stages loaded once for every session: a session brings its own audio and VAD.
SHARED_STAGES = (("llm", "language model"), ("end_of_turn", "end-of-turn model"),
                 ("stt", "speech-to-text"), ("tts", "text-to-speech"))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """The CLI, callable in-process (tests): signal handlers are restored on return."""
    with StopOnSignal() as stopper:
        return start(argv, stopper, serve, SERVE_PROG)


def check_server(config: dict[str, Any]) -> None:
    """Anyone who can reach the port can talk to the agent: an address other than loopback
    needs a token."""
    from adapters.openai_common import is_loopback_host

    if config["serve_token"] or is_loopback_host(config["host"]):
        return
    raise ConfigError(
        f"binding {config['host']} lets other machines talk to the agent: set --serve_token "
        "(or VOICE_AGENT_SERVE_TOKEN), or bind 127.0.0.1"
    )


def serve(config: dict[str, Any], stopper: StopOnSignal) -> int:
    from adapters.blas_threads import limit_blas_threads
    from adapters.errors import SetupError
    from adapters.realtime_server import RealtimeServer
    from composition.containers import Adapters, Core

    check_server(config)
    config = {**config, "text": False}  # the sessions speak and listen
    core = Core(config=config)
    core.init_resources()
    try:
        with open_stages(config, Adapters(config=config), stopper, SHARED_STAGES) as adapters:
            limit_blas_threads()
            server = RealtimeServer(
                session_opener(config, adapters), host=config["host"], port=config["port"],
                token=config["serve_token"], max_sessions=config["max_sessions"],
                max_message_bytes=config["max_message_kb"] * 1024,
            )  # fmt: skip
            try:
                port = server.start()
            except OSError as error:
                reason = error.strerror or error
                raise SetupError(
                    f"cannot listen on {config['host']}:{config['port']} ({reason}): choose "
                    "another --port or --host"
                ) from None
            host = config["host"]
            print(
                f"Serving: the page at http://{host}:{port}/, the Realtime API at "
                f"ws://{host}:{port}/v1/realtime. Ctrl-C stops.",
                file=sys.stderr,
                flush=True,
            )
            try:
                while True:
                    time.sleep(1.0)  # the signal ends it
            except Interrupted:
                stopper.raising = False
                stopper.announce()
                server.stop()
                raise
    finally:
        stopper.raising = False
        core.shutdown_resources()


def session_opener(config: dict[str, Any], adapters: Any) -> Callable[[Any], Any]:
    """Builds a session for each connection: a conversation of its own around the client's
    audio, console and voice, wired by the session container to the shared models."""
    from dependency_injector import providers

    from adapters.realtime_session import Session
    from composition.containers import SessionAdapters, build_agent

    model = llm_model(config) or config["llm_backend"]

    def open_session(send: Callable[[dict[str, Any]], None]) -> Session:
        def agent(audio: Any, console: Any, voice: Any) -> Any:
            session_adapters = SessionAdapters(
                shared=adapters, audio=providers.Object(audio),
                console=providers.Object(console), tts=providers.Object(voice),
            )  # fmt: skip
            return build_agent(config, session_adapters).conversation()

        return Session(send, agent, adapters.tts(), adapters.stt(), model)

    return open_session


def _cli() -> None:
    stopper = StopOnSignal().install()
    code = start(None, stopper, serve, SERVE_PROG)
    if stopper.signum is not None:
        stopper.exit_now(code)
    sys.exit(code)


if __name__ == "__main__":
    _cli()
