"""The Realtime server's door, against real WebSocket and HTTP clients on 127.0.0.1, with
hand-written sessions: pages, the token, the limits, bad messages, clients that vanish."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol

from adapters.realtime_server import RealtimeServer

TOKEN = "s3cret-token"


class EchoSession:
    """Answers every event with an `echo` of its type; errors go out as `error` events."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send
        self.closed = threading.Event()

    def start(self) -> None:
        self._send({"type": "session.created"})

    def handle(self, event: Any) -> None:
        self._send({"type": "echo", "of": event.get("type")})

    def error(self, code: str, message: str, client_event_id: str | None = None) -> None:
        self._send({"type": "error", "error": {"code": code, "message": message}})

    def close(self) -> None:
        self.closed.set()


@pytest.fixture
def opened() -> list[EchoSession]:
    return []


def start_server(opened: list[EchoSession], **limits: Any) -> Iterator[tuple[RealtimeServer, str]]:
    def open_session(send: Callable[[dict[str, Any]], None]) -> EchoSession:
        session = EchoSession(send)
        opened.append(session)
        return session

    options = {"token": None, "max_sessions": 2, "max_message_bytes": 4096, **limits}
    server = RealtimeServer(open_session, host="127.0.0.1", port=0, **options)
    port = server.start()
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def served(opened: list[EchoSession]) -> Iterator[tuple[RealtimeServer, str]]:
    yield from start_server(opened)


@pytest.fixture
def guarded(opened: list[EchoSession]) -> Iterator[tuple[RealtimeServer, str]]:
    yield from start_server(opened, token=TOKEN)


def receive(client: Connection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(client.recv(timeout=5))
    return event


def test_the_page_and_its_scripts_are_served_and_other_paths_are_not(served: Any) -> None:
    _, address = served
    for path, kind in (("/", "text/html"), ("/app.js", "javascript"),
                       ("/audio-worklet.js", "javascript")):  # fmt: skip
        with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as response:
            assert kind in response.headers["Content-Type"]
            assert response.read()
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://{address}/secrets", timeout=5)
    assert missing.value.code == 404


def test_a_session_answers_and_bad_messages_are_error_events_on_a_live_session(
    served: Any,
) -> None:
    _, address = served
    with connect(f"ws://{address}/v1/realtime", subprotocols=[Subprotocol("realtime")]) as client:
        assert client.subprotocol == "realtime"
        assert receive(client)["type"] == "session.created"
        client.send("{not json")
        assert receive(client)["error"]["code"] == "invalid_json"
        client.send(b"\x00\x01")
        assert receive(client)["error"]["code"] == "invalid_event"
        client.send(json.dumps({"type": "response.create"}))
        assert receive(client) == {"type": "echo", "of": "response.create"}


def test_without_the_token_the_door_stays_shut(guarded: Any, opened: list[Any]) -> None:
    _, address = guarded
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{address}/v1/realtime")
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        connect(f"ws://{address}/v1/realtime",
                additional_headers={"Authorization": "Bearer wrong"})  # fmt: skip
    assert opened == []


@pytest.mark.parametrize("how", ["header", "subprotocol"])
def test_the_token_opens_it_as_a_header_or_as_the_browsers_subprotocol(
    guarded: Any, how: str
) -> None:
    _, address = guarded
    options: dict[str, Any] = (
        {"additional_headers": {"Authorization": f"Bearer {TOKEN}"}} if how == "header"
        else {"subprotocols": [Subprotocol("realtime"),
                             Subprotocol(f"openai-insecure-api-key.{TOKEN}")]}
    )  # fmt: skip
    with connect(f"ws://{address}/v1/realtime", **options) as client:
        assert receive(client)["type"] == "session.created"
        if how == "subprotocol":
            assert client.subprotocol == "realtime"  # the token is never echoed


def test_sessions_beyond_the_limit_are_refused_and_a_closed_one_frees_its_place(
    served: Any, opened: list[EchoSession]
) -> None:
    _, address = served
    first = connect(f"ws://{address}/v1/realtime")
    second = connect(f"ws://{address}/v1/realtime")
    for client in (first, second):
        assert receive(client)["type"] == "session.created"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{address}/v1/realtime")
    assert refused.value.response.status_code == 503
    first.close()
    assert opened[0].closed.wait(5)
    with connect(f"ws://{address}/v1/realtime") as third:
        assert receive(third)["type"] == "session.created"
    second.close()


def test_a_message_over_the_limit_closes_that_connection_only(
    served: Any, opened: list[EchoSession]
) -> None:
    _, address = served
    with connect(f"ws://{address}/v1/realtime") as other:
        receive(other)
        client = connect(f"ws://{address}/v1/realtime")
        receive(client)
        client.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 8192}))
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert opened[1].closed.wait(5)
        other.send(json.dumps({"type": "response.cancel"}))
        assert receive(other)["of"] == "response.cancel"


def test_a_client_that_vanishes_frees_its_session(served: Any, opened: list[EchoSession]) -> None:
    server, address = served
    client = connect(f"ws://{address}/v1/realtime")
    receive(client)
    client.socket.shutdown(socket.SHUT_RDWR)  # the process died: no closing handshake
    assert opened[0].closed.wait(5)
    assert server.sessions == 0


def test_a_socket_closed_before_its_request_logs_no_error_but_other_failures_do(
    served: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """As the server logs them: a browser's preconnect, never used, and a real failure."""
    server_log = logging.getLogger("websockets.server")
    for error in (EOFError("connection closed while reading HTTP request line"),
                  ValueError("invalid Sec-WebSocket-Key")):  # fmt: skip
        try:
            raise error
        except type(error):
            server_log.error("opening handshake failed", exc_info=True)
    [logged] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], ValueError)
