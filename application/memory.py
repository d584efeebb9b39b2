"""The conversation's memory: the chat window, the requests made from it, and the two threads
that keep it ready, the history's upkeep (counting and summarising what leaves, compaction.py)
and the reading ahead of the next request into the model's prompt cache (priming.py).

The window is only touched under the conversation's lock, the one that guards its turns: a
closing turn keeps its exchange before it lets go of the floor, so the next turn's request
always holds it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from application.compaction import HistoryUpkeep
from application.priming import Priming
from application.settings import ConversationSettings
from application.threads import Threads
from domain.chat_window import ChatWindow, TokenBudget
from domain.language import reply_language_prompt
from domain.messages import ChatMessage, FinalTranscript
from domain.notes import Notes
from ports import LanguageModel


class Memory:
    def __init__(
        self, llm: LanguageModel, settings: ConversationSettings, lock: threading.Lock
    ) -> None:
        self._lock = lock
        self._window = ChatWindow(settings.chat, TokenBudget.within(llm.prompt_budget))
        self._language_prompt = settings.enable_lang_prompt
        self._priming = Priming(llm)
        self._upkeep = HistoryUpkeep(llm, self._window, lock, self._offer_next)

    def start(self, threads: Threads, stop: threading.Event) -> None:
        threads.stage("prime", lambda: self._priming.run(stop))
        threads.stage("history", lambda: self._upkeep.run(stop))

    @property
    def history(self) -> list[ChatMessage]:
        with self._lock:
            return self._window.history

    @property
    def notes(self) -> Notes:
        """What the turns that left the history left behind."""
        with self._lock:
            return self._window.notes

    @property
    def compacting(self) -> bool:
        """A history summary is planned and has not landed yet."""
        with self._lock:
            return self._window.compacting

    @property
    def summaries(self) -> int:
        """How many history summaries have landed."""
        return self._upkeep.summaries

    def request(self, transcript: FinalTranscript) -> list[ChatMessage]:
        """What the model is asked when the user said `transcript` (followed by the reply-
        language prompt, when the settings ask for one)."""
        prompt = reply_language_prompt(transcript.language) if self._language_prompt else None
        with self._lock:
            return self._window.request(prompt, new_user_text=transcript.text)

    def ask(self, transcript: FinalTranscript) -> list[ChatMessage]:
        """The request for a reply about to be asked for, which nothing holds back."""
        self.give_way()
        return self.request(transcript)

    def give_way(self) -> None:
        """A reply is about to be asked for: what would hold it back gives way (an offer to
        read ahead not yet sent, a summary where the model serves one generation at a time)."""
        self._priming.drop()
        self._upkeep.give_way()

    def heard_so_far(self, user_text: str) -> None:
        """The user's words so far: the request they begin is read ahead."""
        if user_text:
            self._priming.offer(self._so_far(user_text))

    def instruct(self, instructions: str) -> None:
        """The system prompt from the next request on."""
        with self._lock:
            self._window.instruct(instructions)
        self._offer_next()

    def keep(self, user: str, reply: str, calls: Sequence[tuple[str, str]]) -> None:
        """A closed turn's exchange, with the tool calls (as written) and results it made."""
        with self._lock:
            self._window.add_exchange(user, reply, calls)
            self._window.after_reply()
        self._offer_next()  # the history as the next turn finds it
        self._upkeep.changed()

    def _so_far(self, user_text: str) -> list[ChatMessage]:
        """The next request as far as it is known (the reply-language prompt, if any, comes
        after the user's words)."""
        with self._lock:
            return self._window.request(new_user_text=user_text)

    def _offer_next(self) -> None:
        """The history changed (an exchange, a summary, new instructions): read it ahead."""
        self._priming.offer(self._so_far(""))
