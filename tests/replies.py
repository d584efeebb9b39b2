"""A language model's whole reply, the way the application reads one: its streamed deltas."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from domain.messages import ChatMessage
from ports import LanguageModel


def whole_reply(
    model: LanguageModel, messages: Sequence[ChatMessage], *, background: bool = False
) -> str:
    return "".join(model.stream(messages, threading.Event(), background=background))
