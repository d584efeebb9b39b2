"""The history's upkeep, on a thread of its own: counting its tokens and summarising what leaves.

After each exchange (and after a summary lands) the texts the model has not counted yet are
counted (the window estimates them on the safe side until then), then the window is asked
whether turns should leave it, and the summary it plans is written with the model's background
stream and applied. Where background work never holds a reply back
(`LanguageModel.background_yields`: llama.cpp pauses it in a slot of its own, a provider serves
both at once), the summary goes on whatever the conversation does, and lands. Where it would
(transformers and mlx-lm serve one generation at a time), a reply asked for cancels it: the
history stays as it was, and the window plans it again after that reply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from domain.chat_window import ChatWindow, CompactionPlan
from ports import LanguageModel
from ports.language_model import AnyOf, LanguageModelError

log = logging.getLogger(__name__)

POLL_S = 0.05


class HistoryUpkeep:
    """`window` is only touched under `lock`, the conversation's; `landed` runs after a summary
    changed the history (outside the lock)."""

    def __init__(
        self,
        llm: LanguageModel,
        window: ChatWindow,
        lock: threading.Lock,
        landed: Callable[[], None],
    ) -> None:
        self._llm, self._window, self._lock, self._landed = llm, window, lock, landed
        self._wake = threading.Event()
        self._mutex = threading.Lock()  # give_way comes from the conversation's threads
        self._cancel: threading.Event | None = None  # the summary's, while one runs
        self.summaries = 0  # landed so far

    def changed(self) -> None:
        """The history grew (an exchange closed): count it, and see whether turns leave."""
        self._wake.set()

    def give_way(self) -> None:
        """A reply is being asked for: a summary that would hold it back is cancelled."""
        if self._llm.background_yields:
            return
        with self._mutex:
            if self._cancel is not None:
                self._cancel.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._wake.wait(POLL_S):
                continue
            self._wake.clear()
            self._count(stop)
            with self._lock:
                plan = self._window.plan_compaction()
            if plan is not None and self._summarise(plan, stop):
                self._wake.set()  # count the notes; a long history may need another

    def _count(self, stop: threading.Event) -> None:
        if self._window.budget is None:
            return  # nothing to count against
        with self._lock:
            texts = self._window.uncounted()
        for text in texts:
            if stop.is_set():
                return
            try:
                tokens = self._llm.count_tokens(text)
            except LanguageModelError as error:  # the estimate stands in for it
                log.debug("counting tokens failed: %s", error)
                return
            if tokens is None:
                return
            with self._lock:
                self._window.counted(text, tokens)

    def _summarise(self, plan: CompactionPlan, stop: threading.Event) -> bool:
        """Whether the summary landed."""
        cancel = threading.Event()
        with self._mutex:
            self._cancel = cancel
        try:
            summary = "".join(self._llm.stream(plan.request, AnyOf(cancel, stop), background=True))
        except Exception as error:  # any failure leaves the history (and its notes) as it was
            log.warning("history summary failed, history kept as it is: %s", error)
            with self._lock:
                self._window.abandon_summary(plan)
            return False
        finally:
            with self._mutex:
                self._cancel = None
        if cancel.is_set() or stop.is_set():
            log.debug("history summary gave way to a reply; it will be planned again")
            with self._lock:
                self._window.abandon_summary(plan)
            return False
        with self._lock:
            landed = self._window.apply_summary(plan, summary)
            said = len(self._window.notes.said)
        if landed:
            self.summaries += 1
            log.info(
                "history summarised: %d words, and %d things the user said",
                len(summary.split()), said,
            )  # fmt: skip
            self._landed()
        return landed
