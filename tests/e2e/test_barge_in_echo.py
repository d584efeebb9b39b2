"""Barge-in with real echo: the embedded profile on WAV replay, its own voice fed back into its
microphone through the simulated room (`--simulated_echo`) and cancelled by WebRTC AEC3.

A long reply played with nobody speaking must never interrupt itself; a user speaking a few
seconds into the next reply must stop it and be answered.
"""

import wave
from pathlib import Path

import pytest

from benchmarks.spoken_questions import SAMPLE_RATE
from tests.adapters.wer import word_error_rate
from tests.e2e.offline_agent import run_agent

STORY = "Tell me a long story about a fox and a crow."
ANOTHER = "Now tell me a long story about a cat."
STOP = "Stop. What is the capital of France?"


def silence(seconds: float) -> bytes:
    return bytes(2 * round(SAMPLE_RATE * seconds))


def conversation_wav(path: Path) -> float:
    from adapters.piper_tts import PiperTextToSpeech

    tts = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)

    def say(text: str) -> bytes:
        return b"".join(tts.synthesize(text, "en"))

    pcm = (
        silence(1.0) + say(STORY) + silence(30.0)  # the whole reply plays, echoed
        + say(ANOTHER) + silence(6.0)  # its reply has been playing for a few seconds
        + say(STOP) + silence(12.0)
    )  # fmt: skip
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm)
    return len(pcm) / 2 / SAMPLE_RATE


@pytest.mark.slow
def test_echo_never_interrupts_and_the_user_does(tmp_path: Path) -> None:
    questions = tmp_path / "q.wav"
    duration = conversation_wav(questions)
    records = run_agent(tmp_path, questions, duration, "--simulated_echo", "true",
                        "--llm_gen_max_new_tokens", "60").records  # fmt: skip
    story, another, stop = records[:3]
    assert word_error_rate(STORY, story["user_text"]) <= 0.2
    # Nobody spoke over the first reply: it played to its end, its echo never paused it.
    assert (story["outcome"], story["false_interruptions"]) == ("answered", 0)
    # The second was cut off by the user, shortly after they started to speak.
    assert another["outcome"] == "interrupted" and another["interrupted"]
    assert 0 < another["interruption_latency_ms"] <= 500
    assert another["spoken_text"] and another["spoken_text"] != another["assistant_text"]
    # ... and the user was heard and answered.
    assert word_error_rate(STOP, stop["user_text"]) <= 0.3
    assert stop["outcome"] == "answered" and stop["assistant_text"].strip()
    assert len(records) == 3, records
