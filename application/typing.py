"""Text mode: each line the user types is a turn of the conversation, answered like a spoken
one (history, compaction, the apology on a fault, a metrics record); the next line is taken
once that turn has closed, so a script piped in gets its answers in order."""

from __future__ import annotations

from collections.abc import Iterable

from application.conversation import Conversation

# How often a wait for the turn's close looks at whether the conversation stopped.
_STEP_S = 0.25


def converse_by_text(conversation: Conversation, lines: Iterable[str]) -> None:
    """Until `lines` end or the conversation stops; blank lines are skipped."""
    for line in lines:
        if conversation.wait(0):
            return
        text = line.strip()
        if not text:
            continue
        turn = conversation.typed(text)
        while not turn.closed.wait(_STEP_S):
            if conversation.wait(0):
                return
