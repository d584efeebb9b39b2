"""The real Realtime server as end-to-end tests run it: `python -m composition.serve` on a free
port, offline, in a home of its own; stopped with Ctrl-C (SIGINT) as a user would."""

from __future__ import annotations

import contextlib
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs

from adapters.model_files import models_dir
from tests.e2e.offline_agent import ROOT

START_TIMEOUT_S = 180.0


@attrs.frozen
class Served:
    port: int
    metrics: Path

    @property
    def base_url(self) -> str:
        """For the openai client: it derives ws://.../v1/realtime from it."""
        return f"http://127.0.0.1:{self.port}/v1"


@contextlib.contextmanager
def serving(home: Path, *flags: str) -> Iterator[Served]:
    metrics = home / "turns.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "composition.serve", "--port", "0", "--metrics_jsonl",
         str(metrics), "--log_level", "warning", *flags],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(home),
             "XDG_CACHE_HOME": str(models_dir().parents[1])},
    )  # fmt: skip
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    seen: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT_S)
            assert line is not None, f"the server ended before serving:\n{''.join(seen)}"
            if line.startswith("Serving:"):
                port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
                break
        yield Served(port, metrics)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
