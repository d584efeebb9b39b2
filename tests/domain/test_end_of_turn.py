"""Turn ends decided by an end-of-turn model, on plain values: the segmenter asks, the test
answers as the model would."""

from __future__ import annotations

import pytest

from domain.audio import BLOCK_SECONDS
from domain.end_of_turn import ModelTurnConfig, blocks
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

MODEL = ModelTurnConfig(first_ask_ms=200, ask_every_ms=300, max_silence_ms=1800)
CONFIG = VadConfig(partial_interval_ms=0, model_turn=MODEL)


def converse(
    config: VadConfig, probabilities: list[float], answers: list[float]
) -> list[tuple[int, SegmentationEvent]]:
    """Feeds the blocks; each `TurnMayEnd` is answered with the next of `answers` at once, as
    the application does. Returns (block index, event) pairs, answers' effects included."""
    segmenter = TurnSegmenter(config)
    pending = list(answers)
    seen: list[tuple[int, SegmentationEvent]] = []
    for i, p in enumerate(probabilities):
        for event in segmenter.feed(block(i), p, i * BLOCK_SECONDS):
            seen.append((i, event))
            if isinstance(event, TurnMayEnd):
                seen += [(i, e) for e in segmenter.judge(pending.pop(0))]
    return seen


def kinds(seen: list[tuple[int, SegmentationEvent]]) -> list[str]:
    return [type(event).__name__ for _, event in seen]


def test_the_model_is_asked_after_a_short_silence_at_first_then_as_the_silence_grows() -> None:
    asks = [n for n in range(200) if MODEL.asks_after(n)]
    assert asks == [7, 17, 27, 37, 47]  # 224 ms, then every 320 ms
    assert not MODEL.gives_up(56) and MODEL.gives_up(57)  # 1824 ms


def test_a_complete_answer_ends_the_turn_at_the_first_question() -> None:
    seen = converse(CONFIG, [QUIET] * 5 + [SPEECH] * 30 + [QUIET] * 80, answers=[0.9])
    assert kinds(seen) == ["SpeechStarted", "SpeechPaused", "TurnMayEnd", "TurnEnded"]
    at, ended = seen[-1]
    assert at == 35 + blocks(200) - 1 and isinstance(ended, TurnEnded)
    assert ended.speech_end_s == pytest.approx(35 * BLOCK_SECONDS) and ended.after_pause


def test_incomplete_answers_keep_listening_until_the_model_agrees() -> None:
    seen = converse(CONFIG, [SPEECH] * 30 + [QUIET] * 80, answers=[0.1, 0.3, 0.7])
    assert kinds(seen).count("TurnMayEnd") == 3
    at, ended = seen[-1]
    assert isinstance(ended, TurnEnded) and at == 30 + blocks(200) + 2 * blocks(300) - 1


def test_the_longest_silence_ends_the_turn_whatever_the_model_says() -> None:
    seen = converse(CONFIG, [SPEECH] * 30 + [QUIET] * 80, answers=[0.0] * 5)
    assert kinds(seen).count("TurnMayEnd") == 5
    at, ended = seen[-1]
    assert isinstance(ended, TurnEnded) and at == 30 + blocks(1800) - 1


def test_speech_resuming_cancels_the_question_and_the_turn_goes_on() -> None:
    config = CONFIG
    segmenter = TurnSegmenter(config)
    probabilities = [SPEECH] * 30 + [QUIET] * blocks(200) + [SPEECH]
    events: list[SegmentationEvent] = []
    for i, p in enumerate(probabilities):
        events += segmenter.feed(block(i), p, i * BLOCK_SECONDS)
    assert isinstance(events[-2], TurnMayEnd) and isinstance(events[-1], SpeechResumed)
    # The answer arrives after the user went on: it is stale and ends nothing.
    assert segmenter.judge(0.99) == []
    assert segmenter.in_speech


def test_a_thinking_pause_judged_incomplete_does_not_cut_the_user_off() -> None:
    pause = [QUIET] * blocks(1200)
    probabilities = [SPEECH] * 30 + pause + [SPEECH] * 30 + [QUIET] * 80
    # Incomplete during the pause (4 questions in 1.2 s), complete after the last word.
    seen = converse(CONFIG, probabilities, answers=[0.2] * 4 + [0.8])
    ended = [e for _, e in seen if isinstance(e, TurnEnded)]
    assert len(ended) == 1 and ended[0].speech_start_s == 0.0
    assert "SpeechResumed" in kinds(seen)


def test_the_speculative_pause_comes_no_later_than_the_first_question() -> None:
    assert CONFIG.pause_ms == 32
    same_block = VadConfig(partial_interval_ms=0, model_turn=MODEL, pause_ms=200)
    seen = converse(same_block, [SPEECH] * 30 + [QUIET] * 20, answers=[0.9])
    assert kinds(seen)[1:] == ["SpeechPaused", "TurnMayEnd", "TurnEnded"]
    with pytest.raises(ValueError, match="first ask"):
        VadConfig(model_turn=MODEL, pause_ms=250)


def test_a_burst_too_short_for_speech_is_never_asked_about() -> None:
    config = VadConfig(partial_interval_ms=0, model_turn=MODEL)
    assert converse(config, [SPEECH] * 3 + [QUIET] * 80, answers=[]) == []


def test_an_answer_without_a_question_changes_nothing() -> None:
    segmenter = TurnSegmenter(CONFIG)
    for i in range(30):
        segmenter.feed(block(i), SPEECH, i * BLOCK_SECONDS)
    assert segmenter.judge(1.0) == [] and segmenter.in_speech


def test_the_longest_silence_must_leave_room_for_a_question() -> None:
    with pytest.raises(ValueError, match="never asked"):
        ModelTurnConfig(first_ask_ms=200, max_silence_ms=210)


def test_without_a_model_nothing_is_asked() -> None:
    probabilities = [SPEECH] * 30 + [QUIET] * 80
    seen = converse(VadConfig(partial_interval_ms=0), probabilities, answers=[])
    assert kinds(seen) == ["SpeechStarted", "SpeechPaused", "TurnEnded"]
    assert seen[-1][0] == 30 + blocks(500) - 1


def test_speech_paused_is_never_sent_while_the_user_speaks_when_the_pause_is_off() -> None:
    config = VadConfig(partial_interval_ms=0, min_silence_ms=100, pause_ms=0)
    seen = converse(config, [SPEECH] * 30 + [QUIET] * 10, answers=[])
    assert not any(isinstance(e, SpeechPaused) for _, e in seen)
