"""When to ask an end-of-turn model whether the user has finished, and what its answer means.

A fixed silence is too long after a finished question and too short for someone thinking
mid-sentence. With a model, a short silence is enough to ask; "complete" ends the turn at once,
"incomplete" keeps listening and asks again as the silence grows, up to a limit that ends the
turn whatever the model says (it is wrong sometimes, and a silent user must get an answer).
"""

from __future__ import annotations

import math

import attrs

from domain.audio import BLOCK_SECONDS


def blocks(ms: float) -> int:
    """Whole 32 ms blocks needed to cover `ms`."""
    return math.ceil(ms / 1000 / BLOCK_SECONDS)


@attrs.frozen
class ModelTurnConfig:
    """Turn ends judged by a model. Silences are counted in whole blocks (32 ms)."""

    # The first question: pipecat's smart-turn asks after a 200 ms VAD stop.
    first_ask_ms: float = attrs.field(default=200, validator=attrs.validators.gt(0))
    # Asked again this often while the user stays silent: a trailing silence that grows is
    # itself a sign the turn is over.
    ask_every_ms: float = attrs.field(default=300, validator=attrs.validators.gt(0))
    # The silence that ends the turn whatever the model says.
    max_silence_ms: float = attrs.field(default=1800)
    # The model's probability above which the turn is complete (smart-turn's own 0.5).
    complete_above: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.lt(1)]
    )

    @max_silence_ms.validator
    def _after_the_first_ask(self, _: attrs.Attribute[float], value: float) -> None:
        if blocks(value) <= blocks(self.first_ask_ms):
            raise ValueError(
                f"max_silence_ms ({value:g}) must be longer than first_ask_ms "
                f"({self.first_ask_ms:g}), or the model is never asked"
            )

    def asks_after(self, silent_blocks: int) -> bool:
        """Whether the model is asked once the silence has lasted `silent_blocks` blocks."""
        first, every = blocks(self.first_ask_ms), blocks(self.ask_every_ms)
        since_first = silent_blocks - first
        return since_first >= 0 and since_first % every == 0 and not self.gives_up(silent_blocks)

    def gives_up(self, silent_blocks: int) -> bool:
        """Whether this much silence ends the turn without asking."""
        return silent_blocks >= blocks(self.max_silence_ms)

    def is_complete(self, probability: float) -> bool:
        return probability > self.complete_above
