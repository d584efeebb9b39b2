"""The pause that may end the turn: its transcript, judged on the listen thread, and a reply
asked for it before the turn is known to be over, its first batch spoken ahead.

The transcript of a pause is the whole turn if the silence goes on. It comes back on the
recogniser's thread; the segmenter judges it on the listen thread between two blocks, and the
reply asked for it is kept until the turn makes exactly that request (and in the same
language), or dropped because the user spoke again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from application.reply_stream import ReplyStream
from application.speaking_ahead import Prefetched, SpeakingAhead
from application.tool_calls import ToolRunner
from domain.messages import ChatMessage, FinalTranscript
from domain.sentence_batching import BatchingConfig
from domain.turn import Speculation, reusable
from ports import Clock, LanguageModel, TextToSpeech

log = logging.getLogger(__name__)


class Prefetching:
    def __init__(
        self,
        llm: LanguageModel,
        tts: TextToSpeech,
        clock: Clock,
        batching: BatchingConfig,
        lock: threading.Lock,
        *,
        enabled: bool,
        tools: ToolRunner | None = None,
    ) -> None:
        """`lock` is the conversation's, which guards its domain state; `enabled`: replies are
        asked for in the pause (else the transcript is only judged and kept); `tools`: what a
        reply may call, once its turn claims it."""
        self._llm, self._tts, self._clock, self._batching = llm, tts, clock, batching
        self._tools = tools
        self._lock, self._enabled = lock, enabled
        self._speculation = Speculation()
        self._to_judge: queue.SimpleQueue[tuple[int, FinalTranscript]] = queue.SimpleQueue()
        self._prefetch: Prefetched | None = None

    def paused(self) -> int:
        """The user paused: the number of this pause, for its transcript."""
        with self._lock:
            return self._speculation.paused()

    def resumed(self) -> None:
        """The user went on: a reply asked in the pause would answer half a turn."""
        with self._lock:
            self._speculation.resumed()
        self.drop()

    def transcribed(
        self,
        pause: int,
        transcript: FinalTranscript,
        request: Callable[[FinalTranscript], list[ChatMessage]],
    ) -> None:
        """From the recogniser's thread: `transcript` of `pause`, to judge and to answer ahead
        with `request(transcript)`; a turn it ends is transcribed after the reply is asked."""
        with self._lock:
            wanted = self._speculation.transcribed(pause, transcript)
        if not wanted:
            return
        self._to_judge.put((pause, transcript))
        if self._enabled:
            self._ask(pause, request(transcript), transcript.language)

    def to_judge(self) -> list[FinalTranscript]:
        """On the listen thread: the transcripts in of the pause the user is still silent in."""
        current: list[FinalTranscript] = []
        while True:
            try:
                pause, transcript = self._to_judge.get_nowait()
            except queue.Empty:
                return current
            with self._lock:
                if self._speculation.still_paused(pause):
                    current.append(transcript)

    def take(self, after_pause: bool) -> FinalTranscript | None:
        """The final transcript of a turn that ended in the last pause, if one is in hand."""
        with self._lock:
            return self._speculation.take(after_pause)

    def claim(
        self, request: list[ChatMessage], language: str | None
    ) -> tuple[ReplyStream, SpeakingAhead | None] | None:
        """The prefetched reply, and what of it was spoken ahead (in `language`), when it was
        asked with exactly `request`; None (and any other dropped) otherwise."""
        with self._lock:
            prefetch, self._prefetch = self._prefetch, None
        if prefetch is None:
            return None
        if not reusable(prefetch.stream.messages, request):
            prefetch.cancel()
            log.debug("the prefetched reply answers another request")
            return None
        prefetch.stream.claim()
        if prefetch.ahead.language == language:
            return prefetch.stream, prefetch.ahead
        prefetch.ahead.cancel()
        return prefetch.stream, None

    def drop(self) -> None:
        with self._lock:
            prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None:
            prefetch.cancel()

    def _ask(self, pause: int, request: list[ChatMessage], language: str | None) -> None:
        with self._lock:
            # Asked and kept in one step: were the user to speak again in between, the drop
            # that follows would find nothing, and a reply to half a question would go on.
            if not self._speculation.still_paused(pause):
                return
            stream = ReplyStream(self._llm, request, self._clock, self._tools, claimed=False)
            ahead = SpeakingAhead(stream, self._tts, self._batching, language, self._clock)
            stale, self._prefetch = self._prefetch, Prefetched(stream, ahead)
        if stale is not None:
            stale.cancel()
