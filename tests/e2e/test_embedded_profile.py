"""The embedded profile end to end: real models from their wheels, the real CLI, WAV replay."""

import wave
from pathlib import Path

import pytest

from benchmarks.spoken_questions import QUESTIONS, synthesise_questions
from tests.adapters.wer import word_error_rate
from tests.e2e.offline_agent import run_agent

TURNS = 2


@pytest.mark.slow
def test_the_embedded_profile_answers_every_turn_offline(tmp_path: Path) -> None:
    questions, replies = tmp_path / "q.wav", tmp_path / "r.wav"
    duration = synthesise_questions(TURNS, gap_s=9.0, path=questions, lead_s=1.0)
    run = run_agent(tmp_path, questions, duration, "--output_wav", str(replies),
                    "--llm_gen_max_new_tokens", "24")  # fmt: skip
    records = run.records
    assert len(records) == TURNS
    for record, question in zip(records, QUESTIONS, strict=False):
        assert word_error_rate(question, record["user_text"]) <= 0.2
        assert record["assistant_text"].strip() and record["error"] is None
        assert record["voice_to_voice_ms"] > 0
    assert run.stdout.count("ASSISTANT:") >= TURNS
    # The reply is in the recording, after each question, on the same timeline.
    with wave.open(str(replies)) as wav:
        pcm = memoryview(wav.readframes(wav.getnframes())).cast("h")
    for record in records:
        start = int((record["speech_end_s"] + record["voice_to_voice_ms"] / 1000) * 16000)
        assert max(abs(s) for s in pcm[start : start + 8000]) > 1000
