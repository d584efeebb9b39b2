"""The strict grader of benchmarks/answer_quality.py, on answers written by hand."""

import pytest

from benchmarks.answer_quality import is_right
from benchmarks.answer_questions import ABOUT_USER, KINDS, QUESTIONS, UNKNOWABLE, Question


def question(text: str) -> Question:
    return next(q for q in QUESTIONS if q.turns[-1] == text)


SPIDER = question("How many legs does a spider have?")
TIME = question("What time is it?")
NAME = next(q for q in QUESTIONS if q.kind == ABOUT_USER and q.turns[-1] == "What is my name?")


@pytest.mark.parametrize(
    ("reply", "right"),
    [
        ("A spider has eight legs.", True),
        ("Spiders have 8 legs.", True),
        ("A spider has four legs.", False),
        ("A spider has four legs, or eight if you count them all.", False),  # contradicts itself
        ("Spiders are arachnids.", False),  # the fact is missing
    ],
)
def test_the_right_fact_and_no_contradicting_one(reply: str, right: bool) -> None:
    assert is_right(reply, SPIDER) is right


@pytest.mark.parametrize(
    ("reply", "right"),
    [("Your name is Sam.", True), ("My name is Sam.", False), ("Hello!", False)],
)
def test_the_users_facts_are_told_back_as_theirs(reply: str, right: bool) -> None:
    assert is_right(reply, NAME) is right


@pytest.mark.parametrize(
    ("reply", "right"),
    [
        ("Sorry, I don't know that.", True),
        ("I can't tell the time.", True),
        ("It is three o'clock.", False),
        ("I don't have a clock, but it is probably 3 pm.", False),
    ],
)
def test_an_unknowable_question_is_answered_by_saying_so(reply: str, right: bool) -> None:
    assert TIME.kind == UNKNOWABLE
    assert is_right(reply, TIME) is right


def test_at_least_eighty_questions_of_every_kind() -> None:
    assert len(QUESTIONS) >= 80
    assert {q.kind for q in QUESTIONS} == set(KINDS)
