import math

import pytest

from domain.audio import BLOCK_BYTES, Reblocker, level_db


def test_reblocking_gives_exact_blocks_and_pads_the_tail() -> None:
    reblocker = Reblocker()
    data = bytes(range(256)) * 9  # 2304 bytes: two whole blocks and a piece
    blocks = reblocker.feed(data[:1000]) + reblocker.feed(data[1000:])
    tail = reblocker.flush()
    assert [len(b) for b in blocks + tail] == [BLOCK_BYTES] * 3
    assert b"".join(blocks + tail)[: len(data)] == data
    assert tail[0][len(data) - 2 * BLOCK_BYTES :] == bytes(3 * BLOCK_BYTES - len(data))
    assert reblocker.flush() == []


def test_level_is_in_db_full_scale() -> None:
    full = (32767).to_bytes(2, "little", signed=True) + (-32768).to_bytes(2, "little", signed=True)
    assert level_db(full * 256) == pytest.approx(0.0, abs=0.01)
    tenth = (3277).to_bytes(2, "little", signed=True) * 512
    assert level_db(tenth) == pytest.approx(-20.0, abs=0.01)
    assert level_db(bytes(BLOCK_BYTES)) == -math.inf
    assert level_db(b"") == -math.inf
