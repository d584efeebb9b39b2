"""Timers as plain values: set within bounds, due in order, said in words, and spoken unasked
only at a quiet moment."""

import pytest

from domain.timers import (
    MAX_PENDING,
    Timer,
    TimerRefused,
    Timers,
    duration_s,
    quiet_moment,
    spoken_duration,
)


def test_timers_fall_due_in_order_once_each() -> None:
    timers = Timers()
    timers.set(60, "", now_s=100.0)
    timers.set(10, "the oven", now_s=100.0)
    assert timers.take_due(109.9) is None
    assert timers.take_due(110.0) == Timer(10, "the oven", 110.0)
    assert timers.take_due(200.0) == Timer(60, "", 160.0)
    assert timers.take_due(300.0) is None and timers.pending == []


def test_a_timer_is_rounded_to_the_second_and_bounded() -> None:
    timers = Timers()
    assert timers.set(9.6, "", now_s=0.0).seconds == 10
    for seconds in (0, -5, 0.4, 25 * 3600):
        with pytest.raises(TimerRefused):
            timers.set(seconds, "", now_s=0.0)
    for _ in range(MAX_PENDING - 1):
        timers.set(5, "", now_s=0.0)
    with pytest.raises(TimerRefused, match="already set"):
        timers.set(5, "", now_s=0.0)


@pytest.mark.parametrize(("seconds", "words"), [
    (1, "1 second"), (10, "10 seconds"), (60, "1 minute"), (300, "5 minutes"),
    (5400, "1 hour 30 minutes"), (3661, "1 hour 1 minute 1 second"),
])  # fmt: skip
def test_durations_are_said_in_words(seconds: int, words: str) -> None:
    assert spoken_duration(seconds) == words


def test_the_announcement_says_the_reminder_or_the_timer() -> None:
    assert Timer(300, "", 0.0).announcement == "Your timer for 5 minutes is done."
    assert Timer(300, "Take the pasta out.", 0.0).announcement == (
        "Your timer for 5 minutes is done: take the pasta out."
    )


def test_a_timer_left_behind_says_what_it_was_for_and_how_early() -> None:
    assert Timer(300, "", 100.0).left_behind(now_s=40.0) == (
        "Your timer for 5 minutes ends with the agent, 1 minute before it was due."
    )
    assert Timer(90, "the pasta", 90.0).left_behind(now_s=89.7) == (
        "Your timer for 1 minute 30 seconds (the pasta) ends with the agent, 1 second before it "
        "was due."
    )


def test_the_agent_speaks_unasked_only_when_nothing_goes_on() -> None:
    assert quiet_moment(turn_in_flight=False, listening=True, user_silent_s=1.5)
    assert not quiet_moment(turn_in_flight=True, listening=True, user_silent_s=9.0)
    assert not quiet_moment(turn_in_flight=False, listening=False, user_silent_s=9.0)  # speaking
    assert not quiet_moment(turn_in_flight=False, listening=True, user_silent_s=0.3)  # a pause


@pytest.mark.parametrize(("said", "seconds"), [
    ("10 seconds", 10), ("ten seconds", 10), ("5 minutes", 300), ("twenty-five minutes", 1500),
    ("twenty five minutes", 1500), ("an hour", 3600), ("1 hour 30 minutes", 5400),
    ("an hour and a half", 5400), ("half an hour", 1800), ("one and a half hours", 5400),
    ("an hour and 20 minutes", 4800), ("90 seconds", 90), ("1.5 hours", 5400), ("5 min", 300),
    ("10s", 10), ("2h", 7200), ("a minute", 60), ("a couple of minutes", 120), ("300", 300),
    ("a hundred seconds", 100), ("minute", 60), ("thirty second", 30), ("soon", 0), ("", 0),
    ("1234 - 567", 0), ("12 30", 0),
])  # fmt: skip
def test_a_duration_is_read_as_the_user_said_it(said: str, seconds: float) -> None:
    assert duration_s(said) == seconds
