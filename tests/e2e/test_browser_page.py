"""The browser page end to end: the real server (`composition.serve`, real models) and headless
Chromium, whose fake microphone plays a spoken question; the page is read over the DevTools
protocol."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from benchmarks.spoken_questions import SAMPLE_RATE, spoken_questions
from tests.e2e.served_agent import serving, stop, wait_for

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Chromium loops the file: the question, then long enough a silence for the reply to be heard
# out before the question comes again.
LEAD_S, GAP_S = 1.0, 12.0
# Generous: two cores, three models and a browser.
ANSWER_S = 120.0
# Read in the page: its connection state, both sides' words and what came back.
PAGE_STATE = """document.getElementById("transcript") && JSON.stringify({
  state: document.body.dataset.state,
  status: document.getElementById("status").textContent,
  user: [...document.querySelectorAll("#transcript .user")].map((e) => e.textContent),
  assistant: [...document.querySelectorAll("#transcript .assistant")].map((e) => e.textContent),
  stats: window.agentStats || null,
})"""


@pytest.mark.slow
def test_the_page_hears_a_spoken_question_and_plays_the_answer(tmp_path: Path) -> None:
    ((question, speech),) = spoken_questions(1)  # "What is the capital of France?"
    microphone = tmp_path / "question.wav"
    silence = bytes(2 * SAMPLE_RATE)
    write_wav(microphone, silence * int(LEAD_S) + speech + silence * int(GAP_S))
    with (
        serving(tmp_path, "--llm_gen_max_new_tokens", "24") as served,
        browsing(tmp_path, served.page_url, microphone) as page,
    ):
        state: dict[str, Any] = {}

        def answered() -> bool:
            read = page.evaluate(PAGE_STATE)
            if not read:  # still loading
                return False
            state.update(json.loads(read))
            stats = state["stats"] or {}
            return (
                any("capital" in words.lower() for words in state["user"])
                and any(words.strip() for words in state["assistant"])
                and stats.get("audioBytesReceived", 0) > 0
                and stats.get("responsesDone", 0) >= 1
            )

        if not wait_for(answered, ANSWER_S):
            pytest.fail(
                f"no answer to {question!r} within {ANSWER_S:.0f} s; the page: {state}; its "
                f"console: {page.console[-20:]}; the server's log ends:\n{served.log()[-3000:]}"
            )
        assert state["state"] == "connected"
        assert state["stats"]["lastError"] is None, state  # the page's events were all accepted


# -- the browser ------------------------------------------------------------------------------


class Page:
    """One page over the DevTools protocol: evaluates expressions, keeps its console."""

    def __init__(self, websocket_url: str) -> None:
        self._connection: ClientConnection = connect(websocket_url, max_size=None)
        self._ids = iter(range(1, 1 << 30))
        self._lock = threading.Lock()
        self.console: list[str] = []
        self._call("Runtime.enable")

    def evaluate(self, expression: str) -> Any:
        result = self._call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self._connection.close()

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        with self._lock:
            call_id = next(self._ids)
            self._connection.send(json.dumps({"id": call_id, "method": method, "params": params}))
            while True:
                message = json.loads(self._connection.recv(timeout=30))
                if message.get("id") == call_id:
                    if "error" in message:
                        raise AssertionError(f"{method}: {message['error']}")
                    result: dict[str, Any] = message["result"]
                    return result
                self._keep(message)

    def _keep(self, message: dict[str, Any]) -> None:
        """Console lines and uncaught exceptions, for a failure's message."""
        params = message.get("params", {})
        if message.get("method") == "Runtime.consoleAPICalled":
            words = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console.append(f"{params['type']}: {words}")
        elif message.get("method") == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.console.append(f"exception: {details.get('exception', details)}")


@contextlib.contextmanager
def browsing(home: Path, url: str, microphone: Path) -> Iterator[Page]:
    """Headless Chromium on `url` (connecting at once), `microphone` as its microphone."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        pytest.fail("Chromium is missing: apt-get install $(cat scripts/apt-packages.txt)")
    profile = home / "chromium"
    process = subprocess.Popen(
        [browser, "--headless=new", "--no-sandbox", "--no-first-run", "--disable-gpu",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         f"--use-file-for-fake-audio-capture={microphone}",
         "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", f"{url}?autoconnect=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    page: Page | None = None
    try:
        port_file = profile / "DevToolsActivePort"  # the port chosen, written once listening
        if not wait_for(lambda: port_file.exists() and port_file.read_text().count("\n") >= 1, 30):
            pytest.fail("Chromium did not open its DevTools port within 30 s")
        port = port_file.read_text().split()[0]
        pages: list[dict[str, Any]] = []

        def opened() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
                targets = json.load(answer)
            pages[:] = [t for t in targets if t["type"] == "page" and t["url"].startswith(url)]
            return bool(pages)

        if not wait_for(opened, 30):
            pytest.fail(f"Chromium did not open {url} within 30 s")
        page = Page(pages[0]["webSocketDebuggerUrl"])
        yield page
    finally:
        if page is not None:
            page.close()
        stop(process, signal.SIGTERM)


# -- helpers ----------------------------------------------------------------------------------


def write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
