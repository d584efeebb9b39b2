import pytest

from domain.heard_reply import INTERRUPTED_MARK
from domain.speech_text import speakable


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("**Bold** move", "Bold move"),
        ("This is *very* good", "This is very good"),
        ("## Weather\nSunny", "Weather\nSunny"),
        ("- eggs\n- milk", "eggs\nmilk"),
        ("See [the docs](https://example.org).", "See the docs."),
        ("Run `ls` now", "Run ls now"),
        ("Great job 🎉🎉", "Great job"),
        ("I ❤️ it", "I it"),
        ("**Note that", "Note that"),
    ],
)
def test_markdown_and_emoji_are_not_read_aloud(raw: str, spoken: str) -> None:
    assert speakable(raw) == spoken


@pytest.mark.parametrize(
    "kept", ["2 * 3 = 6", "def f(*args, **kwargs)", "#include <stdio.h>", "snake_case_name", "C#"]
)
def test_code_like_text_is_kept(kept: str) -> None:
    assert speakable(kept) == kept


def test_nothing_to_say_is_empty() -> None:
    assert speakable("```\n") == ""
    assert speakable("🙂") == ""


def test_the_historys_interruption_mark_copied_by_the_model_is_not_spoken() -> None:
    assert speakable(f"The {INTERRUPTED_MARK} capital is Paris.") == "The capital is Paris."
    assert speakable(INTERRUPTED_MARK) == ""
