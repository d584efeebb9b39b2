"""Real servers on 127.0.0.1 for the OpenAI-compatible adapters: llama.cpp serving the SmolLM2
GGUF (in this process, or in a child process that a test can kill), a proxy that records what
the adapters send, and small servers that fail on purpose."""

from __future__ import annotations

import http.client
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.errors import SetupError
from adapters.llama_server import LlamaServer
from adapters.openai_common import OpenAICompatibleModel, ProviderTimeout, ProviderUnreachable
from domain.messages import ChatMessage
from ports.language_model import LanguageModelError
from tests.replies import whole_reply

REPO_ROOT = Path(__file__).resolve().parents[2]
HISTORY = [
    ChatMessage("system", "You are a helpful assistant. Answer in one short sentence."),
    ChatMessage("user", "Hi."),
    ChatMessage("assistant", "Hello! How can I help?"),
    ChatMessage("user", "What is the capital of France?"),
]
LONG_ASK = [ChatMessage("user", "Write a very long story about a dragon and a knight.")]


@pytest.fixture(scope="module")
def llama_server() -> Iterator[LlamaServer]:
    with LlamaServer(threads=1) as server:
        yield server


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def http_serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Runs `handler` on a free 127.0.0.1 port; yields its /v1 base URL."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _relay(handler: http.server.BaseHTTPRequestHandler, upstream_host: str, body: bytes) -> None:
    """Sends `handler`'s POST on to `upstream_host` and its whole answer back."""
    connection = http.client.HTTPConnection(upstream_host, timeout=30)
    headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
    connection.request("POST", handler.path, body=body, headers=headers)
    answer = connection.getresponse()
    payload = answer.read()
    connection.close()
    handler.send_response(answer.status)
    handler.send_header("Content-Type", answer.getheader("Content-Type", "text/plain"))
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


@dataclass
class RecordingProxy:
    """Forwards every POST to llama.cpp and keeps each request's headers (lower-cased) and JSON
    body: what the server really received. Replies are relayed whole: SSE parses the same."""

    url: str
    requests: list[tuple[dict[str, str], dict[str, Any]]]

    @property
    def last_body(self) -> dict[str, Any]:
        return self.requests[-1][1]


