"""The `--language` policy of the Whisper-family recognisers."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import structlog

from adapters.errors import SetupError
from domain.language import MIN_DETECTION_SECONDS, choose_language, normalize_code

log = structlog.get_logger(__name__)


class WhisperLanguage:
    """The `--language` setting of a Whisper model and the language of the previous turn.

    `setting` is "auto" (detect per turn within `allowed`; an empty collection allows all) or a
    code. An English-only model always uses "en": "auto" says so once, another code is refused.
    A multilingual model refuses a code outside `known` (its languages; empty: not checked), which
    would otherwise fail every decode.
    """

    def __init__(
        self,
        setting: str,
        allowed: Collection[str],
        multilingual: bool,
        model_name: str,
        known: Collection[str] = (),
    ) -> None:
        code = normalize_code(setting)
        unknown = sorted({c for c in (code, *map(normalize_code, allowed)) if c} - set(known))
        if multilingual and known and unknown:
            raise SetupError(
                f"The STT model {model_name} knows no language {', '.join(unknown)}: give "
                "--language (and --languages) as codes such as en, fr, de, or --language auto"
            )
        if not multilingual:
            if code not in (None, "en"):
                raise SetupError(
                    f"The STT model {model_name} is English-only: use --language en, "
                    f"or a multilingual Whisper model for --language {setting} (faster-whisper's "
                    "default for it: base)"
                )
            if code is None:
                log.info("stt_language", model=model_name, note="English-only model: auto uses en")
            code = "en"
        self.fixed = code
        self.allowed = frozenset(c for c in map(normalize_code, allowed) if c)
        self.previous: str | None = None

    def current(self) -> str | None:
        """The fixed language, else the last turn's (None: the model decides). Partials and
        silent turns use it, since detection on them would be noise."""
        return self.fixed or self.previous

    def for_final(
        self, speech_seconds: float, scores: Callable[[], Mapping[str, float]]
    ) -> str | None:
        """The turn's language; `scores` (code -> probability) is only called when detection
        can change the answer, since a short turn keeps the previous language anyway."""
        if self.fixed:
            return self.fixed
        short = self.previous is not None and speech_seconds < MIN_DETECTION_SECONDS
        self.previous = choose_language(
            {} if short else scores(), self.allowed, self.previous, speech_seconds
        )
        return self.previous
