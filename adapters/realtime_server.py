"""The Realtime server: `/v1/realtime` over WebSocket (one `Session` per connection, on the
connection's own thread) and the browser page at `/`, from one `websockets` server.

Guarded at the door: a token (`Authorization: Bearer <token>`, or the browser's subprotocol
`openai-insecure-api-key.<token>`) when one is set, at most `max_sessions` sessions (HTTP 503
beyond), at most `max_message_bytes` a message (the connection is closed with 1009 beyond). A
client that vanishes without closing is found by the keepalive pings and its session freed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

log = logging.getLogger(__name__)

REALTIME_PATH = "/v1/realtime"
SUBPROTOCOL = "realtime"
TOKEN_SUBPROTOCOL = "openai-insecure-api-key."
WEB = Path(__file__).with_name("web")
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/audio-worklet.js": ("audio-worklet.js", "text/javascript; charset=utf-8"),
}
# A vanished client (no close, no TCP reset) is found within about twice this.
KEEPALIVE_S = 10.0

Event = dict[str, Any]


class _PreconnectsAreQuiet(logging.Filter):
    """Browsers open sockets ahead of need and close them unused: the server would log each as
    a failed handshake, with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        closed_early = record.exc_info is not None and isinstance(
            record.exc_info[1], (EOFError, ConnectionError, TimeoutError)
        )
        return not (closed_early and record.getMessage() == "opening handshake failed")


_PRECONNECTS_ARE_QUIET = _PreconnectsAreQuiet()


class SessionLike(Protocol):
    def start(self) -> None: ...

    def handle(self, event: Any) -> None: ...

    def error(self, code: str, message: str, client_event_id: str | None = None) -> None: ...

    def close(self) -> None: ...


class RealtimeServer:
    def __init__(
        self,
        open_session: Callable[[Callable[[Event], None]], SessionLike],
        *,
        host: str,
        port: int,
        token: str | None,
        max_sessions: int,
        max_message_bytes: int,
    ) -> None:
        """`open_session(send)` builds a session that sends its events through `send`."""
        self._open_session = open_session
        self._host, self._port, self._token = host, port, token
        self._max_sessions, self._max_message_bytes = max_sessions, max_message_bytes
        self._lock = threading.Lock()
        self._sessions: set[SessionLike] = set()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def start(self) -> int:
        """Listening; returns the port (an ephemeral one when asked for port 0)."""
        logging.getLogger("websockets.server").addFilter(_PRECONNECTS_ARE_QUIET)  # once
        self._server = serve(
            self._serve_connection, self._host, self._port,
            process_request=self._process_request, select_subprotocol=_select_subprotocol,
            max_size=self._max_message_bytes, compression=None,
            ping_interval=KEEPALIVE_S, ping_timeout=KEEPALIVE_S,
        )  # fmt: skip
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="realtime-server", daemon=True
        )
        self._thread.start()
        port: int = self._server.socket.getsockname()[1]
        return port

    def stop(self) -> None:
        """Refuses new connections, then closes every session (their conversations stop)."""
        if self._server is not None:
            self._server.shutdown()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.close()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if path in PAGES:
            name, content_type = PAGES[path]
            return Response(
                HTTPStatus.OK, "OK",
                Headers({"Content-Type": content_type, "Cache-Control": "no-store"}),
                (WEB / name).read_bytes(),
            )  # fmt: skip
        if path != REALTIME_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found: the Realtime API is at "
                                      f"{REALTIME_PATH}, the page at /\n")  # fmt: skip
        if not self._authorised(request.headers):
            return connection.respond(HTTPStatus.UNAUTHORIZED, "A valid token is needed: "
                                      "Authorization: Bearer <token>\n")  # fmt: skip
        if self.sessions >= self._max_sessions:
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, f"At most {self._max_sessions} sessions at once\n"
            )
        return None

    def _authorised(self, headers: Headers) -> bool:
        if self._token is None:
            return True
        given = [headers.get("Authorization", "").removeprefix("Bearer ")]
        for value in headers.get_all("Sec-WebSocket-Protocol"):
            given += [
                name.strip()[len(TOKEN_SUBPROTOCOL):] for name in value.split(",")
                if name.strip().startswith(TOKEN_SUBPROTOCOL)
            ]  # fmt: skip
        return any(hmac.compare_digest(token.encode(), self._token.encode()) for token in given)

    def _serve_connection(self, connection: ServerConnection) -> None:
        sending = threading.Lock()  # one event at a time, from the session's several threads

        def send(event: Event) -> None:
            text = json.dumps(event)
            # A client that left is found by the receiving loop, which ends the session.
            with sending, contextlib.suppress(ConnectionClosed):
                connection.send(text)

        with self._lock:
            full = len(self._sessions) >= self._max_sessions
        if full:  # two connections raced past the door's check
            connection.close(1013, "too many sessions")
            return
        try:
            session = self._open_session(send)
        except Exception as error:  # a model that failed for this session: it alone is refused
            log.exception("a session could not start")
            connection.close(1011, f"the session could not start: {error}"[:120])
            return
        with self._lock:
            self._sessions.add(session)
        log.info("a session opened from %s", connection.remote_address[0])
        try:
            session.start()
            for message in connection:
                self._handle(session, message)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._sessions.discard(session)
            session.close()
            log.info("a session closed (%s)", connection.close_reason or "the client left")

    @staticmethod
    def _handle(session: SessionLike, message: str | bytes) -> None:
        if isinstance(message, bytes):
            session.error("invalid_event", "binary frames are not part of the protocol: JSON text")
            return
        try:
            event = json.loads(message)
        except ValueError:
            session.error("invalid_json", "the message is not valid JSON")
            return
        session.handle(event)


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """`realtime` when the client offers it (browsers fail a connection whose offer is left
    unanswered); the token's subprotocol is never echoed."""
    return Subprotocol(SUBPROTOCOL) if SUBPROTOCOL in offered else None
