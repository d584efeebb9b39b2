"""The life of a turn, on plain values."""

import pytest

from domain import listening
from domain.heard_reply import INTERRUPTED_MARK
from domain.messages import ChatMessage, FinalTranscript
from domain.turn import CUT_MARK, MAX_USER_CHARS, Outcome, Speculation, TurnLife, reusable


def answered_turn() -> TurnLife:
    life = TurnLife(1)
    life.heard_final(FinalTranscript("What is two plus two?", "en"))
    life.replied("Four.")
    life.reply_finished()
    return life


def test_a_long_turn_joins_its_parts_and_skips_empty_ones() -> None:
    life = TurnLife(1)
    life.heard_part(FinalTranscript(" I would like "))
    life.heard_part(FinalTranscript(""))
    assert life.heard_final(FinalTranscript("a table for four.", "fr")) == (
        "I would like a table for four."
    )
    assert life.language == "fr"


def test_hours_of_parts_keep_only_the_end_of_the_turn() -> None:
    """A television heard for three hours, in 20 s parts: the user message is its last words,
    whole, after a mark that more came before, and not a giant one."""
    life = TurnLife(1)
    parts = [f"News item {n} and the weather for the coast." for n in range(540)]
    for text in parts:
        life.heard_part(FinalTranscript(text))
    user_text = life.heard_final(FinalTranscript("So what do you think?", "en"))
    assert len(user_text) <= MAX_USER_CHARS
    assert user_text.startswith(f"{CUT_MARK} ") and user_text.endswith("So what do you think?")
    kept = user_text.removeprefix(f"{CUT_MARK} ")
    whole = " ".join([*parts, "So what do you think?"])
    assert whole.endswith(" " + kept)  # whole words, the last ones
    assert len(kept) > MAX_USER_CHARS - 20


