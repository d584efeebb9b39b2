"""Cutting a streamed reply into sentence batches for text-to-speech.

Four verbs: `feed` a delta and get the batches it completed, `flush` the tail at the end of the
reply, `reset` on interruption. Batches are exact slices of the input, whitespace included, so
nothing is lost or reordered ("What is " + "the weather" stays "What is the weather").
"""

from __future__ import annotations

import re

import attrs

# A sentence ends at . ! ? (or their CJK forms, which need no following space), optionally
# followed by closing quotes/brackets, then whitespace.
_LATIN_END = re.compile(r"""[.!?]+["'”’)\]]*(?=\s)""")
_CJK_END = re.compile(r"""[。！？]+["'”’」』)\]]*""")
_CLAUSE_END = re.compile(r"""[,;:—]["'”’)\]]*(?=\s)""")
_LAST_WORD = re.compile(r"(\S+)$")
_INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")
_CLOSERS = "\"'”’)]"
_OPENERS = "\"'“‘(["

# Words ending in a period that do not end a sentence ("Dr. Smith", "e.g. this").
ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e",
        "u.s", "u.k", "a.m", "p.m", "fig", "approx", "inc", "ltd", "co", "jan", "feb", "mar",
        "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    }
)  # fmt: skip

# Without any sentence end (a code block, text in a script without spaces) a batch still goes out
# once this long, cut at the last space when there is one.
MAX_PENDING_CHARS = 300


@attrs.frozen
class BatchingConfig:
    sentences_per_batch: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    # Speak the first clause or sentence as soon as it is complete, so the first audio does not
    # wait for a whole batch; later batches are `sentences_per_batch` long.
    early_first_fragment: bool = False
    early_min_chars: int = attrs.field(default=20, validator=attrs.validators.ge(1))


def _is_sentence_end(text: str, match: re.Match[str]) -> bool:
    punct = match.group(0).rstrip(_CLOSERS)
    if ".." in punct:
        return False  # an ellipsis trails off mid-thought more often than it ends one
    if punct != ".":
        return True  # "!", "?", "?!"
    word_match = _LAST_WORD.search(text, 0, match.start())
    word = word_match.group(1).lower().lstrip(_OPENERS) if word_match else ""
    # "Dr. Smith", "e.g. this", initials ("J. K. Rowling") and acronyms ("U.S.A.") go on.
    return not (word in ABBREVIATIONS or _INITIALS.fullmatch(word))


def sentence_ends(text: str) -> list[int]:
    """Offsets just after each complete sentence in `text` (punctuation included, the space
    after it not)."""
    ends = [m.end() for m in _LATIN_END.finditer(text) if _is_sentence_end(text, m)]
    ends += [m.end() for m in _CJK_END.finditer(text)]
    return sorted(ends)


class SentenceBatcher:
    def __init__(self, config: BatchingConfig) -> None:
        self._config = config
        self._pending = ""
        self._emitted_any = False

    def feed(self, delta: str) -> list[str]:
        self._pending += delta
        batches: list[str] = []
        while batch := self._next_batch():
            batches.append(batch)
        return batches

    def flush(self) -> list[str]:
        tail, self._pending = self._pending, ""
        self._emitted_any = False
        return [tail] if tail.strip() else []

    def reset(self) -> None:
        self._pending = ""
        self._emitted_any = False

    def _next_batch(self) -> str | None:
        cut = self._cut_point()
        if cut is None:
            return None
        batch, self._pending = self._pending[:cut], self._pending[cut:]
        self._emitted_any = True
        return batch

    def _cut_point(self) -> int | None:
        text = self._pending
        ends = sentence_ends(text)
        if not self._emitted_any and self._config.early_first_fragment:
            clauses = [e for e in self._clause_ends(text) if e >= self._config.early_min_chars]
            early = ends + clauses
            if early:
                return min(early)
        if len(ends) >= self._config.sentences_per_batch:
            return ends[self._config.sentences_per_batch - 1]
        if len(text) > MAX_PENDING_CHARS:
            if ends:
                return ends[-1]
            space = text.rfind(" ", 0, MAX_PENDING_CHARS)
            return space + 1 if space > 0 else MAX_PENDING_CHARS
        return None

    @staticmethod
    def _clause_ends(text: str) -> list[int]:
        return [m.end() for m in _CLAUSE_END.finditer(text)]
