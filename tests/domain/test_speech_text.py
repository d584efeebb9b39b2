import pytest

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
