"""How much silence ends a turn, judged from what the user said and how it sounded.

A fixed silence is too long after a finished question and too short for someone thinking
mid-sentence. Two judges can shorten or lengthen it:

- an end-of-turn model on the audio (smart-turn): after a short silence it is asked; "complete"
  ends the turn at once, "incomplete" keeps listening and asks again as the silence grows, up to
  a limit that ends the turn whatever the model says (it is wrong sometimes, and a silent user
  must get an answer);
- the transcript of the speculative pause (Whisper punctuates): a finished question ends the
  turn after a short silence, words that trail off ("and", "um", "the", "...") after a long one,
  anything else after the usual silence. The words are English; in another language only the
  silence (and the audio model) decide.
"""

from __future__ import annotations

import enum
import math
import re

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


class Completeness(enum.Enum):
    QUESTION = "question"  # a finished question
    STATEMENT = "statement"  # a finished sentence, or a clause Whisper ended as one
    INCOMPLETE = "incomplete"  # trails off: more is coming
    UNSURE = "unsure"  # no sign either way, or a language the rules do not know


# Words after which an English sentence goes on: conjunctions, hesitations, and determiners
# that need their noun. Whisper often puts a full stop after them all the same.
TRAILING_WORDS = frozenset({
    "and", "or", "but", "because", "cause", "although", "though", "unless", "whereas", "than",
    "um", "umm", "uh", "uhm", "er", "erm", "hmm", "mm",
    "the", "a", "an", "my", "your", "our", "their", "every",
})  # fmt: skip
# Prepositions that end a phrase only in a question ("Where are you from?"): without a question
# mark they leave it open. Those that also end phrasal verbs ("go on", "come in", "I'd love to")
# are not among them.
OPEN_WORDS = frozenset({"of", "with", "for", "from", "into"})
ENDS_OPEN = ("...", "\u2026", ",", ";", ":", "-", "\u2014")
ENDS_DONE = (".", "!")
_WORD = re.compile(r"[a-z']+")


def transcript_completeness(text: str, language: str | None) -> Completeness:
    """Whether a transcript reads as a finished turn. English only (`language` "en", or unknown
    with an English-only recogniser); any other language is UNSURE."""
    if language not in (None, "en"):
        return Completeness.UNSURE
    text = text.strip().strip('"\u201d')
    words = _WORD.findall(text.lower())
    if not words:
        return Completeness.UNSURE
    last = words[-1]
    if text.endswith(ENDS_OPEN) or last in TRAILING_WORDS:
        return Completeness.INCOMPLETE
    if last in OPEN_WORDS and not text.endswith("?"):
        return Completeness.INCOMPLETE
    if text.endswith("?"):
        return Completeness.QUESTION
    if text.endswith(ENDS_DONE):
        return Completeness.STATEMENT
    return Completeness.UNSURE


@attrs.frozen
class TranscriptTurnConfig:
    """Turn ends judged by the pause's transcript (and, with `ask_audio`, the audio model)."""

    # The silence that ends a finished question; a person answers in about 200 ms.
    question_ms: float = attrs.field(default=200.0, validator=attrs.validators.gt(0))
    # The silence that ends a finished statement. Whisper also ends a clause with a full stop
    # when the speaker pauses at its comma ("It was the age of wisdom."): shorter than 500 ms
    # cuts off more read sentences (benchmarks/end_of_turn.py).
    statement_ms: float = attrs.field(default=500.0, validator=attrs.validators.gt(0))
    # The silence that ends a sentence that trails off: longer than most thinking pauses.
    incomplete_ms: float = attrs.field(default=1500.0)
    # A finished sentence ends early only if the audio model also calls it complete.
    ask_audio: bool = False
    complete_above: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.lt(1)]
    )

    @incomplete_ms.validator
    def _longer_than_complete(self, _: attrs.Attribute[float], value: float) -> None:
        if value <= max(self.question_ms, self.statement_ms):
            raise ValueError(
                f"incomplete_ms ({value:g}) must be longer than question_ms and statement_ms"
            )

    @property
    def shortest_ms(self) -> float:
        return min(self.question_ms, self.statement_ms)

    def silence_ms(self, text: Completeness, audio_complete: bool | None, usual_ms: float) -> float:
        """The silence that ends the turn. `audio_complete`: the audio model's verdict, None
        when it was not asked; `usual_ms`: the silence when nothing is known."""
        if text is Completeness.INCOMPLETE:
            return max(self.incomplete_ms, usual_ms)
        if audio_complete is False or text is Completeness.UNSURE:
            return usual_ms
        finished = self.question_ms if text is Completeness.QUESTION else self.statement_ms
        return min(finished, usual_ms)
