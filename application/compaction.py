"""History compaction in the background, never in a reply's way.

The summary is streamed so that it can be cancelled: a local model serves one request at a time
(transformers and mlx-lm hold a lock for the whole generation), so a summary still running when
the user's next reply is asked for would hold that reply back. It is cancelled instead, the
history stays as it was, and the next reply plans it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from domain.chat_window import CompactionPlan
from ports import LanguageModel

log = logging.getLogger(__name__)


class Compactor:
    def __init__(
        self,
        llm: LanguageModel,
        apply: Callable[[CompactionPlan, str], None],
        abandon: Callable[[CompactionPlan], None],
    ) -> None:
        self._llm, self._apply, self._abandon = llm, apply, abandon
        self._lock = threading.Lock()  # start and cancel come from different threads
        self._cancel = threading.Event()
        self._plan: CompactionPlan | None = None
        self._thread: threading.Thread | None = None

    def start(self, plan: CompactionPlan) -> None:
        with self._lock:
            self._cancel, self._plan = threading.Event(), plan
            self._thread = threading.Thread(
                target=self._run, args=(plan, self._cancel), name="compaction", daemon=True
            )
            self._thread.start()

    def cancel(self) -> None:
        """Abandoned at once, so the next reply can plan again; the summary, if it still
        comes, is not applied."""
        with self._lock:
            self._cancel.set()
            plan, self._plan = self._plan, None
        if plan is not None:
            self._abandon(plan)

    def join(self, timeout_s: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self, plan: CompactionPlan, cancel: threading.Event) -> None:
        try:
            summary = "".join(self._llm.stream(plan.request, cancel, background=True))
        except Exception as error:
            log.warning("history compaction failed, history kept as is: %s", error)
            self._abandon(plan)
            return
        if cancel.is_set():
            log.debug("history compaction gave way to a reply; it will be planned again")
        else:
            self._apply(plan, summary)
