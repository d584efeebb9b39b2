import math
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.audio import BLOCK_BYTES, BLOCK_SECONDS
from domain.turn_segmentation import (
    SpeechOngoing,
    SpeechPaused,
    SpeechStarted,
    TurnEnded,
    TurnSegmenter,
    VadConfig,
)

SPEECH, QUIET = 0.9, 0.05


def block(i: int) -> bytes:
    """A distinct block per index, so audio can be traced back to where it came from."""
    return i.to_bytes(4, "little") * (BLOCK_BYTES // 4)


def run(config: VadConfig, probabilities: list[float], start: int = 0) -> list[object]:
    segmenter = TurnSegmenter(config)
    events: list[object] = []
    for i, p in enumerate(probabilities, start):
        events += segmenter.feed(block(i), p, i * BLOCK_SECONDS)
    return events


def blocks_of(ms: float) -> int:
    return math.ceil(ms / 1000 / BLOCK_SECONDS)


def test_a_burst_shorter_than_min_speech_is_discarded() -> None:
    config = VadConfig(partial_interval_ms=0)
    short = blocks_of(config.min_speech_ms) - 1
    assert run(config, [QUIET] * 5 + [SPEECH] * short + [QUIET] * 40) == []


def test_a_turn_starts_after_min_speech_and_ends_after_min_silence() -> None:
    config = VadConfig(partial_interval_ms=0)
    probs = [QUIET] * 30 + [SPEECH] * 40 + [QUIET] * 40
    events = run(config, probs)
    started, paused, ended = events
    assert isinstance(paused, SpeechPaused)
    assert started == SpeechStarted(at_s=30 * BLOCK_SECONDS)
    assert isinstance(ended, TurnEnded)
    assert ended.speech_start_s == 30 * BLOCK_SECONDS
    assert ended.speech_end_s == pytest.approx(70 * BLOCK_SECONDS)
    pad = blocks_of(config.speech_pad_ms)
    # pre-roll + speech + trailing silence capped at the pad
    assert ended.audio[:BLOCK_BYTES] == block(30 - pad)
    assert len(ended.audio) == (pad + 40 + pad) * BLOCK_BYTES


def test_min_silence_default_waits_out_a_natural_pause() -> None:
    config = VadConfig(partial_interval_ms=0)
    pause = blocks_of(350)  # a breath between two phrases
    probs = [SPEECH] * 20 + [QUIET] * pause + [SPEECH] * 20 + [QUIET] * 40
    ended = [e for e in run(config, probs) if isinstance(e, TurnEnded)]
    assert len(ended) == 1


def test_hysteresis_keeps_speech_going_above_thresh_minus_015() -> None:
    config = VadConfig(partial_interval_ms=0, min_silence_ms=100, pause_ms=0)
    probs = [SPEECH] * 20 + [config.thresh - 0.1] * 20 + [SPEECH] * 5 + [QUIET] * 10
    ended = [e for e in run(config, probs) if isinstance(e, TurnEnded)]
    assert len(ended) == 1
    below = [SPEECH] * 20 + [config.thresh - 0.2] * 20 + [SPEECH] * 20 + [QUIET] * 10
    assert len([e for e in run(config, below) if isinstance(e, TurnEnded)]) == 2


def test_an_over_long_turn_is_split_not_discarded() -> None:
    config = VadConfig(partial_interval_ms=0, max_speech_ms=1000, speech_pad_ms=0)
    probs = [SPEECH] * 100 + [QUIET] * 30
    ended = [e for e in run(config, probs) if isinstance(e, TurnEnded)]
    assert [e.continues for e in ended] == [True, True, True, False]
    speech_audio = b"".join(e.audio for e in ended)
    assert speech_audio[: 100 * BLOCK_BYTES] == b"".join(block(i) for i in range(100))


def test_minutes_of_speech_without_a_pause_are_buffered_and_decoded_in_bounded_parts() -> None:
    """A television beside the microphone: phrases with breaths shorter than `min_silence_ms`,
    for minutes. Each decode the turn asks for (live, pause, part) must fit one recogniser
    window (Whisper's 30 s), and nothing of the speech may be lost."""
    config = VadConfig()
    segmenter = TurnSegmenter(config)
    phrase = [SPEECH] * blocks_of(3000) + [QUIET] * blocks_of(300)
    probabilities = phrase * math.ceil(180 / (len(phrase) * BLOCK_SECONDS))
    longest, kinds, parts = 0, set(), []
    for i, p in enumerate(probabilities):
        for event in segmenter.feed(block(i), p, i * BLOCK_SECONDS):
            audio = getattr(event, "audio", b"")
            longest = max(longest, len(audio))
            assert len(audio) < 30 / BLOCK_SECONDS * BLOCK_BYTES, type(event).__name__
            kinds.add(type(event))
            if isinstance(event, TurnEnded):
                parts.append(event)
    assert {SpeechOngoing, SpeechPaused, TurnEnded} <= kinds
    assert longest <= (blocks_of(config.max_speech_ms) + 1) * BLOCK_BYTES
    assert all(part.continues for part in parts)
    assert [part.part for part in parts] == list(range(len(parts)))
    heard = b"".join(part.audio for part in parts)  # speech from the first block on
    assert heard == b"".join(block(i) for i in range(len(heard) // BLOCK_BYTES))


def test_a_turn_that_ends_starts_counting_its_parts_afresh() -> None:
    config = VadConfig(partial_interval_ms=0, max_speech_ms=1000, speech_pad_ms=0)
    probs = ([SPEECH] * 40 + [QUIET] * 20) * 2
    ended = [e for e in run(config, probs) if isinstance(e, TurnEnded)]
    assert [(e.part, e.continues) for e in ended] == [(0, True), (1, False)] * 2


def test_partial_release_points_follow_the_interval() -> None:
    config = VadConfig(partial_interval_ms=320)
    probs = [SPEECH] * 60 + [QUIET] * 30
    partials = [e for e in run(config, probs) if isinstance(e, SpeechOngoing)]
    assert len(partials) >= 4
    assert all(len(b.audio) < len(a.audio) for a, b in zip(partials[1:], partials, strict=False))


def test_reset_keeps_old_audio_out_of_the_next_turn() -> None:
    config = VadConfig(partial_interval_ms=0)
    segmenter = TurnSegmenter(config)
    for i in range(10):  # audio heard before listening re-opened
        segmenter.feed(block(1000 + i), QUIET, i * BLOCK_SECONDS)
    segmenter.reset()
    events = []
    for i, p in enumerate([SPEECH] * 20 + [QUIET] * 20):
        events += segmenter.feed(block(i), p, i * BLOCK_SECONDS)
    (ended,) = [e for e in events if isinstance(e, TurnEnded)]
    assert all(block(1000 + i) not in ended.audio for i in range(10))


def test_end_of_input_ends_the_turn_in_progress() -> None:
    config = VadConfig(partial_interval_ms=0)
    segmenter = TurnSegmenter(config)
    for i in range(30):
        segmenter.feed(block(i), SPEECH, i * BLOCK_SECONDS)
    (ended,) = segmenter.end_of_input()
    assert isinstance(ended, TurnEnded) and not ended.continues
    assert segmenter.end_of_input() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thresh": 0.1},
        {"thresh": 1.5},
        {"max_speech_ms": 100},
        {"min_silence_ms": 0},
        {"quiet_db": 0},
    ],
)
def test_impossible_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        VadConfig(**kwargs)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]), max_size=300))
def test_turns_are_ordered_disjoint_slices_of_the_input(probs: list[float]) -> None:
    config = VadConfig(partial_interval_ms=0, max_speech_ms=2000)
    segmenter = TurnSegmenter(config)
    stream = [block(i) for i in range(len(probs))]
    events = []
    for i, p in enumerate(probs):
        events += segmenter.feed(stream[i], p, i * BLOCK_SECONDS)
    events += segmenter.end_of_input()
    whole = b"".join(stream)
    cursor = 0
    for turn in (e for e in events if isinstance(e, TurnEnded)):
        at = whole.find(turn.audio, cursor)
        assert at >= cursor and at % BLOCK_BYTES == 0
        cursor = at + len(turn.audio)
        assert turn.speech_start_s <= turn.speech_end_s


