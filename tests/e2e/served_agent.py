"""The real Realtime server as end-to-end tests run it: `python -m composition.serve` on a free
port, offline, in a home of its own; stopped with Ctrl-C (SIGINT) as a user would, and
everything it started with it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from adapters.model_files import models_dir
from tests.e2e.offline_agent import ROOT

START_TIMEOUT_S = 180.0
SERVING = re.compile(r"^Serving: the page at http://127\.0\.0\.1:(\d+)/", re.MULTILINE)


@attrs.frozen
class Served:
    port: int
    metrics: Path
    log_path: Path

    @property
    def page_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def base_url(self) -> str:
        """For the openai client: it derives ws://.../v1/realtime from it."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log(self) -> str:
        """The server's output so far (progress lines and logs), for a failure's message."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def serving(home: Path, *flags: str) -> Iterator[Served]:
    metrics, log_path = home / "turns.jsonl", home / "server.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "composition.serve", "--port", "0", "--metrics_jsonl",
             str(metrics), "--log_level", "warning", *flags],
            cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            # Offline, a home of its own, the models setup.sh assembled (as offline_agent).
            env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(home),
                 "XDG_CACHE_HOME": str(models_dir().parents[1])},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (found := SERVING.search(log_path.read_text(errors="replace"))):
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}):\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not serve in time:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield Served(int(found.group(1)), metrics, log_path)
    finally:
        stop(process, signal.SIGINT)


def stop(process: subprocess.Popen[bytes], signum: int) -> None:
    """Ends `process` and everything it started (its own process group), killing what is left
    after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Whether `condition` came true within `timeout_s` (looked at four times a second)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()
