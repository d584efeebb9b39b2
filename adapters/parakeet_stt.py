"""Speech to text with NVIDIA Parakeet TDT on MLX (parakeet-mlx), the Apple Silicon option.

`model.transcribe` only takes a file path (and needs ffmpeg), so this uses the library's
documented low-level API instead: float32 samples at `model.preprocessor_config.sample_rate` ->
`parakeet_mlx.audio.get_logmel` -> `model.generate(mel)`. Parakeet TDT v2 is English-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from adapters.errors import SetupError
from adapters.pcm import is_near_silent, pcm_to_float
from domain.audio import SAMPLE_RATE
from domain.language import normalize_code
from domain.messages import FinalTranscript, PartialTranscript

if TYPE_CHECKING:
    from numpy.typing import NDArray

log = structlog.get_logger(__name__)

DEFAULT_MODEL = "mlx-community/parakeet-tdt-0.6b-v2"
LANGUAGE = "en"


def check_language(setting: str, model_name: str) -> None:
    """Both "auto" and "en" mean English (said once for "auto"); another language is refused,
    since the model would transcribe it as English-sounding nonsense."""
    code = normalize_code(setting)
    if code not in (None, LANGUAGE):
        raise SetupError(
            f"Parakeet TDT ({model_name}) is English-only: use --language en, "
            f"or --stt faster-whisper with a multilingual model for --language {setting}"
        )
    if code is None:
        log.info("stt_language", model=model_name, note="English-only model: auto uses en")


def model_input(audio: bytes, model_rate: int, min_samples: int) -> NDArray[np.float32] | None:
    """16 kHz PCM -> float32 at the model's rate, or None when there is nothing to decode:
    near-silence (as for Whisper) or fewer samples than one mel frame, which the library refuses."""
    samples = pcm_to_float(audio)
    if is_near_silent(samples):
        return None
    if model_rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, SAMPLE_RATE, model_rate).astype(np.float32)
    return samples if samples.size >= min_samples else None


class ParakeetSpeechToText:
    """`SpeechToText` on parakeet-mlx. Loads the model on construction (a Hub id or a local
    directory with config.json and model.safetensors); call `warm_up` before the microphone opens.

    Partials decode the whole turn so far, like finals: the port hands over the growing audio,
    and Parakeet decodes seconds of speech in milliseconds on Apple Silicon, so the library's
    stateful streaming API would only add state to keep in step with the VAD.
    """

    def __init__(self, model_name: str = DEFAULT_MODEL, *, language: str = LANGUAGE) -> None:
        try:
            import mlx.core as mx
            from parakeet_mlx import DecodingConfig, from_pretrained
            from parakeet_mlx.audio import get_logmel
        except ImportError:
            raise SetupError(
                "Parakeet TDT needs Apple Silicon with `pip install parakeet-mlx` "
                "(try --stt faster-whisper on this machine)"
            ) from None
        from adapters.mlx_llm import MLX_LOCK

        check_language(language, model_name)
        try:
            with MLX_LOCK:
                self._model: Any = from_pretrained(model_name)
        except Exception as error:
            raise SetupError(
                f"Cannot load the Parakeet model {model_name!r} ({str(error).splitlines()[0]}): "
                "pass a Hub id or a directory holding config.json and model.safetensors"
            ) from None
        self._mx = mx
        self._get_logmel = get_logmel
        self._decoding = DecodingConfig()
        self._lock = MLX_LOCK
        preprocessor = self._model.preprocessor_config
        self._rate: int = preprocessor.sample_rate
        self._min_samples: int = preprocessor.hop_length

    def warm_up(self) -> None:
        # Any audio will do: the first decode compiles kernels and builds the mel filterbank.
        self._decode(np.zeros(self._rate, dtype=np.float32))

    def transcribe_partial(self, audio: bytes) -> PartialTranscript:
        samples = model_input(audio, self._rate, self._min_samples)
        return PartialTranscript("" if samples is None else self._decode(samples))

    def transcribe(self, audio: bytes) -> FinalTranscript:
        samples = model_input(audio, self._rate, self._min_samples)
        return FinalTranscript("" if samples is None else self._decode(samples), LANGUAGE)

    def _decode(self, samples: NDArray[np.float32]) -> str:
        with self._lock:
            mel = self._get_logmel(self._mx.array(samples), self._model.preprocessor_config)
            result = self._model.generate(mel, decoding_config=self._decoding)[0]
        return str(result.text).strip()
