"""Speaking one turn's reply: LLM deltas -> sentence batches -> TTS -> 512-sample blocks.

One worker per turn, on a thread of its own: a reply stuck in a provider or in the synthesiser
holds only its own turn, which the watchdog closes, and the next turn gets a new worker. Each
worker has its own batcher and reblocker, so nothing of one reply is ever glued onto the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from application.playback import Playback
from application.reply_stream import ReplyStream
from application.speaking_ahead import Head, SpeakingAhead
from application.turn import Turn
from domain.audio import Reblocker
from domain.sentence_batching import BatchingConfig, SentenceBatcher
from domain.speech_text import speakable
from ports import Clock, Console, TextToSpeech

# With less than this queued for the speaker, what is ready of the reply goes to the voice at
# once instead of waiting for a whole batch: on a busy machine the next sentence takes about a
# second to be written and synthesised.
HURRY_S = 2.0


class TurnControl(Protocol):
    """What a worker reports back to the conversation."""

    def replied(self, turn: Turn, delta: str) -> bool:
        """The reply grew; False when it must stop here (the turn closed, or it ran away)."""
        ...

    def reply_queued(self, turn: Turn) -> bool:
        """All of the reply is queued for the speaker; False when it cannot stand as an answer
        (the turn closed meanwhile, or the model said nothing)."""
        ...

    def fail(self, turn: Turn, stage: str, error: Exception) -> None: ...


class ReplyWorker:
    def __init__(
        self,
        turn: Turn,
        stream: ReplyStream,
        tts: TextToSpeech,
        playback: Playback,
        console: Console,
        clock: Clock,
        batching: BatchingConfig,
        control: TurnControl,
        ahead: SpeakingAhead | None = None,
    ) -> None:
        """`ahead`: the first batch of `stream`, spoken while the turn was still going on."""
        self._turn, self._stream, self._tts, self._playback = turn, stream, tts, playback
        self._console, self._clock, self._control = console, clock, control
        self._batcher = SentenceBatcher(batching)
        self._reblocker = Reblocker()
        self._ahead = ahead

    def run(self) -> None:
        turn = self._turn
        start = 0
        if self._ahead is not None:
            head = self._ahead.head(turn.cancel)
            if head is None or not self._take_over(head):
                return
            start = len(head.deltas)
        deltas = self._stream.deltas(turn.cancel, start)
        while not turn.cancel.is_set():
            try:
                delta = next(deltas, None)
            except Exception as error:
                self._control.fail(turn, "llm", error)
                return
            if delta is None:
                break
            if turn.llm_first_delta is None:
                turn.llm_first_delta = self._clock.now()
            if not self._control.replied(turn, delta):
                self._stream.cancel()
                break
            if not self._speak_all(self._batcher.feed(delta, hurry=self._running_dry())):
                return
        if turn.cancel.is_set() or not self._speak_all(self._batcher.flush()):
            return
        if self._playback.play(turn, self._reblocker.flush()) and self._control.reply_queued(turn):
            self._playback.finish(turn)

    def _running_dry(self) -> bool:
        """Less than `HURRY_S` of the reply is left to play."""
        return self._turn.playback_until - self._clock.now() < HURRY_S

    def _take_over(self, head: Head) -> bool:
        """Account for what was done ahead and play its speech; False once the turn is over.
        A reply told to stop here (it ran away) goes on to its end as in `run`."""
        turn = self._turn
        if turn.llm_first_delta is None:  # the first delta came after the turn ended
            turn.llm_first_delta = self._stream.first_delta_at
        for delta in head.deltas:
            if not self._control.replied(turn, delta):
                self._stream.cancel()
                break
        self._batcher, self._reblocker = head.batcher, head.reblocker
        turn.first_batch, turn.tts_start = head.first_batch_at, head.tts_start
        turn.tts_first_chunk = head.tts_first_chunk
        if head.tts_error is not None:
            self._control.fail(turn, "tts", head.tts_error)
            return False
        if head.spoken_text:
            self._console.assistant(head.spoken_text)
            if not self._playback.play(turn, head.blocks, head.spoken_text):
                return False
        return self._speak_all(head.batches[1:])

    def _speak_all(self, batches: list[str]) -> bool:
        """Synthesise and queue each batch; False once the turn is over."""
        for batch in batches:
            if self._turn.first_batch is None:
                self._turn.first_batch = self._clock.now()
            text = speakable(batch)
            if not text:
                continue
            self._console.assistant(text)
            try:
                if not self._playback.play(self._turn, self._synthesize(text), text):
                    return False
            except Exception as error:
                self._control.fail(self._turn, "tts", error)
                return False
        return not self._turn.cancel.is_set()

    def _synthesize(self, text: str) -> Iterator[bytes]:
        turn = self._turn
        if turn.tts_start is None:
            turn.tts_start = self._clock.now()
        for chunk in self._tts.synthesize(text, turn.life.language):
            if turn.tts_first_chunk is None:
                turn.tts_first_chunk = self._clock.now()
            if turn.cancel.is_set():
                return
            yield from self._reblocker.feed(chunk)
