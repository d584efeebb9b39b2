"""The real CLI as an end-to-end test runs it: offline, a home of its own, WAV replay or
typed lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

from adapters.model_files import models_dir

ROOT = Path(__file__).resolve().parents[2]


@attrs.frozen
class Run:
    records: list[dict[str, Any]]  # one per turn, from --metrics_jsonl
    stdout: str


def run_agent(home: Path, input_wav: Path, duration_s: float, *flags: str) -> Run:
    """Runs the agent on `input_wav` until it ends and asserts it exited cleanly."""
    return _run(home, duration_s + 120, None, "--input_wav", str(input_wav), *flags)


def run_typed(home: Path, lines: list[str], *flags: str, pulse_server: str | None = None) -> Run:
    """Runs the agent in text mode on `lines` as its standard input, as a script would;
    `pulse_server`: the sound server it may speak through."""
    sound = {} if pulse_server is None else {"PULSE_SERVER": pulse_server}
    return _run(home, 180, "".join(f"{line}\n" for line in lines), "--text", *flags, **sound)


def _run(home: Path, timeout_s: float, stdin: str | None, *flags: str, **env: str) -> Run:
    metrics = home / "turns.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "composition.local", "--metrics_jsonl", str(metrics),
         "--log_level", "warning", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, input=stdin,
        # A home of its own, but the models assembled by setup.sh (the default, Qwen2.5-Coder
        # 0.5B, lives in the user's cache, not in a wheel). No sound server is named: a
        # stage that opened a device would fail.
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(home),
             "XDG_CACHE_HOME": str(models_dir().parents[1]), **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return Run(records, done.stdout)
