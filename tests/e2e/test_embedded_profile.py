"""The embedded profile end to end: real models from their wheels, the real CLI, WAV replay."""

import json
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from adapters.model_files import models_dir
from benchmarks.spoken_questions import QUESTIONS, synthesise_questions
from tests.adapters.wer import word_error_rate

ROOT = Path(__file__).resolve().parents[2]
TURNS = 2


@pytest.mark.slow
def test_the_embedded_profile_answers_every_turn_offline(tmp_path: Path) -> None:
    questions, replies, metrics = (tmp_path / n for n in ("q.wav", "r.wav", "m.jsonl"))
    duration = synthesise_questions(TURNS, gap_s=9.0, path=questions, lead_s=1.0)
    done = subprocess.run(
        [sys.executable, "-m", "composition.local", "--input_wav", str(questions),
         "--output_wav", str(replies), "--metrics_jsonl", str(metrics),
         "--llm_gen_max_new_tokens", "24", "--log_level", "warning"],
        cwd=ROOT, capture_output=True, text=True, timeout=duration + 120,
        # A home of its own, but the models assembled by setup.sh (the default, Qwen2.5-Coder
        # 0.5B, lives in the user's cache, not in a wheel).
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path),
             "XDG_CACHE_HOME": str(models_dir().parents[1])},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert len(records) == TURNS
    for record, question in zip(records, QUESTIONS, strict=False):
        assert word_error_rate(question, record["user_text"]) <= 0.2
        assert record["assistant_text"].strip() and record["error"] is None
        assert record["voice_to_voice_ms"] > 0
    assert done.stdout.count("ASSISTANT:") >= TURNS
    # The reply is in the recording, after each question, on the same timeline.
    with wave.open(str(replies)) as wav:
        pcm = memoryview(wav.readframes(wav.getnframes())).cast("h")
    for record in records:
        start = int((record["speech_end_s"] + record["voice_to_voice_ms"] / 1000) * 16000)
        assert max(abs(s) for s in pcm[start : start + 8000]) > 1000
