"""What a typed question costs: the real CLI in text mode, each question a line on its standard
input, timed from the turn's start to the reply's first token and to its first words written.

    python -m benchmarks.text_mode [--runs 3] [-- extra agent flags]

Each run is a fresh agent answering the eight questions of `spoken_questions.QUESTIONS` in
order, in one conversation; the figures are the turns' own metrics records (`llm_ttft_ms`,
`first_batch_ms`), medians and p90 over all runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.spoken_questions import QUESTIONS

ROOT = Path(__file__).resolve().parents[1]


def run_once(extra: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        metrics = Path(folder) / "turns.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "composition.local", "--text", "--log_level", "warning",
             "--metrics_jsonl", str(metrics), *extra],
            cwd=ROOT, input="".join(f"{q}\n" for q in QUESTIONS), capture_output=True,
            text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            sys.exit(f"the agent failed: {done.stderr.strip().splitlines()[-1:]}")
        return [json.loads(line) for line in metrics.read_text().splitlines()]


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):6.0f} / {p90:6.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh agents, 8 questions each")
    parser.add_argument("agent_args", nargs="*", help="extra agent flags, after --")
    args = parser.parse_args()
    records = [r for _ in range(args.runs) for r in run_once(args.agent_args)]
    answered = [r for r in records if r["outcome"] == "answered"]
    print(f"answered: {len(answered)}/{len(records)}")
    print(f"first token, median / p90:       {summary([r['llm_ttft_ms'] for r in answered])}")
    print(f"first words written, median / p90: {summary([r['first_batch_ms'] for r in answered])}")


if __name__ == "__main__":
    main()