def test_no_partial_is_offered_once_the_user_falls_silent() -> None:
    config = VadConfig(partial_interval_ms=64, min_silence_ms=500)
    segmenter = TurnSegmenter(config)
    events: list[object] = []
    for i in range(30):
        events += segmenter.feed(block(i), SPEECH, i * BLOCK_SECONDS)
    offered_while_speaking = sum(isinstance(e, SpeechOngoing) for e in events)
    trailing: list[object] = []
    for i in range(30, 40):  # under min_silence: the turn has not ended yet
        trailing += segmenter.feed(block(i), QUIET, i * BLOCK_SECONDS)
    assert offered_while_speaking > 5
    assert not any(isinstance(e, SpeechOngoing) for e in trailing)


def test_a_pause_offers_the_whole_speech_and_the_turn_end_says_it_followed() -> None:
    config = VadConfig(partial_interval_ms=0, pause_ms=160, speech_pad_ms=0)
    events = run(config, [SPEECH] * 20 + [QUIET] * 30)
    paused, ended = (e for e in events if isinstance(e, SpeechPaused | TurnEnded))
    assert isinstance(paused, SpeechPaused) and isinstance(ended, TurnEnded)
    speech = b"".join(block(i) for i in range(20))
    assert paused.audio.startswith(speech) and ended.audio.startswith(speech)
    assert ended.after_pause


