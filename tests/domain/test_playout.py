import pytest

from domain.playout import PlayoutHold

# Latencies in seconds; the hold starts at two blocks (64 ms).
FILLED = 0.050


def filled(hold: PlayoutHold) -> PlayoutHold:
    hold.writes(FILLED, 0.0, dither=True)
    return hold


def dither_writes(hold: PlayoutHold, latencies: tuple[float, ...]) -> list[int]:
    return [hold.writes(latency, 1.0, dither=True) for latency in latencies]


def test_dither_is_left_out_above_the_hold_and_doubled_a_block_under_it() -> None:
    hold = filled(PlayoutHold())
    assert dither_writes(hold, (0.020, 0.031, 0.033, 0.064, 0.065, 0.3)) == [2, 2, 1, 1, 0, 0]
    assert hold.blocks == 2


def test_reply_audio_is_written_once_whatever_the_latency() -> None:
    hold = filled(PlayoutHold())
    assert [hold.writes(s, 1.0, dither=False) for s in (0.020, 0.050, 0.3)] == [1, 1, 1]


def test_a_new_stream_fills_without_counting_as_late() -> None:
    hold = PlayoutHold()
    assert dither_writes(hold, (0.0, 0.0, 0.040)) == [2, 2, 1]
    assert hold.blocks == 2
    hold.restart()
    assert dither_writes(hold, (0.0,)) == [2]
    assert hold.blocks == 2


@pytest.mark.parametrize("dither", [True, False])
def test_a_tick_that_finds_the_stream_nearly_dry_holds_a_block_more(dither: bool) -> None:
    hold = filled(PlayoutHold())
    hold.writes(0.010, 1.0, dither=dither)
    assert hold.blocks == 3
    assert dither_writes(hold, (0.070, 0.097)) == [1, 0]  # the new hold is 96 ms


def test_the_hold_grows_no_further_than_max_blocks() -> None:
    hold = filled(PlayoutHold(max_blocks=3))
    dither_writes(hold, (0.0, 0.010, 0.0))
    assert hold.blocks == 3


def test_the_hold_falls_back_a_block_after_calm_s_without_a_late_tick() -> None:
    hold = filled(PlayoutHold(calm_s=30.0))
    hold.writes(0.0, 10.0, dither=True)
    assert hold.blocks == 3
    hold.writes(0.090, 39.9, dither=True)
    assert hold.blocks == 3
    hold.writes(0.090, 40.0, dither=True)
    assert hold.blocks == 2
    hold.writes(0.050, 100.0, dither=True)
    assert hold.blocks == 2  # never under min_blocks


def test_max_blocks_under_min_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match="max_blocks"):
        PlayoutHold(min_blocks=3, max_blocks=2)
