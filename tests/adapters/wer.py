"""Word error rate for the speech tests, after normalising case, punctuation and numbers."""

from __future__ import annotations

import re

_NUMBER_WORDS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_DIGITS = {str(n): word for n, word in enumerate(_NUMBER_WORDS)}


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation, with 0-20 spelled out ("3" and "three" match)."""
    words = re.sub(r"[^\w\s']", " ", text.lower()).replace("'", "").split()
    return [_DIGITS.get(word, word) for word in words]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference length."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return float(bool(hyp))
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution
                )
            )
        previous = current
    return previous[-1] / len(ref)