def test_speech_after_a_pause_gets_a_new_pause_before_the_end() -> None:
    config = VadConfig(partial_interval_ms=0, pause_ms=160)
    probs = [SPEECH] * 20 + [QUIET] * 8 + [SPEECH] * 20 + [QUIET] * 30
    kinds = [type(e).__name__ for e in run(config, probs)]
    assert kinds == ["SpeechStarted", "SpeechPaused", "SpeechResumed", "SpeechPaused", "TurnEnded"]


def test_a_turn_cut_by_the_end_of_input_mid_word_did_not_follow_a_pause() -> None:
    config = VadConfig(partial_interval_ms=0, pause_ms=160)
    segmenter = TurnSegmenter(config)
    for i, p in enumerate([SPEECH] * 20 + [QUIET] * 8 + [SPEECH] * 5):
        segmenter.feed(block(i), p, i * BLOCK_SECONDS)
    (ended,) = segmenter.end_of_input()
    assert isinstance(ended, TurnEnded) and not ended.after_pause


def test_pause_must_be_shorter_than_min_silence() -> None:
    with pytest.raises(ValueError):
        VadConfig(pause_ms=600, min_silence_ms=500)


@pytest.mark.parametrize(("min_silence_ms", "pause_ms"), [(500, 32), (64, 32), (63, 0), (40, 0)])
def test_the_default_pause_stays_inside_a_short_min_silence(
    min_silence_ms: float, pause_ms: float
) -> None:
    assert VadConfig(min_silence_ms=min_silence_ms).pause_ms == pause_ms


def tone(amplitude: int) -> bytes:
    """A block at a steady level: +amplitude and -amplitude alternating."""
    return (
        amplitude.to_bytes(2, "little", signed=True)
        + (-amplitude).to_bytes(2, "little", signed=True)
    ) * (BLOCK_BYTES // 4)


LOUD, FAINT, SOFTER = tone(8000), tone(200), tone(2000)  # 0, -32 and -12 dB from the speech


def kinds_fed(config: VadConfig, blocks: list[tuple[bytes, float]]) -> list[str]:
    segmenter = TurnSegmenter(config)
    events: list[object] = []
    for i, (pcm, probability) in enumerate(blocks):
        events += segmenter.feed(pcm, probability, i * BLOCK_SECONDS)
    return [type(e).__name__ for e in events]


def test_the_pause_and_the_end_count_faint_blocks_the_vad_still_calls_speech() -> None:
    # Silero's probability stays high for a few blocks after the voice stops.
    config = VadConfig(partial_interval_ms=0, pause_ms=64)
    lagging = [(LOUD, SPEECH)] * 20 + [(FAINT, SPEECH)] * 3
    assert kinds_fed(config, lagging) == ["SpeechStarted", "SpeechPaused"]
    # ... and the turn ends min_silence after the voice stopped, the faint blocks included.
    assert ended_after(config, lagging) == 13
    # Without a quiet level, only after min_silence of the VAD's own silence.
    assert ended_after(attrs.evolve(config, quiet_db=None), lagging) == 16


def ended_after(config: VadConfig, speech: list[tuple[bytes, float]]) -> int:
    """How many blocks of the VAD's silence after `speech` end the turn."""
    segmenter = TurnSegmenter(config)
    for i, (pcm, probability) in enumerate(speech):
        events = segmenter.feed(pcm, probability, i * BLOCK_SECONDS)
        assert not any(isinstance(e, TurnEnded) for e in events)
    for n in range(1, 100):
        events = segmenter.feed(FAINT, QUIET, (len(speech) + n - 1) * BLOCK_SECONDS)
        ended = [e for e in events if isinstance(e, TurnEnded)]
        if ended:
            assert ended[0].after_pause
            # The VAD's end of speech, which the agent's own latency is measured from.
            assert ended[0].speech_end_s == pytest.approx(len(speech) * BLOCK_SECONDS)
            return n
    raise AssertionError("the turn never ended")


def test_a_softer_syllable_is_no_pause_and_loud_speech_after_a_faint_one_resumes() -> None:
    config = VadConfig(partial_interval_ms=0, pause_ms=64)
    softer = [(LOUD, SPEECH)] * 20 + [(SOFTER, SPEECH)] * 5
    assert kinds_fed(config, softer) == ["SpeechStarted"]
    resumed = [(LOUD, SPEECH)] * 20 + [(FAINT, SPEECH)] * 2 + [(LOUD, SPEECH)]
    assert kinds_fed(config, resumed) == ["SpeechStarted", "SpeechPaused", "SpeechResumed"]


def test_without_a_quiet_level_only_the_vad_s_silence_makes_a_pause() -> None:
    config = VadConfig(partial_interval_ms=0, pause_ms=64, quiet_db=None)
    assert kinds_fed(config, [(LOUD, SPEECH)] * 20 + [(FAINT, SPEECH)] * 5) == ["SpeechStarted"]
