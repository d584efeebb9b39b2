import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.sentence_batching import BatchingConfig, SentenceBatcher, sentence_ends


def batch_all(deltas: list[str], **config: object) -> list[str]:
    batcher = SentenceBatcher(BatchingConfig(**config))  # type: ignore[arg-type]
    out: list[str] = []
    for delta in deltas:
        out += batcher.feed(delta)
    return out + batcher.flush()


def sentences(text: str) -> list[str]:
    return batch_all([text], sentences_per_batch=1)


def test_whitespace_survives_delta_boundaries() -> None:
    assert "".join(batch_all(["What is ", "the weather ", "today?"])) == (
        "What is the weather today?"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith is in.",
        "Bring fruit, e.g. apples and pears.",
        "She moved to the U.S. last year.",
        "Pi is 3.14 roughly.",
        "It costs $29.95 today.",
        "Well... I am not sure.",
        "J. K. Rowling wrote it.",
    ],
)
def test_these_are_one_sentence(text: str) -> None:
    assert sentences(text) == [text]


def test_real_sentence_ends_are_cut() -> None:
    assert sentences("Hello there! How are you? I am fine. Thanks.") == [
        "Hello there!",
        " How are you?",
        " I am fine.",
        " Thanks.",
    ]


def test_a_number_split_across_deltas_is_not_cut() -> None:
    assert batch_all(["It is 3.", "14 and $29.", "95. Next one."], sentences_per_batch=1) == [
        "It is 3.14 and $29.95.",
        " Next one.",
    ]


def test_text_without_spaces_is_cut_at_cjk_punctuation() -> None:
    assert sentences("你好。今天天气很好。再见") == ["你好。", "今天天气很好。", "再见"]


def test_a_long_run_without_sentence_end_still_goes_out() -> None:
    text = "word " * 200
    batches = batch_all([text])
    assert len(batches) > 1 and "".join(batches) == text


def test_batches_hold_the_configured_number_of_sentences() -> None:
    text = "One. Two. Three. Four. Five."
    assert batch_all([text], sentences_per_batch=3) == ["One. Two. Three.", " Four. Five."]


def test_the_early_first_fragment_goes_out_at_the_first_clause() -> None:
    deltas = ["Well, the weather", " today looks lovely, and warm. Also sunny. Yes. Done."]
    batcher = SentenceBatcher(BatchingConfig(sentences_per_batch=3, early_first_fragment=True))
    assert batcher.feed(deltas[0]) == []
    first = batcher.feed(deltas[1])
    assert first[0] == "Well, the weather today looks lovely,"


def first_fragment(deltas: list[str]) -> str:
    batcher = SentenceBatcher(BatchingConfig(sentences_per_batch=3, early_first_fragment=True))
    return next(b for d in [*deltas, None] for b in (batcher.feed(d) if d else batcher.flush()))


def test_a_long_first_sentence_goes_out_before_a_word_that_opens_a_phrase() -> None:
    deltas = ["Cats are known for their", " playful nature", " and often", " sleep all day."]
    assert first_fragment(deltas) == "Cats are known for their playful nature"
    assert first_fragment(["The painter who", " made it is Leonardo."]) == (
        "The painter who made it is Leonardo."  # too short before "who" to stand alone
    )


@pytest.mark.parametrize(
    "text",
    [
        "I really like that book a lot.",  # a determiner
        "It's a lovely day and so good outside.",  # an adverb
        "My new android phone charges really fast.",  # "and" opening a longer word
    ],
)
def test_no_cut_where_the_word_belongs_to_the_phrase_before(text: str) -> None:
    assert first_fragment([text]) == text


def test_a_phrase_word_still_being_written_is_not_cut_before() -> None:
    batcher = SentenceBatcher(BatchingConfig(early_first_fragment=True))
    assert batcher.feed("Leaves change colour every autumn an") == []  # "and", "another"?
    assert batcher.feed("other way") == []


def test_a_first_sentence_goes_out_before_its_verb_after_a_long_enough_subject() -> None:
    batcher = SentenceBatcher(BatchingConfig(early_first_fragment=True))
    assert batcher.feed("The capital of France") == []
    assert batcher.feed(" is") == ["The capital of France"]  # "is" may yet be "island"
    assert batcher.feed(" Paris.") == []
    assert batcher.flush() == [" is Paris."]
    assert first_fragment(["Romeo and Juliet were written by Shakespeare."]) == "Romeo and Juliet"
    assert first_fragment(["After Monday, the next day is Tuesday."]) == (
        "After Monday, the next day"
    )
    assert first_fragment(["The sky is blue on a clear day."]) == "The sky"
    assert first_fragment(["A leap year has 366 days."]) == "A leap year"


