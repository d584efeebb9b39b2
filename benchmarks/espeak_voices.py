"""Questions spoken in voices that are not the agent's: espeak-ng's English voices and variants
(Debian's `espeak-ng`), as 16 kHz int16 mono PCM. Piper with another speaker setting would
still be the agent's own voice, which its recogniser has heard in every test."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import soxr

from adapters.errors import SetupError
from domain.audio import SAMPLE_RATE

# (voice, words per minute): accents of England, America and the Caribbean, male and female.
VOICES = (
    ("en", 170), ("en-us", 175), ("en+f3", 160), ("en-gb-x-rp", 165), ("en-us+m3", 170),
    ("en-029", 170),
)  # fmt: skip
PADDING_S = 0.25


def speak(text: str, voice: str, words_per_minute: int) -> bytes:
    """`text` in `voice`, with a quarter second of silence either side."""
    if shutil.which("espeak-ng") is None:
        raise SetupError("espeak-ng is not installed: run `sudo apt-get install espeak-ng`")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    resampled = soxr.resample(samples, rate, SAMPLE_RATE).astype("<i2")
    padding = np.zeros(int(PADDING_S * SAMPLE_RATE), dtype="<i2")
    return np.concatenate([padding, resampled, padding]).tobytes()
