"""llama.cpp's own HTTP server, from the `xllamacpp` wheel, in a child process of the agent.

A child of its own, because loading a model holds Python's lock for seconds (every thread of the
agent, sound included, would stop while the server starts again on another thread count), and
because a crash inside llama.cpp then ends the server, not the agent, which starts it again. It
cannot outlive the agent: it ends when its stdin closes (the agent ended or closed it), and on
Linux the kernel kills it when the agent dies, even by SIGKILL. It listens on 127.0.0.1 only, on
a port the kernel picks, and requires a random per-run key (handed over on its stdin, never on
its command line), so neither other hosts nor web pages in a local browser can use it. Talk to
it with the chat-completions adapter:

    server = LlamaServer()
    model = ChatCompletionsLanguageModel(base_url=server.base_url, api_key=server.api_key)

The child's side is adapters/llama_child.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

import attrs
import structlog

from adapters.cpu_watch import TICKS_PER_S, cpu_ticks
from adapters.errors import SetupError
from adapters.model_files import smollm2_gguf

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
# No proxy from the environment: the server is on a loopback address.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def default_threads(cores: int | None = None) -> int:
    """Threads for generation. Measured on 2 cores with the whole agent through a sound server
    (benchmarks/voice_to_voice.py --person, 8 questions): 2 threads brought the first audio
    ~0.35 s sooner (median at the speaker 1308 ms against 1683) and kept up with playback,
    where 1 thread (12 tokens/s) left the speaker silent for up to 1.3 s between batches. With
    more cores one is left to speech synthesis and recognition; beyond 4 decoding is bound by
    memory, not threads (more cores than 2 were not measured)."""
    cores = cores or os.cpu_count() or 1
    return cores if cores <= 2 else min(cores - 1, 4)


DEFAULT_THREADS = default_threads()
# Two slots let background work (history compaction) read and write beside the conversation
# instead of ahead of it. Each slot has a context of its own (no unified cache: one slot's long
# prompt can never take the other's room) and keeps what it read: llama.cpp's default
# (`cache_idle_slots`) moves idle slots to a RAM cache and clears them whenever another slot
# starts, and a request sent to a cleared slot by its id reads its whole prompt again (measured:
# 32 of 32 tokens instead of 1).
DEFAULT_PARALLEL = 2
CONTEXT_PER_SLOT = 4096
# The server reads prompts in batches this small, and only between two batches does it notice a
# request that was closed: background work paused for a reply holds it back for one batch at
# most (~0.5 s on 2 cores). Reading is as fast as in batches of 512 (100-120 tokens/s here).
BATCH_TOKENS = 64
# A request whose prompt drops a block of what the slot read before, or moves it, reuses that
# block where it is found (shifted, not read again) when it is at least this long: the turns a
# history summary keeps are not read again when it lands (measured: 46 tokens read instead of
# 488 for six turns kept).
CACHE_REUSE_TOKENS = 32
# The model writes on while the first words are synthesised, and it has time to: the reply is
# needed only once they have played. Its threads yield the cores to the voice, the recogniser and
# the sound thread. Measured beside a long generation: Piper synthesised "The capital of France"
# in 131 ms at niceness 0, 103 at 10 (97 alone); alone the model decodes as fast at either.
DEFAULT_NICENESS = 10
# With fewer threads than it would take on an idle machine (another program keeps a core busy),
# the model's one thread runs at this niceness.
SHARED_NICENESS = 10
# How long a start may take: a large model on a busy machine takes seconds to load.
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 1.0


@attrs.frozen
class Timings:
    """One request's reading of its prompt and writing of its tokens, as the server timed them."""

    prompt_tokens: int
    read_s: float
    tokens: int
    write_s: float


