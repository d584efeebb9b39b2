"""LlamaServer: llama.cpp's server from the xllamacpp wheel, in our process, on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from adapters.errors import SetupError
from adapters.llama_server import LlamaServer
from adapters.model_files import smollm2_gguf
from tests.adapters.llama_fixtures import answers, llama_server, llama_server_process

pytestmark = pytest.mark.slow
__all__ = ["llama_server"]  # a fixture, used by name


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the listening TCP sockets on `port`, from /proc (hex, as the kernel
    writes them: 0100007F is 127.0.0.1)."""
    found = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for row in table.read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found


def get(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_listens_on_127_0_0_1_only(llama_server: LlamaServer) -> None:
    port = int(llama_server.address.rsplit(":", 1)[1])

    assert llama_server.base_url == f"http://127.0.0.1:{port}/v1"
    assert listening_addresses(port) == ["0100007F"]


def test_is_healthy_and_serves_only_its_key(llama_server: LlamaServer) -> None:
    with urllib.request.urlopen(f"{llama_server.address}/health", timeout=5) as response:
        assert json.load(response) == {"status": "ok"}
    assert get(f"{llama_server.base_url}/models") == 401
    assert get(f"{llama_server.base_url}/models", llama_server.api_key) == 200
    assert llama_server.ready_s < 10


def test_is_gone_after_close() -> None:
    server = LlamaServer()
    assert answers(server.base_url)

    server.close()
    server.close()  # closing twice is harmless

    assert not server.running
    assert not answers(server.base_url)


def test_dies_with_the_process_that_owns_it() -> None:
    with llama_server_process() as (child, server):
        assert answers(server["base_url"])

        child.send_signal(signal.SIGKILL)
        child.wait()

        deadline = time.monotonic() + 2.0
        while answers(server["base_url"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not answers(server["base_url"])


def test_a_missing_or_broken_model_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="not found"):
        LlamaServer(tmp_path / "absent.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    with pytest.raises(SetupError, match="could not load"):
        LlamaServer(broken)
    truncated = tmp_path / "truncated.gguf"
    with smollm2_gguf().open("rb") as whole:
        truncated.write_bytes(whole.read(1_000_000))  # a real header, most tensors missing
    with pytest.raises(SetupError, match=r"could not load truncated\.gguf"):
        LlamaServer(truncated)


def threads_niceness(pid: int) -> dict[int, int]:
    return {
        int(tid): os.getpriority(os.PRIO_PROCESS, int(tid))
        for tid in os.listdir(f"/proc/{pid}/task")
    }


def test_its_threads_run_at_its_niceness_and_the_agents_keep_theirs() -> None:
    before = threads_niceness(os.getpid())
    with LlamaServer(niceness=7) as server:
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {server.api_key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200  # a reply: its compute threads have started
        servers = threads_niceness(server.pid)
        agents = threads_niceness(os.getpid())
    assert len(servers) > 1 and set(servers.values()) == {7}
    assert {tid: agents[tid] for tid in before if tid in agents} == {
        tid: nice for tid, nice in before.items() if tid in agents
    }


def test_the_agent_goes_on_while_the_model_loads() -> None:
    """Loading holds Python's lock for seconds, in the server's own process, not the agent's."""
    gaps: list[float] = []
    loading = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while loading.is_set():
            time.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    loading.set()
    ticker = threading.Thread(target=tick)
    ticker.start()
    with LlamaServer():
        loading.clear()
    ticker.join()
    assert max(gaps) < 0.5


def test_counts_tokens_as_the_model_does(llama_server: LlamaServer) -> None:
    assert llama_server.tokens("Hello") == 1
    assert 6 <= llama_server.tokens("My name is Maria and I live in Lisbon.") <= 14


def test_tells_the_cpu_time_its_threads_used(llama_server: LlamaServer) -> None:
    before = llama_server.cpu_s()
    assert before is not None
    body = {"messages": [{"role": "user", "content": "Tell me a story. " * 60}], "max_tokens": 4}
    request = urllib.request.Request(
        f"{llama_server.base_url}/chat/completions", json.dumps(body).encode(),
        {"Authorization": f"Bearer {llama_server.api_key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
    after = llama_server.cpu_s()
    assert after is not None and after - before > 0.1  # reading ~300 tokens is work
