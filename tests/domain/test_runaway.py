"""RunawayGuard on plain strings, fed as a model streams them: a few characters at a time."""

from __future__ import annotations

import pytest

from domain.runaway import RunawayGuard

# What greedy SmolLM2 said to a user here (the loop went on for 4,153 characters).
SMOLLM2_LOOP = (
    "I'm sorry, but I can't help with that. You're not too helpful. You're not too helpful. "
    "You're not too helpful. You're not too helpful. You're not too helpful. "
)
GOOD_REPLIES = [
    "The capital of France is Paris.",
    "Mix blue and yellow and you get green. It's the colour of grass, and of most leaves.",
    "Sure. First, preheat the oven to 180 degrees. Then mix the flour, the sugar and the eggs. "
    "Bake it for about 30 minutes, until a knife comes out clean. Let it cool before you cut it.",
    "Yes. Well, no. It depends on the weather: if it rains, take an umbrella; if it is sunny, "
    "take a hat. If it is both, take both.",
    "One, two, three, four, five, six, seven, eight, nine, ten.",
]


def stream(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def first_trip(guard: RunawayGuard, text: str, size: int = 3) -> int | None:
    """How many characters were fed when the guard first said stop (None: never)."""
    fed = 0
    for delta in stream(text, size):
        fed += len(delta)
        if guard.feed(delta):
            return fed
    return None


def test_the_smollm2_loop_is_stopped_at_its_third_sentence() -> None:
    guard = RunawayGuard()
    fed = first_trip(guard, SMOLLM2_LOOP)

    third = SMOLLM2_LOOP.index("You're not too helpful.", 70) + len("You're not too helpful. ")
    assert fed is not None and fed <= third + 3
    assert guard.reason is not None and "you're not too helpful" in guard.reason


@pytest.mark.parametrize("reply", GOOD_REPLIES)
def test_ordinary_replies_run_to_their_end(reply: str) -> None:
    guard = RunawayGuard(max_chars=1000)
    assert first_trip(guard, reply + " ") is None
    assert guard.reason is None and not guard.tripped


@pytest.mark.parametrize("size", [1, 2, 5, 40])
def test_how_the_deltas_are_cut_does_not_matter(size: int) -> None:
    assert first_trip(RunawayGuard(), SMOLLM2_LOOP, size) is not None
    assert first_trip(RunawayGuard(), GOOD_REPLIES[2] + " ", size) is None


def test_a_phrase_looping_without_punctuation_is_stopped() -> None:
    guard = RunawayGuard()
    assert first_trip(guard, "and I love you " * 10) is not None
    assert guard.reason is not None and "phrase" in guard.reason


def test_two_sentences_taking_turns_are_a_loop_too() -> None:
    guard = RunawayGuard()
    assert first_trip(guard, "Go left. Go right. " * 4) is not None


def test_case_and_punctuation_do_not_hide_a_repeat() -> None:
    guard = RunawayGuard()
    assert not guard.feed("Really nice! ")
    assert not guard.feed("really, nice. ")
    assert guard.feed("REALLY NICE?! ")


def test_a_reply_longer_than_the_limit_is_stopped() -> None:
    guard = RunawayGuard(max_chars=100)
    words = " ".join(f"word{n}" for n in range(100))
    fed = first_trip(guard, words)
    assert fed is not None and 100 < fed <= 103
    assert guard.reason == "longer than 100 characters"


def test_it_stays_tripped_until_reset() -> None:
    guard = RunawayGuard(max_chars=10)
    assert guard.feed("a" * 11)
    assert guard.feed("more")
    assert guard.feed("")
    guard.reset()
    assert not guard.tripped and guard.reason is None
    assert not guard.feed("Hello. ")
    for _ in range(2):
        guard.reset()
        assert first_trip(guard, "Hi. Hi. ") is None  # two, not three, in each reply


def test_impossible_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RunawayGuard(max_chars=0)
    with pytest.raises(ValueError):
        RunawayGuard(sentence_repeats=1)
