"""What the user actually heard of a reply that was interrupted.

The reply is spoken in batches (a sentence or a few); each batch's text is known, and so is how
many 512-sample blocks its voice took. Given how many of the reply's blocks were played, the
history keeps every batch played whole, and of the batch cut in the middle the words whose end
had played, interpolated by character position (speech runs at a roughly even rate of
characters). The last word heard may be off by a word; never a word that was not reached.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

INTERRUPTED_MARK = "[interrupted by the user]"


@attrs.frozen
class SpokenBatch:
    text: str
    blocks: int


def heard_text(batches: Sequence[SpokenBatch], played_blocks: int) -> str:
    heard: list[str] = []
    left = played_blocks
    for batch in batches:
        if left <= 0:
            break
        if batch.blocks <= left:
            heard.append(batch.text.strip())
            left -= batch.blocks
            continue
        heard.append(_words_within(batch.text, left / batch.blocks))
        break
    return " ".join(part for part in heard if part)


def _words_within(text: str, share: float) -> str:
    words = text.split()
    total = len(" ".join(words))
    kept: list[str] = []
    end = 0
    for word in words:
        end += len(word) + (1 if kept else 0)
        if end > share * total:
            break
        kept.append(word)
    return " ".join(kept)


def without_mark(reply: str) -> str:
    """A reply as the model wrote it, less the mark: a small model copies it from its history
    into replies that were never cut, where it would be spoken and kept."""
    return (
        " ".join(reply.replace(INTERRUPTED_MARK, " ").split())
        if INTERRUPTED_MARK in reply
        else reply
    )


def interrupted_reply(heard: str) -> str:
    """The assistant's message in the history: what was heard, marked so that the model knows
    it was cut off there (and that the user may not have heard the rest)."""
    return f"{heard} {INTERRUPTED_MARK}" if heard else INTERRUPTED_MARK