class LlamaServer:
    """Starts on construction and returns once the model is loaded and /health answers.
    `close()` (or leaving a `with` block) stops it; so does the end of the agent."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        threads: int = DEFAULT_THREADS,
        batch_threads: int | None = None,
        context_per_slot: int = CONTEXT_PER_SLOT,
        parallel: int = DEFAULT_PARALLEL,
        niceness: int = DEFAULT_NICENESS,
    ) -> None:
        model = Path(model_path) if model_path is not None else smollm2_gguf()
        if not model.is_file():
            raise SetupError(f"GGUF model not found: {model}")
        self.api_key = secrets.token_urlsafe(24)
        self.context_per_slot = context_per_slot
        request = {
            "model": str(model),
            "api_key": self.api_key,
            "threads": threads,
            # Reading the prompt happens before any audio is synthesised, so it may use every
            # core; generating overlaps text-to-speech.
            "batch_threads": batch_threads or threads,
            "context": context_per_slot * parallel,
            "parallel": parallel,
            "batch": BATCH_TOKENS,
            "cache_reuse": CACHE_REUSE_TOKENS,
            "niceness": niceness,
        }
        started = time.perf_counter()
        self._child = subprocess.Popen(
            [sys.executable, "-m", "adapters.llama_child"],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._child.stdin is not None and self._child.stdout is not None
        try:
            self._child.stdin.write(json.dumps(request) + "\n")
            self._child.stdin.flush()
            answer = self._first_line(self._child.stdout)
        except BaseException:  # Ctrl-C while it loads: it ends with the agent's start
            self.close()
            raise
        if "error" in answer:
            self.close()
            raise SetupError(f"llama.cpp could not load {model.name}: {answer['error']}")
        self.address: str = answer["address"]
        self.base_url = f"{self.address}/v1"
        self.pid = self._child.pid
        if not self.address.startswith(f"http://{LOOPBACK}:"):
            self.close()
            raise SetupError(f"llama.cpp listened on {self.address}, not on {LOOPBACK}")
        self._wait_healthy()
        self.ready_s = time.perf_counter() - started
        log.info("llama_server_ready", model=model.name, url=self.base_url, ready_s=self.ready_s)

    def _first_line(self, stdout: IO[str]) -> dict[str, Any]:
        """The child's answer: its address once the model is loaded, or why it could not."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], 0.1)
            if ready:
                line = stdout.readline()
                if line:
                    answer: dict[str, Any] = json.loads(line)
                    return answer
            if self._child.poll() is not None:
                status = self._child.returncode
                return {"error": f"the server ended as it started (exit status {status})"}
        return {"error": f"not loaded after {START_TIMEOUT_S:g} s"}

    def _wait_healthy(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
            if time.monotonic() > deadline:
                self.close()
                raise SetupError(f"llama.cpp did not become healthy at {self.address}")
            time.sleep(0.05)

    def healthy(self, timeout_s: float = 1.0) -> bool:
        """Whether the server answers /health (it does while it generates)."""
        if not self.running:
            return False
        try:
            with _OPENER.open(f"{self.address}/health", timeout=timeout_s) as response:
                return bool(json.load(response).get("status") == "ok")
        except (OSError, ValueError):
            return False

    def tokens(self, text: str, timeout_s: float = 5.0) -> int:
        """How many of the model's tokens `text` takes, as the server counts them."""
        request = urllib.request.Request(
            f"{self.address}/tokenize",
            json.dumps({"content": text}).encode(),
            {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        with _OPENER.open(request, timeout=timeout_s) as response:
            return len(json.load(response)["tokens"])

    def timed_completion(self, prompt: str, tokens: int, timeout_s: float = 60.0) -> Timings:
        """Reads `prompt` afresh and writes exactly `tokens` tokens: how long each took."""
        body = {
            "prompt": prompt,
            "n_predict": tokens,
            "ignore_eos": True,
            "cache_prompt": False,
            "temperature": 0.0,
        }
        request = urllib.request.Request(
            f"{self.address}/completion",
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        with _OPENER.open(request, timeout=timeout_s) as response:
            timings = json.load(response)["timings"]
        return Timings(
            prompt_tokens=int(timings["prompt_n"]),
            read_s=float(timings["prompt_ms"]) / 1000,
            tokens=int(timings["predicted_n"]),
            write_s=float(timings["predicted_ms"]) / 1000,
        )

    @property
    def running(self) -> bool:
        return self._child.poll() is None

    def cpu_s(self) -> float | None:
        """The CPU time its threads have used so far (None where Linux's /proc cannot tell):
        a server that uses none while a request waits is stuck, not slow."""
        try:
            return cpu_ticks(Path(f"/proc/{self.pid}/stat").read_text()) / TICKS_PER_S
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        """Closes the child's stdin, which ends it; killed if it does not end in time."""
        if self._child.stdin is not None and not self._child.stdin.closed:
            with contextlib.suppress(OSError):  # the child may be gone already
                self._child.stdin.close()
        try:
            self._child.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self._child.kill()
            self._child.wait()
        if self._child.stdout is not None:
            self._child.stdout.close()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
