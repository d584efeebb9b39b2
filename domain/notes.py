"""The notes the history keeps of the turns that left it: the user's own words, and the model's
summary of what was talked about.

What the user said is kept word for word, never rewritten by a model: a small model summarising
a summary again and again drops names and invents others (Qwen2.5-0.5B, asked to merge ten long
exchanges, lost "Maria" and wrote about John Lennon), so the facts a user gives about themselves
would not survive it. Their words, quoted as theirs, do. When they outgrow their room, the
utterances that open like many others go first ("Tell me about ..." asked for the tenth time),
the oldest of them first: what a user says about themselves tends to be said once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import attrs

INTRO = "(Notes from earlier in our conversation.)"
SAID = "The user said:"
SUMMARY = "Summary:"
ACK = "Thanks, I will keep that in mind."
# The words an utterance opens with, to tell the often-repeated kinds apart.
OPENING_WORDS = 2
# One utterance longer than this is kept cut (a turn of television).
UTTERANCE_CHARS = 300


@attrs.frozen
class Notes:
    said: tuple[str, ...] = ()
    summary: str = ""

    @property
    def empty(self) -> bool:
        return not (self.said or self.summary)

    def text(self) -> str:
        parts = [INTRO]
        if self.said:
            parts.append(SAID + " " + " ".join(f"«{u}»" for u in self.said))
        if self.summary:
            parts.append(f"{SUMMARY} {self.summary}")
        return " ".join(parts)

    def hearing(self, utterances: list[str], room: int, cost: Callable[[str], int]) -> Notes:
        """These notes and what the user said in turns that left, within `room` tokens."""
        said = list(self.said)
        for utterance in utterances:
            utterance = " ".join(utterance.split())[:UTTERANCE_CHARS].rstrip()
            if utterance and utterance not in said:
                said.append(utterance)
        while said and sum(cost(u) for u in said) > room:
            said.remove(_most_repeated_kind(said))
        return attrs.evolve(self, said=tuple(said))


def _opening(utterance: str) -> str:
    return " ".join(utterance.lower().split()[:OPENING_WORDS])


def _most_repeated_kind(said: list[str]) -> str:
    """The oldest utterance of the opening most of them share."""
    counts = Counter(_opening(u) for u in said)
    most = max(counts.values())
    return next(u for u in said if counts[_opening(u)] == most)
