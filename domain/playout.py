"""How far ahead of the speaker a sound adapter keeps its playback stream, as a pure policy on
the playback latency it reads before each write.

Every tick writes one block while the speaker plays one, so the latency reached while only
dither goes out is what a reply's first block waits behind, and what a late tick has left
before the speaker runs dry (an audible gap in a reply). Two blocks are held while ticks come
on time, which they do in the agent even beside a busy process (docs/latency.md, "The path to
the speaker"). A tick that finds less than half a block queued came close to a gap: the hold
grows a block, up to `max_blocks`, and falls back one after `calm_s` without another.
"""

from __future__ import annotations

import attrs

from domain.audio import BLOCK_SECONDS

NEAR_DRY_S = BLOCK_SECONDS / 2


@attrs.define
class PlayoutHold:
    """Decides how many times a tick writes its block. `restart` when the stream is new."""

    min_blocks: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    max_blocks: int = attrs.field(default=3)
    calm_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    blocks: int = attrs.field(init=False)
    # Until the stream first reaches the hold, an empty stream is its start, not a late tick.
    _filled: bool = attrs.field(default=False, init=False)
    _calm_since_s: float = attrs.field(default=0.0, init=False)

    @max_blocks.validator
    def _at_least_min(self, _: attrs.Attribute[int], value: int) -> None:
        if value < self.min_blocks:
            raise ValueError(f"max_blocks ({value}) must not be under min_blocks")

    def __attrs_post_init__(self) -> None:
        self.blocks = self.min_blocks

    @property
    def seconds(self) -> float:
        return self.blocks * BLOCK_SECONDS

    def restart(self) -> None:
        """A new stream starts empty; the hold learned so far stays."""
        self._filled = False

    def writes(self, latency_s: float, now_s: float, *, dither: bool) -> int:
        """How many times this tick's block is written, the playback latency being `latency_s`
        (0 when the stream ran dry) at `now_s`: reply audio once, always; dither not at all
        above the hold, twice more than a block under it, else once."""
        self._adapt(latency_s, now_s)
        if not dither:
            return 1
        if latency_s > self.seconds:
            return 0
        return 2 if latency_s < self.seconds - BLOCK_SECONDS else 1

    def _adapt(self, latency_s: float, now_s: float) -> None:
        if not self._filled:
            self._filled = latency_s >= self.seconds - BLOCK_SECONDS
            self._calm_since_s = now_s
            return
        if latency_s < NEAR_DRY_S:
            self.blocks = min(self.blocks + 1, self.max_blocks)
            self._calm_since_s = now_s
        elif self.blocks > self.min_blocks and now_s - self._calm_since_s >= self.calm_s:
            self.blocks -= 1
            self._calm_since_s = now_s
