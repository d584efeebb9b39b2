"""One BLAS thread: after a matrix product no worker thread is left spinning beside llama.cpp.

Measured in a fresh process (BLAS libraries read their thread count once), from the per-thread
CPU times in /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir() or (os.cpu_count() or 1) < 2,
    reason="needs Linux's /proc and two cores (one core has no BLAS worker to spin)",
)

PROBE = """
import json, os, sys, time
import numpy as np
if sys.argv[1] == "limited":
    from adapters.blas_threads import limit_blas_threads
    limit_blas_threads()
def ticks():
    out = {}
    for tid in os.listdir("/proc/self/task"):
        fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        out[tid] = int(fields[11]) + int(fields[12])
    return out
a = np.random.default_rng(0).random((400, 400))
a @ a  # the first product after the limit may still wake the old workers
time.sleep(0.15)
worst = 0
for _ in range(5):
    a @ a
    before = ticks()
    time.sleep(0.15)
    after = ticks()
    worst = max(worst, max(after[t] - before[t] for t in after if t in before))
print(json.dumps(worst * 1000 // os.sysconf("SC_CLK_TCK")))
"""


def busiest_thread_ms(mode: str) -> int:
    """The most CPU any thread used in the 150 ms after a matrix product (worst of five)."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True, text=True, timeout=60, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout))


def test_no_blas_worker_spins_after_a_matrix_product() -> None:
    assert busiest_thread_ms("limited") <= 20


def test_the_probe_sees_the_spin_it_guards_against() -> None:
    # Without the limit OpenBLAS's worker spins most of the 150 ms: the probe can fail.
    assert busiest_thread_ms("default") >= 40
