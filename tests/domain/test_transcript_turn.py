"""Turn ends judged by the pause's transcript, on plain values: the segmenter pauses, the test
hands it the words the recogniser would have heard, as many blocks later as the decode took."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.audio import BLOCK_SECONDS
from domain.end_of_turn import (
    Completeness,
    ModelTurnConfig,
    TranscriptTurnConfig,
    blocks,
    transcript_completeness,
)
from domain.turn_segmentation import (
    SegmentationEvent,
    SpeechPaused,
    SpeechResumed,
    TurnEnded,
    TurnMayEnd,
    TurnSegmenter,
    VadConfig,
)
from tests.domain.test_turn_segmentation import QUIET, SPEECH, block

QUESTION, STATEMENT, TRAILING, UNSURE = (
    Completeness.QUESTION, Completeness.STATEMENT, Completeness.INCOMPLETE, Completeness.UNSURE,
)  # fmt: skip
JUDGED = TranscriptTurnConfig(question_ms=200, statement_ms=500, incomplete_ms=1500)
CONFIG = VadConfig(partial_interval_ms=0, transcript_turn=JUDGED)
DECODE_BLOCKS = 3  # the transcript comes ~100 ms after the pause


@pytest.mark.parametrize(
    ("text", "completeness"),
    [
        ("What is the capital of France?", QUESTION),
        ("Where are you from?", QUESTION),  # a preposition may end a question
        (" How many legs does a spider have? ", QUESTION),
        ("The sky is blue.", STATEMENT),
        ("Thanks, that was really helpful!", STATEMENT),
        ("Okay, go on.", STATEMENT),  # a phrasal verb's particle ends it
        ("Tell me about the moon and", TRAILING),
        ("Tell me about the moon and.", TRAILING),  # Whisper's full stop after a trailing word
        ("So, um.", TRAILING),
        ("What is the capital of the?", TRAILING),
        ("TRAILING was wondering if...", TRAILING),
        ("TRAILING need milk, eggs,", TRAILING),
        ("Can you give me a recipe for.", TRAILING),  # a preposition without a question mark
        ("It was the best of times\u2026", TRAILING),
        ("the sky is blue", UNSURE),  # no punctuation: no sign either way
        ("", UNSURE),
        ("   ", UNSURE),
    ],
)
def test_a_transcript_reads_as_finished_trailing_or_neither(
    text: str, completeness: Completeness
) -> None:
    assert transcript_completeness(text, "en") is completeness
    assert transcript_completeness(text, None) is completeness  # an English-only recogniser


@pytest.mark.parametrize("language", ["fr", "de", "es", "zh"])
def test_in_another_language_the_words_do_not_judge(language: str) -> None:
    assert transcript_completeness("Quelle est la capitale de la France ?", language) is UNSURE
    assert transcript_completeness("Und dann and", language) is UNSURE


def test_each_judgement_sets_its_silence_and_the_audio_model_can_veto_an_early_end() -> None:
    usual = 500.0
    assert JUDGED.silence_ms(QUESTION, None, usual) == 200
    assert JUDGED.silence_ms(STATEMENT, None, usual) == 500
    assert JUDGED.silence_ms(TRAILING, None, usual) == 1500
    assert JUDGED.silence_ms(UNSURE, None, usual) == usual
    assert JUDGED.silence_ms(QUESTION, True, usual) == 200
    assert JUDGED.silence_ms(QUESTION, False, usual) == usual  # the audio says the user is not done
    assert JUDGED.silence_ms(TRAILING, True, usual) == 1500  # trailing words win over the audio
    # The usual silence bounds both ways: a shorter one is never made longer for a finished
    # sentence, a longer one never shorter for trailing words.
    assert JUDGED.silence_ms(STATEMENT, None, 300) == 300
    assert JUDGED.silence_ms(TRAILING, None, 2000) == 2000


def test_trailing_words_must_wait_longer_than_finished_ones() -> None:
    with pytest.raises(ValueError, match="incomplete_ms"):
        TranscriptTurnConfig(question_ms=200, statement_ms=600, incomplete_ms=500)


def talk(
    config: VadConfig,
    probabilities: list[float],
    texts: list[str],
    audio: Sequence[float] = (),
) -> list[tuple[int, SegmentationEvent]]:
    """Feeds the blocks; each pause's transcript is the next of `texts`, handed back
    DECODE_BLOCKS after the pause (before that block), and each question to the audio model is
    answered with the next of `audio`. Returns (block index, event) pairs."""
    segmenter = TurnSegmenter(config)
    texts, answers = list(texts), list(audio)
    due: tuple[int, str] | None = None
    seen: list[tuple[int, SegmentationEvent]] = []

    def record(i: int, events: Sequence[SegmentationEvent]) -> None:
        nonlocal due
        for event in events:
            seen.append((i, event))
            if isinstance(event, SpeechPaused):
                due = (i + DECODE_BLOCKS, texts.pop(0))
            elif isinstance(event, SpeechResumed):
                due = None
            elif isinstance(event, TurnMayEnd):
                record(i, segmenter.judge(answers.pop(0)))

    for i, p in enumerate(probabilities):
        if due is not None and due[0] == i:
            text, due = due[1], None
            record(i, segmenter.transcribed(text, "en"))
        record(i, segmenter.feed(block(i), p, i * BLOCK_SECONDS))
    return seen


def ended_at(seen: list[tuple[int, SegmentationEvent]]) -> list[int]:
    return [i for i, event in seen if isinstance(event, TurnEnded)]


def test_a_finished_question_ends_the_turn_after_a_short_silence() -> None:
    seen = talk(CONFIG, [SPEECH] * 30 + [QUIET] * 80, ["How far away is the moon?"])
    assert ended_at(seen) == [30 + blocks(200) - 1]
    ended = seen[-1][1]
    assert isinstance(ended, TurnEnded) and ended.after_pause  # its transcript is the final one


def test_a_statement_waits_the_usual_silence_and_trailing_words_wait_longer() -> None:
    statement = talk(CONFIG, [SPEECH] * 30 + [QUIET] * 80, ["TRAILING like tea."])
    assert ended_at(statement) == [30 + blocks(500) - 1]
    trailing = talk(CONFIG, [SPEECH] * 30 + [QUIET] * 80, ["TRAILING like tea and"])
    assert ended_at(trailing) == [30 + blocks(1500) - 1]


def test_a_thinking_pause_after_and_does_not_cut_the_user_off() -> None:
    pause = [QUIET] * blocks(1200)
    probabilities = [SPEECH] * 30 + pause + [SPEECH] * 30 + [QUIET] * 80
    seen = talk(CONFIG, probabilities, ["Tell me about the moon and", "... why it has phases?"])
    assert len(ended_at(seen)) == 1 and "SpeechResumed" in [type(e).__name__ for _, e in seen]
    assert ended_at(seen) == [30 + len(pause) + 30 + blocks(200) - 1]


def test_a_transcript_that_comes_late_ends_the_turn_at_once() -> None:
    slow = blocks(300)  # the recogniser took longer than the question's silence
    segmenter = TurnSegmenter(CONFIG)
    for i in range(30 + slow):
        p = SPEECH if i < 30 else QUIET
        assert not any(
            isinstance(e, TurnEnded) for e in segmenter.feed(block(i), p, i * BLOCK_SECONDS)
        )
    ended = segmenter.transcribed("Is it raining?", "en")
    assert len(ended) == 1 and isinstance(ended[0], TurnEnded)


def test_a_transcript_outside_a_pause_or_a_second_one_changes_nothing() -> None:
    segmenter = TurnSegmenter(CONFIG)
    for i in range(30):
        segmenter.feed(block(i), SPEECH, i * BLOCK_SECONDS)
    assert segmenter.transcribed("Is it raining?", "en") == []  # the user is still speaking
    for i in range(30, 30 + blocks(150)):
        segmenter.feed(block(i), QUIET, i * BLOCK_SECONDS)
    assert segmenter.transcribed("TRAILING like tea and", "en") == []  # trailing: waits on
    assert segmenter.transcribed("Is it raining?", "en") == []  # the pause has its judgement
    events = segmenter.feed(block(40), QUIET, 40 * BLOCK_SECONDS)
    assert not any(isinstance(e, TurnEnded) for e in events)


def test_speaking_again_forgets_the_judgement_of_the_last_pause() -> None:
    # "and" made the first pause a long one; the next pause's question ends the turn early.
    probabilities = [SPEECH] * 30 + [QUIET] * 10 + [SPEECH] * 20 + [QUIET] * 80
    seen = talk(CONFIG, probabilities, ["Tell me about the moon and", "Why does it shine?"])
    assert ended_at(seen) == [60 + blocks(200) - 1]
    # Without a transcript for the second pause, the usual silence ends it, not the long one.
    segmenter = TurnSegmenter(CONFIG)
    ends = []
    for i, p in enumerate(probabilities):
        if i == 30 + DECODE_BLOCKS + 2:
            assert segmenter.transcribed("Tell me about the moon and", "en") == []
        ends += [
            i for e in segmenter.feed(block(i), p, i * BLOCK_SECONDS) if isinstance(e, TurnEnded)
        ]
    assert ends == [60 + blocks(500) - 1]


def test_with_the_audio_model_a_finished_sentence_ends_early_only_if_it_agrees() -> None:
    config = VadConfig(partial_interval_ms=0, transcript_turn=TranscriptTurnConfig(ask_audio=True))
    agreed = talk(config, [SPEECH] * 30 + [QUIET] * 80, ["Is it raining?"], audio=[0.9])
    assert ended_at(agreed) == [30 + blocks(200) - 1]
    vetoed = talk(config, [SPEECH] * 30 + [QUIET] * 80, ["Is it raining?"], audio=[0.2])
    assert ended_at(vetoed) == [30 + blocks(500) - 1]
    # Trailing words are not put to the model at all.
    trailing = talk(config, [SPEECH] * 30 + [QUIET] * 80, ["It is raining and"], audio=[])
    assert ended_at(trailing) == [30 + blocks(1500) - 1]


def test_settings_that_leave_no_room_for_the_transcript_are_refused() -> None:
    with pytest.raises(ValueError, match="pause that is transcribed"):
        VadConfig(transcript_turn=TranscriptTurnConfig(question_ms=32, statement_ms=500))
    with pytest.raises(ValueError, match="not both"):
        VadConfig(model_turn=ModelTurnConfig(), transcript_turn=JUDGED)
    # Without a pause to transcribe, the silence alone decides.
    assert VadConfig(min_silence_ms=40, transcript_turn=JUDGED).pause_ms == 0
