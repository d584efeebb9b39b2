"""A reply that will not stop: the same sentence again and again, a phrase looping without
punctuation, or simply too long to be spoken.

Greedy SmolLM2 once answered with "You're not too helpful." over and over: 4,153 characters,
about four minutes of speech, during which a half-duplex agent hears nothing. `RunawayGuard`
watches the reply as it streams and says when to end it:

    guard = RunawayGuard(max_chars=1000)
    for delta in stream:
        if guard.feed(delta):
            break          # guard.reason says why
    guard.reset()          # before the next reply

Only complete units are judged: a sentence once its end mark is followed by a space, a word
once a space follows it, so a delta that splits a word changes nothing.
"""

from __future__ import annotations

import re
from collections import Counter

import attrs

DEFAULT_MAX_CHARS = 1000
# Three times the same sentence is a loop, not emphasis.
SENTENCE_REPEATS = 3
# A phrase of this many words seen this many times is a loop without punctuation
# ("I love you I love you I love you ..."); ordinary replies repeat no 6-word phrase thrice.
PHRASE_WORDS = 6
PHRASE_REPEATS = 3

_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_NOT_A_WORD = re.compile(r"[^\w']+")


def _normalised(text: str) -> str:
    return " ".join(_NOT_A_WORD.sub(" ", text.lower()).split())


@attrs.define
class RunawayGuard:
    """`feed(delta)` returns True once the reply so far repeats itself or passes `max_chars`,
    and keeps returning True until `reset()`. `reason` names the first cause."""

    max_chars: int = attrs.field(default=DEFAULT_MAX_CHARS, validator=attrs.validators.gt(0))
    sentence_repeats: int = attrs.field(default=SENTENCE_REPEATS, validator=attrs.validators.ge(2))
    phrase_words: int = attrs.field(default=PHRASE_WORDS, validator=attrs.validators.ge(2))
    phrase_repeats: int = attrs.field(default=PHRASE_REPEATS, validator=attrs.validators.ge(2))
    reason: str | None = attrs.field(default=None, init=False)
    _text: str = attrs.field(default="", init=False)
    _sentence_start: int = attrs.field(default=0, init=False)
    _word_start: int = attrs.field(default=0, init=False)
    _words: list[str] = attrs.field(factory=list, init=False)
    _sentences: Counter[str] = attrs.field(factory=Counter, init=False)
    _phrases: Counter[tuple[str, ...]] = attrs.field(factory=Counter, init=False)

    @property
    def tripped(self) -> bool:
        return self.reason is not None

    def feed(self, delta: str) -> bool:
        if self.tripped or not delta:
            return self.tripped
        self._text += delta
        self._count_sentences()
        self._count_phrases()
        if self.reason is None and len(self._text) > self.max_chars:
            self.reason = f"longer than {self.max_chars} characters"
        return self.tripped

    def reset(self) -> None:
        self.reason = None
        self._text = ""
        self._sentence_start = self._word_start = 0
        self._words.clear()
        self._sentences.clear()
        self._phrases.clear()

    def _count_sentences(self) -> None:
        for end in _SENTENCE_END.finditer(self._text, self._sentence_start):
            sentence = _normalised(self._text[self._sentence_start : end.end()])
            self._sentence_start = end.end()
            if not sentence:
                continue
            self._sentences[sentence] += 1
            if self._sentences[sentence] >= self.sentence_repeats and self.reason is None:
                self.reason = f"the same sentence {self._sentences[sentence]} times: {sentence!r}"

    def _count_phrases(self) -> None:
        boundary = max(self._text.rfind(" "), self._text.rfind("\n"))
        if boundary < self._word_start:
            return
        words = _normalised(self._text[self._word_start : boundary]).split()
        self._word_start = boundary + 1
        for word in words:
            self._words.append(word)
            if len(self._words) < self.phrase_words:
                continue
            phrase = tuple(self._words[-self.phrase_words :])
            self._phrases[phrase] += 1
            if self._phrases[phrase] >= self.phrase_repeats and self.reason is None:
                self.reason = f"the same phrase {self._phrases[phrase]} times: {' '.join(phrase)!r}"
