"""Language codes, names, per-turn language choice and the reply-language prompt."""

from __future__ import annotations

from collections.abc import Collection, Mapping

LANGUAGE_NAMES: Mapping[str, str] = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "he": "Hebrew",
    "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "ko": "Korean", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "th": "Thai", "tr": "Turkish",
    "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip

# Below this much speech, language identification is mostly guesswork.
MIN_DETECTION_SECONDS = 1.5


def normalize_code(code: str | None) -> str | None:
    """'fr', 'fr-auto', 'FR', 'fr-FR', 'fr_FR' -> 'fr'; None, '', 'auto' -> None."""
    if not code:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return None if base in ("", "auto") else base


def language_name(code: str | None) -> str | None:
    base = normalize_code(code)
    return LANGUAGE_NAMES.get(base) if base else None


def reply_language_prompt(code: str | None) -> str | None:
    """The instruction added to the request (never to the stored history) when the language of
    the user's turn is known."""
    name = language_name(code)
    return f"Please reply to my message in {name}." if name else None


def choose_language(
    scores: Mapping[str, float],
    allowed: Collection[str],
    previous: str | None,
    speech_seconds: float,
) -> str | None:
    """Pick the turn's language from detector scores (code -> probability).

    Only `allowed` codes count (an empty collection allows all). A short turn keeps the
    previous language when there is one, since detection on a word or two is unreliable.
    """
    if previous and speech_seconds < MIN_DETECTION_SECONDS:
        return previous
    candidates = {
        base: score
        for code, score in scores.items()
        if (base := normalize_code(code)) and (not allowed or base in allowed)
    }
    if not candidates:
        return previous
    return max(candidates, key=lambda c: candidates[c])
