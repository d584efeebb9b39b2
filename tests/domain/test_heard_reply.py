"""What history keeps of an interrupted reply, with plain values."""

from __future__ import annotations

from domain.heard_reply import INTERRUPTED_MARK, SpokenBatch, heard_text, interrupted_reply

BATCHES = [
    SpokenBatch("The capital of France is Paris.", 40),
    SpokenBatch("It sits on the river Seine.", 30),
]


def test_nothing_played_is_nothing_heard() -> None:
    assert heard_text(BATCHES, 0) == ""
    assert heard_text([], 10) == ""


def test_whole_batches_are_kept_whole() -> None:
    assert heard_text(BATCHES, 40) == "The capital of France is Paris."
    assert heard_text(BATCHES, 70) == "The capital of France is Paris. It sits on the river Seine."
    assert heard_text(BATCHES, 500) == heard_text(BATCHES, 70)


def test_a_batch_cut_in_the_middle_keeps_the_words_whose_end_played() -> None:
    # "It sits on the river Seine." is 27 characters; half of it played (13.5): "It sits on"
    # ends at 10, "the" at 14, so "the" was not heard to its end.
    assert heard_text(BATCHES, 40 + 15) == "The capital of France is Paris. It sits on"
    assert heard_text(BATCHES, 1) == ""  # not even the first word's end
    assert heard_text(BATCHES, 39).startswith("The capital of France is")


def test_the_words_kept_grow_with_the_blocks_played() -> None:
    lengths = [len(heard_text(BATCHES, n)) for n in range(71)]
    assert lengths == sorted(lengths)


def test_the_history_marks_the_cut() -> None:
    assert interrupted_reply("It sits on") == f"It sits on {INTERRUPTED_MARK}"
    assert interrupted_reply("") == INTERRUPTED_MARK
