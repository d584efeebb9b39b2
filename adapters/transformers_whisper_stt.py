"""Speech to text with Whisper through transformers (`--stt whisper`).

Any Whisper checkpoint transformers can load (a hub id or a local directory) on any torch device.
torch and transformers are imported only when this adapter is built: they are an optional extra.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.errors import SetupError
from adapters.pcm import is_near_silent, pcm_to_float
from adapters.whisper_language import WhisperLanguage
from domain.audio import SAMPLE_RATE
from domain.messages import FinalTranscript, PartialTranscript

if TYPE_CHECKING:
    import torch
    from numpy.typing import NDArray

DEFAULT_MODEL = "distil-whisper/distil-large-v3"
# Upstream's `--stt_gen_*` defaults; a turn is short, so 128 tokens is plenty.
DEFAULT_GEN_KWARGS: Mapping[str, Any] = {"max_new_tokens": 128, "num_beams": 1}


class TransformersWhisperSpeechToText:
    """`SpeechToText` on `WhisperForConditionalGeneration`. Loads the model on construction;
    call `warm_up` before the microphone opens. `gen_kwargs` (from `--stt_gen_*`) go to
    `generate` for final transcripts; partials decode greedily."""

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        torch_dtype: str = "float32",
        gen_kwargs: Mapping[str, Any] | None = None,
        language: str = "en",
        allowed_languages: Collection[str] = (),
    ) -> None:
        try:
            import torch
            from transformers import WhisperForConditionalGeneration, WhisperProcessor
        except ImportError:
            raise SetupError(
                "--stt whisper needs torch and transformers: "
                "run `pip install 'local-voice-agent[transformers]'`"
            ) from None
        dtype = getattr(torch, torch_dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise SetupError(
                f"Unknown --stt_torch_dtype {torch_dtype!r}: use float32, float16 or bfloat16"
            )
        try:
            self._processor = WhisperProcessor.from_pretrained(model_name)
            model = WhisperForConditionalGeneration.from_pretrained(model_name, dtype=dtype)
        except (OSError, ValueError) as error:
            first_line = str(error).strip().splitlines()[0]
            raise SetupError(
                f"Cannot load the Whisper model {model_name!r} ({first_line}): "
                "pass a local model directory, or go online once to cache it"
            ) from None
        # transformers wraps `to` with functools.wraps, which hides its signature from mypy.
        self._model = model.to(device).eval()  # type: ignore[arg-type]
        self._gen_kwargs = {**DEFAULT_GEN_KWARGS, **(gen_kwargs or {})}
        generation = self._model.generation_config
        # Old generation configs lack these fields, and `generate` then refuses a language.
        multilingual = bool(getattr(generation, "is_multilingual", False)) and bool(
            getattr(generation, "lang_to_id", None)
        )
        known = [token.strip("<|>") for token in getattr(generation, "lang_to_id", None) or {}]
        self.language = WhisperLanguage(
            language, allowed_languages, multilingual, model_name, known=known
        )
        self._multilingual = multilingual

    @property
    def device(self) -> torch.device:
        device: torch.device = self._model.device
        return device

    @property
    def dtype(self) -> torch.dtype:
        dtype: torch.dtype = self._model.dtype
        return dtype

    def warm_up(self) -> None:
        self._decode(np.zeros(SAMPLE_RATE, dtype=np.float32), None, {"max_new_tokens": 4})

    def transcribe_partial(self, audio: bytes) -> PartialTranscript:
        samples = pcm_to_float(audio)
        if is_near_silent(samples):
            return PartialTranscript("")
        greedy = {**self._gen_kwargs, "num_beams": 1}
        return PartialTranscript(self._decode(samples, self.language.current(), greedy))

    def transcribe(self, audio: bytes) -> FinalTranscript:
        samples = pcm_to_float(audio)
        if is_near_silent(samples):
            return FinalTranscript("", self.language.current())
        features = self._features(samples)
        language = self.language.for_final(
            samples.size / SAMPLE_RATE, lambda: self._language_scores(features)
        )
        return FinalTranscript(self._generate(features, language, self._gen_kwargs), language)

    def _features(self, samples: NDArray[np.float32]) -> torch.Tensor:
        features: torch.Tensor = self._processor.feature_extractor(
            samples, sampling_rate=SAMPLE_RATE, return_tensors="pt"
        ).input_features
        return features.to(self._model.device, self._model.dtype)

    def _decode(
        self, samples: NDArray[np.float32], language: str | None, gen_kwargs: Mapping[str, Any]
    ) -> str:
        return self._generate(self._features(samples), language, gen_kwargs)

    def _generate(
        self, features: torch.Tensor, language: str | None, gen_kwargs: Mapping[str, Any]
    ) -> str:
        import torch

        # An English-only model refuses any language argument, even "en"; the turn's language
        # overrides a `--stt_gen_language`.
        language_kwargs = {"language": language} if self._multilingual and language else {}
        with torch.inference_mode():
            ids = self._model.generate(features, **{**gen_kwargs, **language_kwargs})
        text: str = self._processor.tokenizer.decode(ids[0], skip_special_tokens=True)
        return text.strip()

    def _language_scores(self, features: torch.Tensor) -> dict[str, float]:
        """Probabilities of the language tokens after <|startoftranscript|>, as `generate`'s own
        detection computes them, but all of them, so the allow-list can choose."""
        import torch

        generation = self._model.generation_config
        start = torch.tensor([[generation.decoder_start_token_id]], device=self._model.device)
        with torch.inference_mode():
            logits = self._model(input_features=features, decoder_input_ids=start).logits[0, -1]
        lang_to_id: Mapping[str, int] = generation.lang_to_id
        probs = torch.softmax(logits[list(lang_to_id.values())].float(), dim=-1)
        return {token.strip("<|>"): float(p) for token, p in zip(lang_to_id, probs, strict=True)}
