from domain.audio import BLOCK_BYTES, Reblocker


def test_reblocking_gives_exact_blocks_and_pads_the_tail() -> None:
    reblocker = Reblocker()
    data = bytes(range(256)) * 9  # 2304 bytes: two whole blocks and a piece
    blocks = reblocker.feed(data[:1000]) + reblocker.feed(data[1000:])
    tail = reblocker.flush()
    assert [len(b) for b in blocks + tail] == [BLOCK_BYTES] * 3
    assert b"".join(blocks + tail)[: len(data)] == data
    assert tail[0][len(data) - 2 * BLOCK_BYTES :] == bytes(3 * BLOCK_BYTES - len(data))
    assert reblocker.flush() == []
