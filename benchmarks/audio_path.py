"""The path to the speaker, on its own: how long a sample takes from the private PulseAudio
server's microphone, through a stream that plays back what it captures, to that server's
speaker, and how much CPU the idle stream costs. The stream is PortAudio's duplex (each latency
setting and block size), or the agent's PulseAudio client (`adapters/pulse_audio.py`) playing
each click back. Each configuration runs in a fresh process several times: some starts of a
duplex stream through ALSA's PulseAudio plugin come up spinning a core.

    .venv/bin/python -m benchmarks.audio_path                  # the agent's settings and others
    .venv/bin/python -m benchmarks.audio_path --latency high --blocksize 512 --runs 5
    .venv/bin/python -m benchmarks.audio_path --latency pulse --runs 5   # the PulseAudio client
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.adapters.pulse_server import PulseServer

CONFIGURATIONS = (
    ("pulse", 512), ("high", 512), ("low", 512), ("0.02", 512), ("high", 256), ("high", 160)
)  # fmt: skip
CLICKS = 8
SETTLE_S = 4.0
CLICK_LEVEL = 20_000
LOUD = CLICK_LEVEL // 2


def measure(latency: str, blocksize: int) -> dict[str, float]:
    """One stream: median click latency (ms) and the process's CPU share while it ran."""
    pulse = PulseServer(Path(tempfile.mkdtemp(prefix="audio-path-")))
    pulse.start()
    os.environ["PULSE_SERVER"] = pulse.server
    if latency == "pulse":
        return _measure_pulse_client(pulse)
    import sounddevice as sd

    def echo(indata: Any, outdata: Any, frames: int, t: object, status: object) -> None:
        outdata[:] = indata

    pulse_device = next(i for i, d in enumerate(sd.query_devices()) if d["name"] == "pulse")
    stream = sd.RawStream(
        samplerate=16_000, blocksize=blocksize, device=(pulse_device, pulse_device), channels=1,
        dtype="int16", callback=echo,
        latency=latency if latency in ("low", "high") else float(latency),
    )  # fmt: skip
    stream.start()
    try:
        return _clicks(pulse)
    finally:
        stream.stop()
        stream.close()
        pulse.stop()


def _measure_pulse_client(pulse: PulseServer) -> dict[str, float]:
    """The agent's adapter (`adapters.pulse_audio`), playing each click back as a reply."""
    from adapters.pulse_audio import PulseAudio
    from domain.audio import MicBlock

    audio = PulseAudio()
    audio.open()
    stopping = threading.Event()

    def play_clicks_back() -> None:
        while not stopping.is_set():
            event = audio.next_event(0.1)
            if isinstance(event, MicBlock) and np.frombuffer(event.pcm, "<i2").max() > LOUD:
                audio.play(event.pcm)

    thread = threading.Thread(target=play_clicks_back, daemon=True)
    thread.start()
    try:
        return _clicks(pulse)
    finally:
        stopping.set()
        thread.join(1.0)
        audio.close()
        pulse.stop()


def _clicks(pulse: PulseServer) -> dict[str, float]:
    """After the stream settled: the median click latency and the CPU share meanwhile."""
    time.sleep(SETTLE_S)
    cpu_start, wall_start = time.process_time(), time.monotonic()
    delays = [d for _ in range(CLICKS) if (d := _click(pulse)) is not None]
    cpu = (time.process_time() - cpu_start) / (time.monotonic() - wall_start)
    return {"median_ms": statistics.median(delays) if delays else float("nan"), "cpu": cpu}


def _click(pulse: PulseServer) -> float | None:
    """One click into the microphone; ms until the speaker played it (None: never heard)."""
    heard_from = len(pulse.heard())
    pulse.say((np.full(512, CLICK_LEVEL, dtype=np.int16)).tobytes())
    while pulse.saying:
        time.sleep(0.0005)
    (said_at,) = pulse.said_at()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        time.sleep(0.005)
        heard = np.frombuffer(pulse.heard()[heard_from:], dtype=np.int16)
        loud = np.flatnonzero(heard > LOUD)
        if loud.size:
            played_at = pulse.heard_at(heard_from + 2 * int(loud[0]))
            time.sleep(0.5)  # the click has passed before the next one
            return None if played_at is None else (played_at - said_at) * 1000
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh streams per configuration")
    parser.add_argument(
        "--latency", help="one PortAudio latency (low, high or seconds), or pulse (the client)"
    )
    parser.add_argument(
        "--blocksize", type=int, default=512, help="PortAudio's block size in frames (16 kHz)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        print(json.dumps(measure(options.latency, options.blocksize)))
        return 0
    configurations = [(options.latency, options.blocksize)] if options.latency else CONFIGURATIONS
    print(f"{'latency':>8} {'block':>6}   click to speaker, ms (per run)   CPU % of a core")
    for latency, blocksize in configurations:
        runs = []
        for _ in range(options.runs):
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.audio_path", "--child",
                 "--latency", latency, "--blocksize", str(blocksize)],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            if child.returncode != 0:
                raise RuntimeError(f"the measuring process failed:\n{child.stderr}")
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        delays = " ".join(f"{r['median_ms']:5.0f}" for r in runs)
        cpus = " ".join(f"{100 * r['cpu']:4.0f}" for r in runs)
        print(f"{latency:>8} {blocksize:>6}   {delays:<32} {cpus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
