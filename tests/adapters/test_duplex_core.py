"""The duplex shared by the sound device and WAV replay, driven tick by tick."""

from __future__ import annotations

import threading

import pytest

from adapters.duplex_core import DuplexCore, make_dither
from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SECONDS,
    AudioEvent,
    MicBlock,
    PlaybackMark,
    ReplyDone,
    ReplyVoiced,
)


def block(value: int) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (BLOCK_BYTES // 2)


def drain(core: DuplexCore) -> list[AudioEvent]:
    events = []
    while (event := core.next_event(timeout_s=0)) is not None:
        events.append(event)
    return events


def test_idle_forwards_the_mic_stamped_on_the_audio_clock_and_plays_dither() -> None:
    core = DuplexCore()
    played = [core.tick(block(i)) for i in range(3)]
    assert played == [core.dither] * 3
    assert drain(core) == [MicBlock(block(i), i * BLOCK_SECONDS) for i in range(3)]


def test_dither_is_one_lsb_noise_made_once() -> None:
    dither = make_dither()
    samples = {int.from_bytes(dither[i : i + 2], "little", signed=True) for i in range(0, 1024, 2)}
    assert len(dither) == BLOCK_BYTES
    assert samples == {-1, 1}
    assert make_dither() == dither
    core = DuplexCore()
    assert core.tick(block(0)) is core.tick(block(0))  # the same object: no work per block


def test_reply_blocks_play_in_order_and_the_mic_meanwhile_is_marked_as_playing() -> None:
    core = DuplexCore()
    core.tick(block(100))
    core.play(block(1))
    core.play(block(2))
    assert [core.tick(block(101)), core.tick(block(102))] == [block(1), block(2)]
    assert core.tick(block(103)) == core.dither
    assert drain(core) == [
        MicBlock(block(100), 0.0),
        MicBlock(block(101), BLOCK_SECONDS, playing=True),
        MicBlock(block(102), 2 * BLOCK_SECONDS, playing=True),
        MicBlock(block(103), 3 * BLOCK_SECONDS),
    ]


def test_a_reply_block_equal_to_the_dither_still_counts_as_playing() -> None:
    core = DuplexCore()
    core.play(bytes(core.dither))
    assert core.tick(block(1)) == core.dither
    assert drain(core) == [MicBlock(block(1), 0.0, playing=True)]


def test_marks_are_echoed_when_the_output_reaches_them_and_take_no_time() -> None:
    core = DuplexCore()
    core.tick(block(0))  # t = 0
    drain(core)
    core.mark(ReplyVoiced(7))
    core.play(block(1))
    core.play(block(2))
    core.mark(ReplyDone(7))
    assert core.tick(block(10)) == block(1)  # t = 0.032: the voiced mark, then its block
    assert drain(core) == [
        PlaybackMark(ReplyVoiced(7), BLOCK_SECONDS),
        MicBlock(block(10), BLOCK_SECONDS, playing=True),
    ]
    assert core.tick(block(11)) == block(2)
    assert drain(core) == [MicBlock(block(11), 2 * BLOCK_SECONDS, playing=True)]
    # The block after the last reply block: done, and listening again in the same tick.
    assert core.tick(block(12)) == core.dither
    assert drain(core) == [
        PlaybackMark(ReplyDone(7), 3 * BLOCK_SECONDS),
        MicBlock(block(12), 3 * BLOCK_SECONDS),
    ]


def test_a_mark_alone_is_echoed_on_the_next_tick() -> None:
    core = DuplexCore()
    core.mark(ReplyDone(3))
    assert core.tick(block(5)) == core.dither
    assert drain(core) == [PlaybackMark(ReplyDone(3), 0.0), MicBlock(block(5), 0.0)]


def test_without_a_mic_source_marks_still_echo_but_no_mic_block_is_made() -> None:
    core = DuplexCore()
    core.play(block(1))
    core.mark(ReplyDone(1))
    assert [core.tick(None), core.tick(None), core.tick(None)] == [block(1)] + [core.dither] * 2
    assert drain(core) == [PlaybackMark(ReplyDone(1), BLOCK_SECONDS)]


def test_clear_playback_drops_queued_audio_and_marks() -> None:
    core = DuplexCore()
    core.play(block(1))
    core.play(block(2))
    core.mark(ReplyDone(1))
    assert core.clear_playback() == 2  # reply blocks dropped unplayed
    assert core.tick(block(9)) == core.dither
    assert drain(core) == [MicBlock(block(9), 0.0)]


def test_paused_playback_plays_dither_and_goes_on_where_it_stopped() -> None:
    core = DuplexCore()
    for i in (1, 2, 3):
        core.play(block(i))
    assert core.tick(block(0)) == block(1)
    core.pause_playback(True)
    assert [core.tick(block(0)) for _ in range(2)] == [core.dither] * 2
    core.pause_playback(False)
    assert [core.tick(block(0)) for _ in range(3)] == [block(2), block(3), core.dither]
    playing = [e.playing for e in drain(core) if isinstance(e, MicBlock)]
    assert playing == [True, False, False, True, True, False]


def test_has_playback_while_reply_audio_or_marks_are_queued() -> None:
    core = DuplexCore()
    assert not core.has_playback()
    core.play(block(1))
    core.mark(ReplyDone(1))
    assert core.has_playback()
    core.tick(block(0))
    assert core.has_playback()  # the mark is still to be echoed
    core.tick(block(0))
    assert not core.has_playback()


def test_play_takes_exactly_one_block() -> None:
    with pytest.raises(ValueError, match="1024 bytes"):
        DuplexCore().play(bytes(1000))


def test_next_event_times_out_with_none() -> None:
    assert DuplexCore().next_event(timeout_s=0.01) is None


def test_a_producer_thread_and_the_audio_thread_lose_nothing() -> None:
    """The producer appends while the audio thread pops: every block plays once, in order."""
    core = DuplexCore()
    n = 2000

    def produce() -> None:
        for i in range(1, n + 1):
            core.play(block(i))

    producer = threading.Thread(target=produce)
    producer.start()
    played: list[bytes] = []
    while len(played) < n:
        out = core.tick(block(0))
        if out != core.dither:
            played.append(out)
    producer.join()
    assert played == [block(i) for i in range(1, n + 1)]


class RecordingCanceller:
    """Subtracts a constant and records what it was fed."""

    def __init__(self) -> None:
        self.fed: list[tuple[bytes, bytes]] = []
        self.delay_ms: int | None = None

    def set_delay_ms(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms

    def process(self, mic: bytes, played: bytes) -> bytes:
        self.fed.append((mic, played))
        return block(0)

    def reset(self) -> None:
        self.fed.clear()


def test_the_canceller_gets_each_mic_block_with_the_block_played_in_the_same_tick() -> None:
    canceller = RecordingCanceller()
    core = DuplexCore(canceller)
    core.play(block(7))
    core.tick(block(1))
    core.tick(block(2))
    assert canceller.fed == [(block(1), block(7)), (block(2), core.dither)]
    assert drain(core) == [
        MicBlock(block(0), 0.0, playing=True),
        MicBlock(block(0), BLOCK_SECONDS, playing=False),
    ]
