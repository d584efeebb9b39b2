"""The first words of a prefetched reply, synthesised while the turn may still go on.

A reply asked for during the pause (reply_stream.py) can finish its first batch before the
silence ends the turn; synthesising it then means its audio is waiting when the turn ends. Only
the first batch is spoken ahead: the turn's worker (replying.py) takes over the batcher, the
reblocker and the stream where this left them. Nothing is queued for the speaker here, so a
turn that goes on simply drops it with the stream.
"""

from __future__ import annotations

import threading

import attrs

from application.reply_stream import ReplyStream
from domain.audio import Reblocker
from domain.sentence_batching import BatchingConfig, SentenceBatcher
from domain.speech_text import speakable
from ports import Cancellation, Clock, TextToSpeech

_WAIT_STEP_S = 0.05  # how often a waiting worker looks at its turn's cancellation


@attrs.define
class Head:
    """What was done ahead: the deltas taken from the stream, the batches they completed, the
    first one's speech (blocks, with its text), and the state to go on from."""

    language: str | None
    batcher: SentenceBatcher
    reblocker: Reblocker = attrs.field(factory=Reblocker)
    deltas: list[str] = attrs.field(factory=list)
    batches: list[str] = attrs.field(factory=list)
    spoken_text: str = ""
    blocks: list[bytes] = attrs.field(factory=list)
    first_batch_at: float | None = None
    tts_start: float | None = None
    tts_first_chunk: float | None = None
    tts_error: Exception | None = None


class SpeakingAhead:
    def __init__(
        self,
        stream: ReplyStream,
        tts: TextToSpeech,
        batching: BatchingConfig,
        language: str | None,
        clock: Clock,
    ) -> None:
        self._stream, self._tts, self._clock = stream, tts, clock
        self._head = Head(language, SentenceBatcher(batching))
        self._cancel = threading.Event()
        self._done = threading.Event()
        thread = threading.Thread(target=self._run, name="speaking-ahead", daemon=True)
        thread.start()

    @property
    def language(self) -> str | None:
        return self._head.language

    def cancel(self) -> None:
        self._cancel.set()

    def head(self, cancel: Cancellation) -> Head | None:
        """Once the first batch is spoken (or the reply ended first); None if `cancel` came
        first. The worker that takes the head owns it from then on."""
        while not self._done.wait(_WAIT_STEP_S):
            if cancel.is_set():
                self._cancel.set()
                return None
        return self._head

    def _run(self) -> None:
        head = self._head
        try:
            for delta in self._stream.deltas(self._cancel):
                head.deltas.append(delta)
                head.batches = head.batcher.feed(delta)
                if head.batches:
                    break
            else:
                # The whole reply came before a batch was cut ("It is 4." waits for what
                # follows "4."): it ends here, so its tail is the first batch.
                if not self._cancel.is_set():
                    head.batches = head.batcher.flush()
            if head.batches:
                head.first_batch_at = self._clock.now()
                self._synthesize(speakable(head.batches[0]))
        except Exception:  # the worker meets the provider's failure again on the stream
            return
        finally:
            self._done.set()

    def _synthesize(self, text: str) -> None:
        head = self._head
        if not text:
            return
        head.spoken_text = text
        head.tts_start = self._clock.now()
        try:
            for chunk in self._tts.synthesize(text, head.language):
                if head.tts_first_chunk is None:
                    head.tts_first_chunk = self._clock.now()
                if self._cancel.is_set():
                    return
                head.blocks += head.reblocker.feed(chunk)
        except Exception as error:  # the worker fails the turn with it
            head.tts_error = error


@attrs.frozen
class Prefetched:
    """A reply asked for during the pause, its first batch being spoken ahead."""

    stream: ReplyStream
    ahead: SpeakingAhead

    def cancel(self) -> None:
        self.stream.cancel()
        self.ahead.cancel()