def test_a_turn_within_the_bound_is_kept_whole_and_unmarked() -> None:
    life = TurnLife(1)
    life.heard_part(FinalTranscript("x" * (MAX_USER_CHARS // 2 - 1)))
    assert life.heard_final(FinalTranscript("y" * (MAX_USER_CHARS // 2))) == (
        "x" * (MAX_USER_CHARS // 2 - 1) + " " + "y" * (MAX_USER_CHARS // 2)
    )


def test_an_answered_turn_keeps_the_exchange_and_reopens_listening() -> None:
    closing = answered_turn().played_out()
    assert closing is not None
    assert closing.outcome is Outcome.ANSWERED
    assert closing.exchange == ("What is two plus two?", "Four.")
    assert closing.transition is listening.RESPONSE_PLAYED
    assert not closing.cut_short and not closing.apologise


def test_a_turn_closes_exactly_once() -> None:
    life = answered_turn()
    assert life.close(Outcome.TIMED_OUT) is not None
    assert life.played_out() is None
    assert life.close(Outcome.STOPPED) is None
    assert life.outcome is Outcome.TIMED_OUT


def test_a_fault_is_apologised_for_once_and_the_turn_then_closes_as_failed() -> None:
    life = TurnLife(1)
    life.heard_final(FinalTranscript("Tell me a story."))
    life.replied("Once upon a time.")
    assert life.fault()
    assert not life.fault()  # a second stage noticing adds no second apology
    closing = life.played_out()  # the apology played
    assert closing is not None and closing.outcome is Outcome.FAILED
    assert closing.exchange is None  # the history keeps nothing of a failed turn
    assert closing.transition is listening.STAGE_FAILED
    assert not closing.apologise  # it already did, before the close


@pytest.mark.parametrize(
    ("outcome", "transition", "cut_short", "apologise"),
    [
        (Outcome.EMPTY, listening.EMPTY_TRANSCRIPT, False, False),
        (Outcome.TIMED_OUT, listening.WATCHDOG_EXPIRED, True, True),
        (Outcome.STOPPED, None, True, False),
    ],
)
def test_what_each_close_entails(
    outcome: Outcome, transition: listening.Transition | None, cut_short: bool, apologise: bool
) -> None:
    closing = answered_turn().close(outcome)
    assert closing is not None
    assert (closing.transition, closing.cut_short, closing.apologise) == (
        transition, cut_short, apologise
    )  # fmt: skip
    assert closing.exchange is None


def test_an_interrupted_turn_keeps_what_was_heard_marked_and_hands_over_to_the_user() -> None:
    life = TurnLife(1)
    life.heard_final(FinalTranscript("Tell me about Paris.", "en"))
    life.replied("Paris is the capital of France. It sits on the Seine.")
    closing = life.interrupted("Paris is the capital")
    assert closing is not None and closing.outcome is Outcome.INTERRUPTED
    assert closing.exchange == ("Tell me about Paris.", f"Paris is the capital {INTERRUPTED_MARK}")
    assert closing.transition is listening.INTERRUPTED
    assert closing.cut_short and not closing.apologise
    assert life.interrupted("more") is None  # closed once


def test_an_answered_reply_is_kept_without_a_mark_the_model_copied_from_its_history() -> None:
    life = TurnLife(1)
    life.heard_final(FinalTranscript("And Spain?", "en"))
    life.replied(f"Madrid. {INTERRUPTED_MARK}")
    life.reply_finished()
    closing = life.played_out()
    assert closing is not None and closing.exchange == ("And Spain?", "Madrid.")


def test_an_interrupted_turn_that_had_failed_keeps_nothing() -> None:
    life = answered_turn()
    assert life.fault()
    closing = life.interrupted("Four")
    assert closing is not None and closing.exchange is None


def test_interrupted_reopens_listening() -> None:
    machine = listening.ListeningStateMachine(watchdog_s=30)
    machine.fire(listening.TURN_ENDED, 0.0)
    assert not machine.should_listen
    assert machine.fire(listening.INTERRUPTED, 1.0)
    assert machine.phase is listening.Phase.LISTENING and machine.should_listen
    assert not machine.fire(listening.INTERRUPTED, 2.0)  # only from a busy agent


def test_a_fault_after_the_close_is_ignored() -> None:
    life = answered_turn()
    life.close(Outcome.STOPPED)
    assert not life.fault()


def test_only_a_whole_non_empty_reply_answers_a_turn() -> None:
    life = TurnLife(1)
    life.heard_final(FinalTranscript("Hello?"))
    life.replied("Hi")
    with pytest.raises(ValueError):
        life.played_out()  # the reply never finished
    life.reply_finished()
    assert life.played_out() is not None


def test_a_runaway_reply_ends_before_the_loop_grows() -> None:
    life = TurnLife(1)
    deltas = ["You're not too helpful. "] * 5
    kept = [delta for delta in deltas if life.replied(delta)]
    assert len(kept) == 2
    assert life.reply == "You're not too helpful. " * 2
    assert life.runaway is not None and "same sentence" in life.runaway


def test_a_pause_transcript_is_the_final_one_only_if_the_turn_ends_in_that_pause() -> None:
    speculation = Speculation()
    pause = speculation.paused()
    assert speculation.transcribed(pause, FinalTranscript("What time is it?"))
    assert speculation.take(after_pause=True) == FinalTranscript("What time is it?")
    assert speculation.take(after_pause=True) is None  # taken once


def test_a_transcript_arriving_after_the_user_went_on_is_for_half_a_question() -> None:
    speculation = Speculation()
    pause = speculation.paused()
    speculation.resumed()
    assert not speculation.transcribed(pause, FinalTranscript("Tell me"))
    assert speculation.take(after_pause=True) is None


def test_a_pause_is_over_once_the_user_speaks_again_or_the_turn_takes_it() -> None:
    speculation = Speculation()
    pause = speculation.paused()
    assert speculation.still_paused(pause)
    speculation.resumed()
    assert not speculation.still_paused(pause)
    later = speculation.paused()
    assert not speculation.still_paused(pause) and speculation.still_paused(later)
    speculation.take(after_pause=True)
    assert not speculation.still_paused(later)


def test_a_transcript_of_an_older_pause_is_stale() -> None:
    speculation = Speculation()
    old = speculation.paused()
    speculation.resumed()
    speculation.paused()
    assert not speculation.transcribed(old, FinalTranscript("Tell me"))


def test_an_empty_pause_transcript_asks_for_no_reply() -> None:
    speculation = Speculation()
    assert not speculation.transcribed(speculation.paused(), FinalTranscript("  "))


def test_a_turn_that_did_not_end_in_the_pause_discards_its_transcript() -> None:
    speculation = Speculation()
    speculation.transcribed(speculation.paused(), FinalTranscript("Tell me"))
    assert speculation.take(after_pause=False) is None
    assert speculation.take(after_pause=True) is None


def test_a_reply_asked_ahead_answers_only_exactly_the_same_request() -> None:
    asked = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi")]
    assert reusable(asked, list(asked))
    assert not reusable(asked, [*asked[:1], ChatMessage("user", "Hi there")])
    assert not reusable(asked, [*asked, ChatMessage("user", "Reply in French.")])
