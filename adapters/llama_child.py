"""The llama.cpp server's own process (adapters/llama_server.py starts it): reads what to serve
as one JSON line on stdin, answers one JSON line on stdout (its address, or why it could not
start), and serves until its stdin closes. Only the standard library and xllamacpp are imported,
so that it starts at once.

    python -m adapters.llama_child   # run by LlamaServer, not by hand
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from typing import Any

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


def _die_with_the_parent() -> None:
    """On Linux the kernel sends SIGKILL when the agent dies, however it dies; elsewhere the
    end of stdin (below) does it."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the agent died before the line above ran
        os._exit(1)


def _serve(request: dict[str, Any]) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = request["model"]
    params.hostnames = [LOOPBACK]
    params.port = 0  # the kernel picks a free port: no race with another program
    params.api_keys = [request["api_key"]]
    params.n_ctx = request["context"]
    params.n_parallel = request["parallel"]
    params.kv_unified = False
    params.cache_idle_slots = False
    params.n_batch = params.n_ubatch = request["batch"]
    params.n_cache_reuse = request["cache_reuse"]
    params.cpuparams.n_threads = request["threads"]
    params.cpuparams_batch.n_threads = request["batch_threads"]
    params.ui = False
    params.offline = True  # never reach for the Hub
    params.verbosity = 0
    try:
        server = xllamacpp.Server(params)
    except (RuntimeError, ValueError):
        print(json.dumps({"error": "is it a GGUF model?"}), flush=True)
        return
    print(json.dumps({"address": server.listening_address}), flush=True)
    sys.stdin.read()  # until the agent closes it, or ends
    os._exit(0)  # the server's threads need no goodbye


def main() -> None:
    # The agent decides when its server ends: Ctrl-C in the terminal reaches the whole process
    # group, and the agent, stopping, closes this one's stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_the_parent()
    request = json.loads(sys.stdin.readline())
    # Every thread llama.cpp starts takes this one's niceness (never below the agent's own).
    niceness = max(os.getpriority(os.PRIO_PROCESS, 0), request["niceness"])
    os.setpriority(os.PRIO_PROCESS, 0, niceness)
    _serve(request)


if __name__ == "__main__":
    main()
