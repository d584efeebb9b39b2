"""Text as it should be spoken: Markdown markers, emoji and the history's interruption mark
removed, everything else kept.

Language models write Markdown; a voice reading "asterisk asterisk" or an emoji's name aloud is
a bug. Only markers that are clearly formatting go: "2 * 3", "*args" and "#include" stay.
"""

from __future__ import annotations

import re

from domain.heard_reply import without_mark

_CODE_FENCE = re.compile(r"^\s*```.*$", re.MULTILINE)
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*[-*+][ \t]+", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Emphasis needs a marker hugging a word on both sides: "**bold**", "*it*", "_it_", "~~del~~".
_STRONG = re.compile(r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*])([*_])(?=[^\s*_])(.+?)(?<=[^\s*_])\1(?![\w*])")
_INLINE_CODE = re.compile(r"`([^`]*)`")
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff"
    "\U00002b00-\U00002bff\U0000fe0f\U0000200d\U000020e3]+"
)
# Half of a bold pair whose other half went out in another batch: before a capital or after a
# word ("**Note", "this**"), never "**kwargs".
_STRAY_STRONG = re.compile(r"(?<!\w)\*\*(?=[A-Z])|(?<=\w)\*\*(?!\w)")
_SPACES = re.compile(r"[ \t]{2,}")


def speakable(text: str) -> str:
    """The text to hand to text-to-speech; empty when nothing is left to say."""
    text = without_mark(text)
    text = _CODE_FENCE.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _QUOTE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _STRAY_STRONG.sub("", text)
    text = _EMOJI.sub("", text)
    return _SPACES.sub(" ", text).strip()
