"""This machine's pace with a local model (domain/model_choice.py): a short question read and a
sentence written by llama.cpp, on the threads the agent would give it, kept in the models'
cache under a key naming the processor, its cores and the threads, so it is measured once."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path

import structlog

from adapters.llama_server import LlamaServer
from domain.model_choice import SENTENCE_TOKENS, Pace

log = structlog.get_logger()

QUESTION = "Question: What is the capital of Italy, and what is it famous for?\nAnswer:"
RUNS = 3
CACHE_FILE = "machine-pace.json"


def machine_key(threads: int, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """What the pace depends on: the processor, how many cores it has, how many threads."""
    name = platform.processor() or platform.machine()
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass  # not Linux: the platform's own name
    return f"{name}, {os.cpu_count()} cores, {threads} threads"


def measure(model: Path, threads: int) -> Pace:
    """The median of `RUNS` timed requests, after one that pays the server's first-use costs."""
    server = LlamaServer(model, threads=threads, parallel=1, context_per_slot=512, niceness=0)
    with server:
        server.timed_completion(QUESTION, 4)
        runs = [server.timed_completion(QUESTION, SENTENCE_TOKENS) for _ in range(RUNS)]
    return Pace(
        read_s=statistics.median(run.read_s for run in runs),
        token_s=statistics.median(run.write_s / run.tokens for run in runs),
    )


class PaceCache:
    """Paces by machine key in one JSON file; an unreadable file counts as empty."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _all(self) -> dict[str, dict[str, float]]:
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def get(self, key: str) -> Pace | None:
        entry = self._all().get(key)
        if not isinstance(entry, dict):
            return None
        try:
            return Pace(read_s=float(entry["read_s"]), token_s=float(entry["token_s"]))
        except (TypeError, KeyError, ValueError):
            return None

    def put(self, key: str, pace: Pace) -> None:
        entries = self._all()
        entries[key] = {"read_s": pace.read_s, "token_s": pace.token_s}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
        partial.replace(self.path)  # a reader never sees half a file
