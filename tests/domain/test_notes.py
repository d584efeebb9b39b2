from domain.notes import INTRO, SAID, UTTERANCE_CHARS, Notes


def words(text: str) -> int:
    return len(text.split())


def test_the_users_words_are_quoted_as_theirs_and_the_summary_follows() -> None:
    notes = Notes(("My name is Maria.", "I live in Lisbon."), "We talked about whales.")
    assert notes.text() == (
        f"{INTRO} {SAID} «My name is Maria.» «I live in Lisbon.» Summary: We talked about whales."
    )
    assert Notes().empty and Notes().text() == INTRO


def test_what_the_user_said_is_kept_once_in_order() -> None:
    notes = Notes(("Hello.",)).hearing(["I am Sam.", "Hello.", "  I   am Sam. "], 100, words)
    assert notes.said == ("Hello.", "I am Sam.")


def test_past_its_room_the_most_repeated_kind_of_utterance_goes_first() -> None:
    said = ["My name is Maria and I live in Lisbon."]
    said += [f"Tell me about topic {n}." for n in range(1, 30)]
    said += ["I have two cats.", "Tell me about cats."]
    notes = Notes().hearing(said, room=40, cost=words)
    assert notes.said[0] == "My name is Maria and I live in Lisbon."
    assert "I have two cats." in notes.said
    assert notes.said[-1] == "Tell me about cats."  # the newest of a kind stay longest
    assert sum(words(u) for u in notes.said) <= 40


def test_an_utterance_of_a_television_is_kept_short() -> None:
    notes = Notes().hearing(["blah " * 500], 10_000, words)
    assert len(notes.said[0]) <= UTTERANCE_CHARS and notes.said[0].endswith("blah")
