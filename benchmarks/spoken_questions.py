"""Spoken questions for end-to-end runs, synthesised with the Piper voice (no audio committed)."""

from __future__ import annotations

import wave
from pathlib import Path

QUESTIONS = (
    "What is the capital of France?",
    "Can you tell me a fun fact about cats?",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Give me a tip for sleeping better.",
    "What is two plus two?",
    "Name a famous painter.",
    "Why do leaves change colour in autumn?",
)
SAMPLE_RATE = 16_000
LEAD_SILENCE_S = 6.0


def synthesise_questions(
    count: int, gap_s: float, path: Path, lead_s: float = LEAD_SILENCE_S
) -> float:
    """A 16 kHz mono WAV: `lead_s` of silence, then each question followed by `gap_s` of
    silence (long enough for the reply: the agent is half duplex and does not hear while it
    speaks). Returns its duration in seconds."""
    pcm = bytearray(bytes(int(2 * SAMPLE_RATE * lead_s)))
    for _, spoken in spoken_questions(count):
        pcm += spoken
        pcm += bytes(int(2 * SAMPLE_RATE * gap_s))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(bytes(pcm))
    return len(pcm) / 2 / SAMPLE_RATE


def spoken_questions(count: int) -> list[tuple[str, bytes]]:
    """The first `count` questions, each with its 16 kHz int16 speech: the same audio on every
    run (Piper's noise pinned to 0). Sampled, the recogniser once heard "Can you tell me it'll
    fund fact about cats?", and the end-to-end test failed on a voice, not on the agent."""
    from adapters.piper_tts import PiperTextToSpeech

    tts = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    return [(question, b"".join(tts.synthesize(question, "en"))) for question in QUESTIONS[:count]]
