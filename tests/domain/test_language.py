import pytest

from domain.language import (
    MIN_DETECTION_SECONDS,
    choose_language,
    language_name,
    normalize_code,
    reply_language_prompt,
)


@pytest.mark.parametrize(
    ("code", "base"),
    [("fr", "fr"), ("fr-auto", "fr"), ("FR_fr", "fr"), ("auto", None), (None, None), ("", None)],
)
def test_codes_are_normalised(code: str | None, base: str | None) -> None:
    assert normalize_code(code) == base


def test_names_and_the_prompt() -> None:
    assert language_name("de-auto") == "German"
    assert reply_language_prompt("es") == "Please reply to my message in Spanish."
    assert reply_language_prompt(None) is None
    assert reply_language_prompt("xx") is None


def test_detection_is_restricted_to_the_allowed_languages() -> None:
    scores = {"de": 0.5, "fr": 0.3, "en": 0.2}
    assert choose_language(scores, {"en", "fr"}, None, 5.0) == "fr"
    assert choose_language(scores, (), None, 5.0) == "de"


def test_a_short_turn_keeps_the_previous_language() -> None:
    scores = {"de": 0.9}
    assert choose_language(scores, (), "fr", MIN_DETECTION_SECONDS - 0.1) == "fr"
    assert choose_language(scores, (), None, 0.5) == "de"
    assert choose_language({"ja": 1.0}, {"en"}, "en", 5.0) == "en"
