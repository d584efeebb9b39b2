"""The real CLI as an end-to-end test runs it: offline, a home of its own, WAV replay."""

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
    metrics = home / "turns.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "composition.local", "--input_wav", str(input_wav),
         "--metrics_jsonl", str(metrics), "--log_level", "warning", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=duration_s + 120,
        # A home of its own, but the models assembled by setup.sh (the default, Qwen2.5-Coder
        # 0.5B, lives in the user's cache, not in a wheel).
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(home),
             "XDG_CACHE_HOME": str(models_dir().parents[1])},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return Run(records, done.stdout)
