import pytest

from domain.model_choice import BUDGET_S, SENTENCE_TOKENS, Candidate, Pace, choose

BEST_FIRST = [Candidate("large", 2.27), Candidate("small", 1.0)]


def test_the_first_sentence_is_the_question_read_and_the_sentence_written() -> None:
    pace = Pace(read_s=0.2, token_s=0.02)

    assert pace.first_sentence_s() == pytest.approx(0.2 + SENTENCE_TOKENS * 0.02)
    assert pace.first_sentence_s(cost=2.0) == pytest.approx(2 * (0.2 + SENTENCE_TOKENS * 0.02))


def test_the_tuning_machine_keeps_the_small_model() -> None:
    # The 0.5B measured on the two cores the agent was tuned on.
    assert choose(Pace(read_s=0.198, token_s=0.0221), BEST_FIRST) == "small"


def test_a_machine_fast_enough_gets_the_large_model() -> None:
    # Three times the tuning machine's pace: the large model's first sentence in ~0.42 s.
    pace = Pace(read_s=0.066, token_s=0.0074)

    assert pace.first_sentence_s(2.27) <= BUDGET_S
    assert choose(pace, BEST_FIRST) == "large"


def test_the_budget_decides_at_its_edge() -> None:
    pace = Pace(read_s=0.25, token_s=1 / 64)  # 0.5 s for the small model, 1.0 s for the large
    candidates = [Candidate("large", 2.0), Candidate("small", 1.0)]

    assert choose(pace, candidates, budget_s=1.0) == "large"
    assert choose(pace, candidates, budget_s=0.99) == "small"


def test_the_lightest_when_even_it_is_over_budget_or_the_pace_is_unknown() -> None:
    assert choose(Pace(read_s=5.0, token_s=1.0), BEST_FIRST) == "small"
    assert choose(None, BEST_FIRST) == "small"


def test_no_candidates_is_a_mistake() -> None:
    with pytest.raises(ValueError):
        choose(None, [])


def test_a_pace_is_positive() -> None:
    with pytest.raises(ValueError):
        Pace(read_s=0.0, token_s=0.01)
