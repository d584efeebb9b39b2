"""Cutting a streamed reply into sentence batches for text-to-speech.

Four verbs: `feed` a delta and get the batches it completed, `flush` the tail at the end of the
reply, `reset` on interruption. Batches are exact slices of the input, whitespace included, so
nothing is lost or reordered ("What is " + "the weather" stays "What is the weather").

A batch waits for `sentences_per_batch` sentences, unless the speaker is about to fall silent
(`feed(..., hurry=True)`): then what is ready goes, a sentence or a long clause, since a pause
in the middle of a reply sounds like its end.
"""

from __future__ import annotations

import re

import attrs

# A sentence ends at . ! ? (or their CJK forms, which need no following space), optionally
# followed by closing quotes/brackets, then whitespace.
_LATIN_END = re.compile(r"""[.!?]+["'”’)\]]*(?=\s)""")
_CJK_END = re.compile(r"""[。！？]+["'”’」』)\]]*""")
_CLAUSE_END = re.compile(r"""[,;:—]["'”’)\]]*(?=\s)""")
# A long first sentence without a comma ("Cats are known for their playful nature and often
# sleep ...") can also be cut before a word that opens a phrase, where a speaker may breathe. The
# word must be complete (a space after it), and it is never one that also modifies a noun or an
# adjective ("that book", "so good"), where a cut would break a phrase apart.
_PHRASE_START = re.compile(
    r"\s(?=(?:and|but|or|because|which|who|where|when|while|although|though|since|unless"
    r"|until|whereas)\s)",
    re.IGNORECASE,
)
# A first sentence can also go out before its main verb, at the pause a speaker makes after a
# subject ("The largest planet in our solar system | is Jupiter.", "The sky | is blue."): the
# answer usually sits at the end of the sentence, and this speaks its first words 2-6 tokens
# sooner. The verb may still be being written ("is" may yet be "island"): the cut, before it, is
# at a word boundary either way. A subject of one word stays ("There are"), a tiny one too ("A
# cat is"), and so does a pronoun ("I think it is").
_VERB_START = re.compile(
    r"\s(?=(?:is|are|was|were|has|have|had|can|could|will|would|should|must|equals)(?:\s|$))",
    re.IGNORECASE,
)
VERB_CUT_MIN_CHARS = 7
_PRONOUNS = frozenset(
    {
        "i", "you", "he", "she", "it", "we", "they", "this", "that", "these", "those", "there",
        "here", "what", "which", "who",
    }
)  # fmt: skip
# The first fragment does not wait for the space that confirms its end (one more token, ~50 ms
# from a small model on a CPU): punctuation right after a letter, at the end of the text so far,
# ends it already. After a digit it waits: "3." may yet be "3.5", and "1," "1,000".
_END_SO_FAR = re.compile(r"(?<=[^\W\d_])[.!?,;:]$")
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
    # Speak the first clause, phrase or sentence as soon as it is complete, so the first audio
    # does not wait for a whole batch (nor a long sentence); the second batch is one sentence,
    # later ones `sentences_per_batch` long.
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
        self._batches = 0

    def feed(self, delta: str, *, hurry: bool = False) -> list[str]:
        """The batches `delta` completed; with `hurry`, the speaker is about to run dry."""
        self._pending += delta
        batches: list[str] = []
        while batch := self._next_batch(hurry):
            batches.append(batch)
        return batches

    def flush(self) -> list[str]:
        tail, self._pending = self._pending, ""
        self._batches = 0
        return [tail] if tail.strip() else []

    def reset(self) -> None:
        self._pending = ""
        self._batches = 0

    def _next_batch(self, hurry: bool) -> str | None:
        cut = self._cut_point(hurry)
        if cut is None:
            return None
        batch, self._pending = self._pending[:cut], self._pending[cut:]
        self._batches += 1
        return batch

    def _cut_point(self, hurry: bool) -> int | None:
        text = self._pending
        ends = sentence_ends(text)
        if not self._batches and self._config.early_first_fragment:
            breaks = self._clause_ends(text) + self._phrase_starts(text)
            early = ends + self._end_so_far(text) + self._verb_starts(text)
            early += [e for e in breaks if e >= self._config.early_min_chars]
            if early:
                return min(early)
        # Right after the early fragment one sentence is enough: while it plays, the model has
        # time to write the next whole batch, so the speaker is not left waiting for it.
        ramping_up = self._batches == 1 and self._config.early_first_fragment
        needed = 1 if ramping_up or hurry else self._config.sentences_per_batch
        if len(ends) >= needed:
            return ends[needed - 1]
        if hurry:
            clauses = [c for c in self._clause_ends(text) if c >= self._config.early_min_chars]
            if clauses:
                return clauses[0]
        if len(text) > MAX_PENDING_CHARS:
            if ends:
                return ends[-1]
            space = text.rfind(" ", 0, MAX_PENDING_CHARS)
            return space + 1 if space > 0 else MAX_PENDING_CHARS
        return None

    @staticmethod
    def _clause_ends(text: str) -> list[int]:
        return [m.end() for m in _CLAUSE_END.finditer(text)]

    def _end_so_far(self, text: str) -> list[int]:
        """The end of the text, when it ends a sentence ("Paris." but not "Dr.", "3." or
        "U.S.") or a clause long enough to stand alone."""
        match = _END_SO_FAR.search(text)
        if match is None:
            return []
        if match.group(0) in ".!?":
            return [len(text)] if len(text) in sentence_ends(text + " ") else []
        return [len(text)] if len(text) >= self._config.early_min_chars else []

    @staticmethod
    def _phrase_starts(text: str) -> list[int]:
        """Offsets of the space before each phrase-opening word: it goes with the next batch."""
        return [m.start() for m in _PHRASE_START.finditer(text)]

    @staticmethod
    def _verb_starts(text: str) -> list[int]:
        """Offsets of the space before a main verb that follows a subject of at least two
        words, `VERB_CUT_MIN_CHARS` long, not ending in a pronoun."""
        cuts = []
        for match in _VERB_START.finditer(text):
            subject = text[: match.start()].split()
            if (
                len(subject) >= 2
                and match.start() >= VERB_CUT_MIN_CHARS
                and not subject[-1].endswith((".", "!", "?", ",", ";", ":"))  # cut there already
                and subject[-1].lower().strip(_CLOSERS + _OPENERS) not in _PRONOUNS
            ):
                cuts.append(match.start())
        return cuts
