"""Text to speech with Qwen3-TTS on MLX (mlx-audio), the Apple Silicon option.

The default is the 6-bit 0.6B Base model; its quantization is in its config and applied by
`mlx_audio.tts.utils.load_model`. `model.generate(..., stream=True)` yields `GenerationResult`s
whose `.audio` is an mx.array at `model.sample_rate` (24 kHz); each chunk is resampled to 16 kHz
by one streaming soxr resampler per reply (so joins are seamless) and handed on at once.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.errors import SetupError
from adapters.pcm import float_to_pcm
from domain.audio import SAMPLE_RATE
from domain.language import language_name

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_MODEL = "mlx-community/Qwen3-TTS-12Hz-0.6B-Base-6bit"
# The codec decoder clamps its output to [-1, 1], so full scale is reachable and resampling can
# overshoot it; a fixed gain keeps every chunk of a reply at the same level.
DEFAULT_HEADROOM = 0.75
# Audio per streamed chunk (12.5 codec frames per second). mlx-audio's default of 2 s would hold
# back the first sound as long; 0.32 s is the library's own low-latency example.
STREAMING_INTERVAL_S = 0.32
# The model types whose `generate` needs no voice description (VoiceDesign models do).
SUPPORTED_TYPES = ("base", "custom_voice")


def qwen_language(code: str | None, supported: Collection[str]) -> str:
    """An ISO code -> the model's language name ("fr" -> "french"), or "auto" (the model reads
    the language from the text) when the code is unknown or the model lacks it."""
    name = language_name(code)
    return name.lower() if name and name.lower() in supported else "auto"


def check_voice(voice: str | None, speakers: Collection[str], model_type: str, model: str) -> None:
    """Refuse at start-up what `generate` would only refuse at the first reply."""
    if model_type not in SUPPORTED_TYPES:
        raise SetupError(
            f"{model} is a Qwen3-TTS {model_type} model: use a Base or CustomVoice model"
        )
    choices = ", ".join(sorted(speakers))
    if voice is None:
        if model_type == "custom_voice":
            raise SetupError(f"{model} needs a voice: choose one of {choices}")
    elif voice.lower() not in {s.lower() for s in speakers}:
        raise SetupError(
            f"{model} has no voice {voice!r}: "
            + (f"choose one of {choices}" if speakers else "it has no preset voices, pass none")
        )


def to_float(audio: Any) -> NDArray[np.float32]:
    """An mx.array of any float dtype -> flat float32 numpy; bfloat16 cannot cross the buffer
    protocol, so the cast happens in MLX."""
    import mlx.core as mx

    return np.asarray(audio.astype(mx.float32), dtype=np.float32).reshape(-1)


def stream_reply(
    results: Generator[Any, None, None],
    lock: AbstractContextManager[Any],
    source_rate: int,
    headroom: float,
) -> Generator[bytes, None, None]:
    """The library's results for one reply -> 16 kHz int16 chunks, then the resampler's tail.

    Each step of the library's generator, and the read of its audio, runs under the MLX lock,
    which is released between chunks so the language model can run while the reply plays, and
    is never held while this generator is suspended at a `yield`.
    """
    import soxr

    resampler = soxr.ResampleStream(source_rate, SAMPLE_RATE, 1, dtype="float32")
    try:
        while True:
            with lock:
                result = next(results, None)
                samples = None if result is None else to_float(result.audio)
            if samples is None:
                break
            resampled = resampler.resample_chunk(samples)
            if resampled.size:
                yield float_to_pcm(resampled, headroom)
    finally:
        with lock:
            results.close()
    tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if tail.size:
        yield float_to_pcm(tail, headroom)


class Qwen3TextToSpeech:
    """`TextToSpeech` on mlx-audio's Qwen3-TTS. Loads the model on construction (a Hub id or a
    local directory); call `warm_up` before the first reply. `voice` is a preset speaker of a
    CustomVoice model (e.g. "Ryan"); Base models have none and take the default voice."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        voice: str | None = None,
        headroom: float = DEFAULT_HEADROOM,
    ) -> None:
        try:
            from mlx_audio.tts.utils import load_model
        except ImportError:
            raise SetupError(
                "Qwen3-TTS needs Apple Silicon with `pip install mlx-audio` "
                "(try --tts piper on this machine)"
            ) from None
        from adapters.mlx_llm import MLX_LOCK

        try:
            with MLX_LOCK:
                self._model: Any = load_model(model_name)
        except Exception as error:
            raise SetupError(
                f"Cannot load the Qwen3-TTS model {model_name!r} ({str(error).splitlines()[0]}): "
                "pass a Hub id or a local directory of an MLX Qwen3-TTS model"
            ) from None
        check_voice(
            voice,
            self._model.get_supported_speakers(),
            self._model.config.tts_model_type,
            model_name,
        )
        self._voice = voice
        self._headroom = headroom
        self._lock = MLX_LOCK
        self._languages = frozenset(self._model.get_supported_languages())

    def warm_up(self) -> None:
        for _ in self.synthesize("Hello.", "en"):
            pass

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        if not text.strip():
            return
        # A generator function: nothing runs until `stream_reply` steps it under the lock.
        results = self._model.generate(
            text=text,
            voice=self._voice,
            lang_code=qwen_language(language, self._languages),
            stream=True,
            streaming_interval=STREAMING_INTERVAL_S,
        )
        yield from stream_reply(results, self._lock, self._model.sample_rate, self._headroom)
