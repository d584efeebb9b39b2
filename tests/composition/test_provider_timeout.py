"""A language model server that hangs, through the real CLI and real models: the turn ends in the
spoken apology after --llm_timeout_s, long before the watchdog, and the next turn is served."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from benchmarks.spoken_questions import synthesise_questions

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 2.0


@contextmanager
def stalling_chat_server(released: threading.Event) -> Iterator[str]:
    """Chat Completions that answer the warm-up (not streamed), then send one chunk of every
    streamed reply and nothing more until `released`."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not body.get("stream"):
                reply = json.dumps({
                    "id": "warm", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "Hi"}}],
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = {"id": "r", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "finish_reason": None,
                                  "delta": {"content": "Well, let me"}}]}  # fmt: skip
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
            released.wait(120)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        released.set()
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_server_that_stalls_mid_reply_gets_the_apology_before_the_watchdog(
    tmp_path: Path,
) -> None:
    questions, replies, metrics = (tmp_path / n for n in ("q.wav", "r.wav", "m.jsonl"))
    duration = synthesise_questions(2, gap_s=8.0, path=questions, lead_s=1.0)
    released = threading.Event()
    with stalling_chat_server(released) as url:
        done = subprocess.run(
            [sys.executable, "-m", "composition.local", "--profile", "api",
             "--llm_backend", "chat-completions", "--responses_api_base_url", url,
             "--llm_timeout_s", str(TIMEOUT_S), "--prefetch_replies", "false",
             "--input_wav", str(questions), "--output_wav", str(replies),
             "--metrics_jsonl", str(metrics), "--log_level", "warning"],
            cwd=ROOT, capture_output=True, text=True, timeout=duration + 120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert len(records) == 2  # the second turn was served, not stuck behind the first
    for record in records:
        assert record["outcome"] == "failed"
        assert "did not answer in time" in record["error"]
        # The apology plays after the timeout, far from the 30 s watchdog.
        assert TIMEOUT_S * 1000 < record["voice_to_voice_ms"] < TIMEOUT_S * 1000 + 4000
    assert done.stdout.count("Sorry, I ran into a problem.") == 2
    with wave.open(str(replies)) as wav:
        pcm = memoryview(wav.readframes(wav.getnframes())).cast("h")
    for record in records:
        start = int((record["speech_end_s"] + record["voice_to_voice_ms"] / 1000) * 16000)
        assert max(abs(s) for s in pcm[start : start + 8000]) > 1000  # the apology, audible