@contextmanager
def recording_proxy(upstream: str, delay_s: float = 0.0) -> Iterator[RecordingProxy]:
    """A RecordingProxy in front of `upstream` (http://127.0.0.1:PORT), answering each request
    `delay_s` late."""
    upstream_host = upstream.removeprefix("http://").split("/")[0]
    requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            requests.append(({k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
            time.sleep(delay_s)
            _relay(self, upstream_host, body)

        def log_message(self, *_: Any) -> None:
            pass

    with http_serving(Handler) as url:
        yield RecordingProxy(url, requests)


@contextmanager
def late_proxy(upstream: str, late: int, late_s: float) -> Iterator[str]:
    """Relays to `upstream` (http://127.0.0.1:PORT), except that its first `late` requests get
    nothing for `late_s`, then a closed connection: a server too busy to answer them in time.
    Yields its /v1 base URL."""
    upstream_host = upstream.removeprefix("http://").split("/")[0]
    seen = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen[0] += 1
            if seen[0] <= late:
                time.sleep(late_s)
                self.close_connection = True
                return
            _relay(self, upstream_host, body)

        def log_message(self, *_: Any) -> None:
            pass

    with http_serving(Handler) as url:
        yield url


@contextmanager
def stalling_proxy(upstream: str, deltas: int = 3) -> Iterator[str]:
    """Relays a streamed reply from `upstream` (http://127.0.0.1:PORT) event by event, then,
    after `deltas` events that carry a delta, keeps the connection open and sends nothing more:
    a provider that hangs mid-reply. Yields its /v1 base URL."""
    upstream_host = upstream.removeprefix("http://").split("/")[0]
    released = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            connection = http.client.HTTPConnection(upstream_host, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            connection.request("POST", self.path, body=body, headers=headers)
            answer = connection.getresponse()
            # HTTP/1.0 without a length: the body runs until the connection closes.
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.getheader("Content-Type", "text/plain"))
            self.end_headers()
            seen = 0
            while seen < deltas and (line := answer.readline()):
                self.wfile.write(line)
                self.wfile.flush()
                seen += line.startswith(b"data:") and b'"delta"' in line
            connection.close()
            released.wait(60)

        def log_message(self, *_: Any) -> None:
            pass

    try:
        with http_serving(Handler) as url:
            yield url
    finally:
        released.set()


@contextmanager
def failing_server(status: int = 500) -> Iterator[tuple[str, list[str]]]:
    """Answers every request with `status` and an error body that quotes the caller's key, as
    some providers do. Yields its URL and the paths it was asked for (retries included)."""
    calls: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            body = json.dumps({"error": {"message": f"upstream exploded for key {key}"}}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    with http_serving(Handler) as url:
        yield url, calls


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a hung provider."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@contextmanager
def llama_server_process(
    threads: int = 1,
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """A child Python that owns a LlamaServer, for tests that kill the owner. Yields the child
    and {"base_url", "api_key"}."""
    script = (
        "import json, sys, time\n"
        "from adapters.llama_server import LlamaServer\n"
        f"server = LlamaServer(threads={threads})\n"
        "print(json.dumps({'base_url': server.base_url, 'api_key': server.api_key}), flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        # The server's own log lines come first on stdout.
        line = next(line for line in child.stdout if line.startswith('{"base_url"'))
        yield child, json.loads(line)
    finally:
        child.kill()
        child.wait()


def answers(base_url: str) -> bool:
    """Whether anything accepts a connection at `base_url`'s port."""
    host, port = base_url.removeprefix("http://").split("/")[0].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
def official_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Gives every `openai` client an in-memory transport, so a test sees what would go to
    api.openai.com without a network. Each request is answered 400 after being recorded."""
    import httpx2
    import openai

    sent: list[dict[str, Any]] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(
            {
                "url": str(request.url),
                "authorization": request.headers["Authorization"],
                "body": json.loads(request.content),
            }
        )
        return httpx2.Response(400, json={"error": {"message": "recorded, not served"}})

    real_client = openai.OpenAI

    def recording_client(**kwargs: Any) -> openai.OpenAI:
        kwargs["http_client"] = httpx2.Client(transport=httpx2.MockTransport(answer))
        return real_client(**kwargs)

    monkeypatch.setattr(openai, "OpenAI", recording_client)
    return sent


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[RecordingProxy]:
    with recording_proxy(llama_server.address) as proxy:
        yield proxy


class ProviderContract:
    """What both OpenAI-compatible adapters promise about keys, cancellation and failures.
    A test module subclasses it as `Test...` and sets `model_class`."""

    model_class: type[OpenAICompatibleModel]

    def test_the_key_falls_back_to_OPENAI_API_KEY(
        self, llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", llama_server.api_key)
        with recording_proxy(llama_server.address) as proxy:
            model = self.model_class(base_url=proxy.url, max_output_tokens=8)
            assert whole_reply(model, HISTORY, background=True)
        assert proxy.requests[0][0]["authorization"] == f"Bearer {llama_server.api_key}"

    def test_a_proxy_from_the_environment_is_bypassed_for_loopback(
        self, llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(variable, closed_port_url().removesuffix("/v1"))
        model = self.model_class(
            base_url=llama_server.base_url, api_key=llama_server.api_key, max_output_tokens=8
        )
        assert whole_reply(model, HISTORY, background=True)

    def test_a_loopback_server_needs_no_key(
        self, official_requests: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        model = self.model_class(base_url="http://localhost:8080/v1")
        with pytest.raises(LanguageModelError):
            whole_reply(model, HISTORY, background=True)
        assert official_requests[0]["authorization"] == "Bearer not-needed"

    def test_the_official_url_without_a_key_fails_before_any_request(
        self, official_requests: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        with pytest.raises(SetupError) as failure:
            self.model_class()
        assert "OPENAI_API_KEY" in str(failure.value)
        assert "\n" not in str(failure.value)
        assert official_requests == []

    def test_cancel_stops_the_reply_early(self, llama_server: LlamaServer) -> None:
        model = self.model_class(
            base_url=llama_server.base_url, api_key=llama_server.api_key, max_output_tokens=400
        )
        cancel = threading.Event()
        deltas = []
        started = time.monotonic()
        for delta in model.stream(LONG_ASK, cancel):
            deltas.append(delta)
            if len(deltas) == 3:
                cancel.set()
        assert len(deltas) == 3
        assert time.monotonic() - started < 2.0

    def test_a_server_killed_mid_reply_raises(self) -> None:
        with llama_server_process() as (child, server):
            model = self.model_class(
                base_url=server["base_url"], api_key=server["api_key"], max_output_tokens=1000
            )
            deltas = model.stream(LONG_ASK, threading.Event())
            assert next(deltas)
            child.send_signal(signal.SIGKILL)
            with pytest.raises(LanguageModelError):
                for _ in deltas:
                    pass

    def test_a_closed_port_raises_after_one_retry_naming_the_cause(self) -> None:
        model = self.model_class(base_url=closed_port_url())
        with pytest.raises(ProviderUnreachable, match=r"cannot reach 127\.0\.0\.1") as failure:
            list(model.stream(HISTORY, threading.Event()))
        assert failure.value.reason == "connection refused"

    def test_http_500_is_retried_once_then_raised_without_the_key(self) -> None:
        key = "sk-test-0123456789abcdef"
        with failing_server(500) as (url, calls):
            model = self.model_class(base_url=url, api_key=key)
            with pytest.raises(LanguageModelError, match="HTTP 500") as failure:
                list(model.stream(HISTORY, threading.Event()))
        assert len(calls) == 2  # one retry, before any text
        assert "0123456789abcdef" not in str(failure.value)
        assert "upstream exploded" in str(failure.value)

    def test_a_refusal_that_will_not_change_is_not_retried(self) -> None:
        with failing_server(400) as (url, calls):
            model = self.model_class(base_url=url, api_key="sk-test")
            with pytest.raises(LanguageModelError, match="HTTP 400"):
                list(model.stream(HISTORY, threading.Event()))
        assert len(calls) == 1

    def test_a_hung_server_times_out_once_without_a_retry(self) -> None:
        with silent_server() as url:
            model = self.model_class(base_url=url, timeout_s=1.0)
            started = time.monotonic()
            with pytest.raises(ProviderTimeout, match="did not answer in time"):
                list(model.stream(HISTORY, threading.Event()))
        assert 1.0 <= time.monotonic() - started < 1.8  # a timeout is final: no second wait

    def test_a_stream_that_stalls_mid_reply_raises_within_the_timeout(
        self, llama_server: LlamaServer
    ) -> None:
        with stalling_proxy(llama_server.address, deltas=4) as url:
            model = self.model_class(
                base_url=url, api_key=llama_server.api_key, max_output_tokens=400, timeout_s=1.0
            )
            deltas: list[str] = []
            last = time.monotonic()
            with pytest.raises(ProviderTimeout, match="did not answer in time"):
                for delta in model.stream(LONG_ASK, threading.Event()):
                    deltas.append(delta)
                    last = time.monotonic()
            stalled_for = time.monotonic() - last
        assert deltas  # text came first, then nothing
        assert 0.9 <= stalled_for < 1.8

    def test_background_work_may_wait_longer_than_a_reply(self, llama_server: LlamaServer) -> None:
        with recording_proxy(llama_server.address, delay_s=1.5) as proxy:
            model = self.model_class(
                base_url=proxy.url, api_key=llama_server.api_key, max_output_tokens=8, timeout_s=1.0
            )
            with pytest.raises(ProviderTimeout):
                list(model.stream(HISTORY, threading.Event()))
            assert whole_reply(
                model, HISTORY, background=True
            )  # a history summary: no watchdog waits for it

    def test_sampling_settings_reach_the_server_only_when_given(
        self, proxy: RecordingProxy, llama_server: LlamaServer
    ) -> None:
        def make(**options: Any) -> OpenAICompatibleModel:
            return self.model_class(
                base_url=proxy.url, api_key=llama_server.api_key, max_output_tokens=24, **options
            )

        assert whole_reply(make(), HISTORY, background=True)
        assert "temperature" not in proxy.last_body and "top_p" not in proxy.last_body

        greedy = make(temperature=0.0, top_p=0.9)
        first, second = (
            whole_reply(greedy, HISTORY, background=True),
            whole_reply(greedy, HISTORY, background=True),
        )
        assert (proxy.last_body["temperature"], proxy.last_body["top_p"]) == (0.0, 0.9)
        assert first == second  # greedy on the real server: the same reply twice