@pytest.mark.parametrize(
    "text",
    [
        "A cat is a mammal.",  # too short a subject
        "There are 24 hours in a day.",  # one word
        "I think it is going to rain.",  # a pronoun
        "Yes. Cats are great.",  # the sentence before ends first
        "Paris is the capital of France.",
    ],
)
def test_no_cut_before_a_verb_after_a_short_subject_or_a_pronoun(text: str) -> None:
    assert first_fragment([text]) == text.split(". ")[0].rstrip(".") + "."


def test_the_first_fragment_does_not_wait_for_the_space_after_its_end() -> None:
    batcher = SentenceBatcher(BatchingConfig(early_first_fragment=True))
    assert batcher.feed("Spiders") == []
    assert batcher.feed(" have eight legs.") == ["Spiders have eight legs."]
    assert SentenceBatcher(BatchingConfig(early_first_fragment=True)).feed("Four!") == ["Four!"]
    clause = SentenceBatcher(BatchingConfig(early_first_fragment=True))
    assert clause.feed("To sleep better at night,") == ["To sleep better at night,"]


@pytest.mark.parametrize(
    "so_far",
    [
        "It is 3.",  # maybe 3.5
        "About 1,",  # maybe 1,000
        "Ask Dr.",
        "She moved to the U.S.",
        "Well,",  # too short a clause to stand alone
        'He said "hello."',  # after a closing quote, as before, the space confirms it
    ],
)
def test_an_end_that_the_next_token_may_undo_waits_for_it(so_far: str) -> None:
    batcher = SentenceBatcher(BatchingConfig(early_first_fragment=True))
    assert batcher.feed(so_far) == []


def test_later_batches_still_wait_for_the_space() -> None:
    batcher = SentenceBatcher(BatchingConfig(early_first_fragment=True))
    assert batcher.feed("Yes, it is. It costs 3.") == ["Yes, it is."]
    assert batcher.feed("5 euros. More") == [" It costs 3.5 euros."]


def test_after_the_early_fragment_one_sentence_then_whole_batches() -> None:
    text = "Today the weather is nice, and warm. It may rain. Then sun. Then snow. Done."
    assert batch_all([text], sentences_per_batch=3, early_first_fragment=True) == [
        "Today the weather",
        " is nice, and warm.",
        " It may rain. Then sun. Then snow.",
        " Done.",
    ]


def test_reset_forgets_the_pending_text() -> None:
    batcher = SentenceBatcher(BatchingConfig())
    batcher.feed("Half a sent")
    batcher.reset()
    assert batcher.flush() == []


def test_sentence_ends_are_offsets_after_the_punctuation() -> None:
    assert sentence_ends("Hi. Yo! ") == [3, 7]


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abnd .,!?3$\n…e.g", max_size=400),
    st.lists(st.integers(min_value=0, max_value=400), max_size=20),
    st.integers(min_value=1, max_value=4),
    st.booleans(),
)
def test_batching_never_loses_or_reorders_text(
    text: str, cuts: list[int], per_batch: int, early: bool
) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    deltas = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    batches = batch_all(deltas, sentences_per_batch=per_batch, early_first_fragment=early)
    joined = "".join(batches)
    assert joined == text or (not text[len(joined) :].strip() and text.startswith(joined))
    assert all(b.strip() for b in batches)


def test_a_speaker_about_to_run_dry_gets_what_is_ready_at_once() -> None:
    batcher = SentenceBatcher(BatchingConfig(sentences_per_batch=3))
    assert batcher.feed("One thing. Two things. ") == []  # a batch waits for three
    assert batcher.feed("Three", hurry=True) == ["One thing.", " Two things."]
    assert batcher.feed(" of them make a crowd, and four more", hurry=True) == [
        " Three of them make a crowd,"
    ]  # no sentence ready: a clause long enough to stand alone
    assert batcher.feed(", I say", hurry=True) == []  # too short a clause: it waits
    assert batcher.flush() == [" and four more, I say"]
