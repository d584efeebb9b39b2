"""llama.cpp's own HTTP server, run inside our process from the `xllamacpp` wheel.

In-process means it cannot outlive the agent: Ctrl-C, a crash or SIGKILL take its threads and
its socket with the process, and there is no child to reap. It listens on 127.0.0.1 only, on a
port the kernel picks, and requires a random per-run key, so neither other hosts nor web pages
in a local browser can use it. Talk to it with the chat-completions adapter:

    server = LlamaServer()
    model = ChatCompletionsLanguageModel(base_url=server.base_url, api_key=server.api_key)
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

from adapters.errors import SetupError
from adapters.model_files import smollm2_gguf

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"


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
DEFAULT_CONTEXT_SIZE = 4096
# Two slots let a background history compaction run beside a reply instead of ahead of it;
# a unified KV cache lets either slot use the whole context. Each slot keeps what it read:
# llama.cpp's default (`cache_idle_slots`) moves idle slots to a RAM cache and clears them
# whenever another slot starts, and a request sent to a cleared slot by its id reads its whole
# prompt again (measured: 32 of 32 tokens instead of 1).
DEFAULT_PARALLEL = 2
# The model writes on while the first words are synthesised, and it has time to: the reply is
# needed only once they have played. Its threads yield the cores to the voice, the recogniser and
# the sound thread. Measured beside a long generation: Piper synthesised "The capital of France"
# in 131 ms at niceness 0, 103 at 10 (97 alone); alone the model decodes as fast at either.
DEFAULT_NICENESS = 10
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _signals_end_the_process() -> Iterator[None]:
    """xllamacpp loads the model holding the GIL, so no Python signal handler (and no other
    thread) runs until it returns, seconds for a large model; and a signal delivered inside it
    can leave it waiting forever. Meanwhile SIGINT and SIGTERM take their default action: the
    process ends at once (exit status 130 or 143 in a shell). Only the main thread can do this."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_DFL) for signum in _STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _started_at_niceness(niceness: int, start: Callable[[], Any]) -> Any:
    """`start()` in a thread whose niceness is raised first. On Linux niceness belongs to a
    thread and passes to the threads it starts, so every thread of llama.cpp (its HTTP and slot
    loops, OpenMP's workers) runs at it and the agent's other threads keep theirs. Elsewhere, or
    at 0, `start()` runs as it is."""
    if not niceness or sys.platform != "linux":
        return start()

    def niced() -> Any:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        return start()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-start") as starter:
        return starter.submit(niced).result()


class LlamaServer:
    """Starts on construction and returns once the model is loaded and /health answers.
    `close()` (or leaving a `with` block) stops it; so does the end of the process."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        threads: int = DEFAULT_THREADS,
        batch_threads: int | None = None,
        context_size: int = DEFAULT_CONTEXT_SIZE,
        parallel: int = DEFAULT_PARALLEL,
        niceness: int = DEFAULT_NICENESS,
    ) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise SetupError("llama.cpp is not installed: run `pip install xllamacpp`") from None
        model = Path(model_path) if model_path is not None else smollm2_gguf()
        if not model.is_file():
            raise SetupError(f"GGUF model not found: {model}")
        self.api_key = secrets.token_urlsafe(24)
        params = xllamacpp.CommonParams()
        params.model.path = str(model)
        params.hostnames = [LOOPBACK]
        params.port = 0  # the kernel picks a free port: no race with another program
        params.api_keys = [self.api_key]
        params.n_ctx = context_size
        params.n_parallel = parallel
        params.kv_unified = True
        params.cache_idle_slots = False
        params.cpuparams.n_threads = threads
        # Reading the prompt happens before any audio is synthesised, so it may use every core;
        # generating overlaps text-to-speech, where one thread keeps its pace.
        params.cpuparams_batch.n_threads = batch_threads or threads
        params.ui = False
        params.offline = True  # never reach for the Hub
        params.verbosity = 0
        started = time.perf_counter()
        try:
            with _signals_end_the_process():  # the signals' action is the whole process's
                server = _started_at_niceness(niceness, lambda: xllamacpp.Server(params))
        except (RuntimeError, ValueError):
            raise SetupError(
                f"llama.cpp could not load {model.name}: is it a GGUF model?"
            ) from None
        address: str = server.listening_address
        if not address.startswith(f"http://{LOOPBACK}:"):
            del server
            raise SetupError(f"llama.cpp listened on {address}, not on {LOOPBACK}")
        self.address = address
        self.base_url = f"{address}/v1"
        # The C++ destructor stops the server; `finalize` runs it on close(), on garbage
        # collection, or at interpreter exit, whichever comes first.
        self._holder: list[Any] = [server]
        self._finalizer = weakref.finalize(self, self._holder.clear)
        self._wait_healthy()
        self.ready_s = time.perf_counter() - started
        log.info("llama_server_ready", model=model.name, url=self.base_url, ready_s=self.ready_s)

    def _wait_healthy(self, timeout_s: float = 10.0) -> None:
        # No proxy from the environment: this is a loopback address.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with opener.open(f"{self.address}/health", timeout=1.0) as response:
                    if json.load(response).get("status") == "ok":
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise SetupError(f"llama.cpp did not become healthy at {self.address}")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
