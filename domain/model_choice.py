"""Which local language model a machine gets when the user names none: the best one that starts
its answer about as soon there as the small default does on the two cores it was tuned on.

What the user waits for after their last word is the model reading the question (the history
before it was read during the pause) and writing the first sentence. Both are measured once per
machine with the small default (`Pace`) and scaled to a larger model by its weights: on a CPU
each token, read or written, passes every weight through memory. Measured on 2 cores with
llama.cpp, Qwen2.5-Coder-1.5B (2.27 times the 0.5B's file) read a 22-token question in 444 ms
against 198 and wrote a token in 41.7 ms against 22.1: 2.2 and 1.9 times, so the file's ratio
errs on the slow side.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

# Tokens of a spoken answer's first sentence: "The capital of Italy is Rome." is 8.
SENTENCE_TOKENS = 16
# The 0.5B's first sentence took 552 ms on the 2 cores the agent was tuned on; a better model is
# worth at most 100 ms more than that (what the voice-to-voice benchmark allows a change).
BUDGET_S = 0.65


@attrs.frozen
class Pace:
    """How long a model takes on this machine to read a spoken question, and to write each
    token after it."""

    read_s: float = attrs.field(validator=attrs.validators.gt(0))
    token_s: float = attrs.field(validator=attrs.validators.gt(0))

    def first_sentence_s(self, cost: float = 1.0) -> float:
        """The first sentence's wait for a model `cost` times as heavy as the one measured."""
        return cost * (self.read_s + SENTENCE_TOKENS * self.token_s)


@attrs.frozen
class Candidate:
    """A model the machine may get, `cost` times as heavy as the one its pace was measured with."""

    name: str
    cost: float = attrs.field(validator=attrs.validators.gt(0))


def choose(pace: Pace | None, candidates: Sequence[Candidate], budget_s: float = BUDGET_S) -> str:
    """The first of `candidates` (best first) whose first sentence fits `budget_s` at `pace`;
    the last (the lightest) when none does or the pace is unknown."""
    if not candidates:
        raise ValueError("no candidate models")
    if pace is not None:
        for candidate in candidates:
            if pace.first_sentence_s(candidate.cost) <= budget_s:
                return candidate.name
    return candidates[-1].name
