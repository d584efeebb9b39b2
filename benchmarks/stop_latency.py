"""How long the real CLI takes to end after SIGINT or SIGTERM, at each moment of its life.

    python -m benchmarks.stop_latency [--runs 3]

Each case starts `python -m composition.local`, waits for a line of its output, sends the signal
and measures until the process is gone; it prints the exit code, the time, how many times
"Stopping." was printed and whether a traceback appeared. The API cases point the agent at a
127.0.0.1 socket that accepts and never answers (a hung warm-up); the embedded cases replay a
minute of silence.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stop_after(args: list[str], line: str, signum: int, delay_s: float, twice: bool) -> str:
    agent = subprocess.Popen(
        [sys.executable, "-m", "composition.local", "--log_level", "warning", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert agent.stdout is not None
    output: list[str] = []
    stdout = agent.stdout
    reader = threading.Thread(
        target=lambda: output.extend(iter(lambda: stdout.read(1), "")), daemon=True
    )
    reader.start()
    while line not in "".join(output):
        if agent.poll() is not None:
            return "exited before " + repr(line) + ":\n" + "".join(output)
        time.sleep(0.01)
    time.sleep(delay_s)
    sent = time.monotonic()
    agent.send_signal(signum)
    if twice:
        time.sleep(0.02)
        agent.send_signal(signum)
    agent.wait(10)
    took_ms = (time.monotonic() - sent) * 1000
    reader.join(2)
    text = "".join(output)
    return (
        f"exit {agent.returncode:4d} in {took_ms:4.0f} ms, 'Stopping.' x{text.count('Stopping.')}"
        f", traceback: {'Traceback' in text}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as work, socket.socket() as hung:
        silence = Path(work) / "silence.wav"
        with wave.open(str(silence), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(16000)
            wav.writeframes(bytes(2 * 16000 * 60))
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/v1"
        api = ["--profile", "api", "--responses_api_base_url", url, "--input_wav", str(silence)]
        embedded = ["--input_wav", str(silence)]
        cases = [
            ("api, hung warm-up, SIGINT", api, "Loading language model", signal.SIGINT, 0.3, False),
            ("api, hung warm-up, SIGTERM", api, "Loading language model", signal.SIGTERM, 0.3,
             False),
            ("api, hung warm-up, SIGINT twice", api, "Loading language model", signal.SIGINT,
             0.3, True),
            ("embedded, llama.cpp loading", embedded, "Loading language model", signal.SIGINT,
             0.05, False),
            ("embedded, loading VAD", embedded, "Loading voice activity", signal.SIGINT, 0.05,
             False),
            ("embedded, loading STT", embedded, "Loading speech-to-text", signal.SIGINT, 0.05,
             False),
            ("embedded, loading TTS", embedded, "Loading text-to-speech", signal.SIGINT, 0.05,
             False),
            ("embedded, listening, SIGINT", embedded, "Listening.", signal.SIGINT, 1.0, False),
            ("embedded, listening, SIGTERM", embedded, "Listening.", signal.SIGTERM, 1.0, False),
            ("embedded, stopping, SIGINT twice", embedded, "Listening.", signal.SIGINT, 1.0,
             True),
        ]  # fmt: skip
        for name, args, line, signum, delay_s, twice in cases:
            for _ in range(runs):
                print(f"{name:34s} {stop_after(args, line, signum, delay_s, twice)}", flush=True)


if __name__ == "__main__":
    main()
