"""Real speech for tests: the recordings shipped in the `moonshine-voice` wheel, as 16 kHz int16
mono PCM bytes (the domain's audio format)."""

from __future__ import annotations

import functools
import importlib.util
import wave
from pathlib import Path

import numpy as np
import soxr

from domain.audio import SAMPLE_RATE

BECKETT_TEXT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
# The whole first paragraph of A Tale of Two Cities: the recording reads it to the end (checked
# with faster-whisper tiny.en).
TWO_CITIES_TEXT = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the "
    "age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the "
    "season of Light, it was the season of Darkness, it was the spring of hope, it was the winter "
    "of despair, we had everything before us, we had nothing before us, we were all going direct "
    "to Heaven, we were all going direct the other way - in short, the period was so far like the "
    "present period, that some of its noisiest authorities insisted on its being received, for "
    "good or for evil, in the superlative degree of comparison only."
)


@functools.cache
def load_speech(name: str) -> bytes:
    """`name` is "beckett" or "two_cities"."""
    spec = importlib.util.find_spec("moonshine_voice")
    assert spec is not None and spec.origin is not None, "pip install moonshine-voice"
    with wave.open(str(Path(spec.origin).parent / "assets" / f"{name}.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2), f"{name}.wav is not int16 mono"
        rate = wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    if rate == SAMPLE_RATE:
        return pcm
    samples: np.ndarray = soxr.resample(np.frombuffer(pcm, dtype="<i2"), rate, SAMPLE_RATE)
    return samples.astype("<i2").tobytes()
