"""One user turn in flight: its life (pure, in the domain), its cancellation, the reply being
streamed for it, and the latencies measured along the way."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import attrs

from domain.messages import TurnMetrics
from domain.turn import Outcome, TurnLife

if TYPE_CHECKING:
    from application.reply_stream import ReplyStream


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000.0, 1)


@attrs.define
class Turn:
    """Mutable on purpose: each stage fills in its own timestamps (monotonic seconds from the
    Clock port) while the turn moves through the pipeline; `metrics()` freezes the result.
    `life` is only touched under the conversation's lock."""

    id: int
    speech_end_s: float  # audio clock
    life: TurnLife = attrs.field()
    cancel: threading.Event = attrs.field(factory=threading.Event)
    closed: threading.Event = attrs.field(factory=threading.Event)  # set once, after its close
    error: str | None = None
    stt_start: float | None = None
    stt_end: float | None = None
    llm_start: float | None = None
    llm_first_delta: float | None = None
    first_batch: float | None = None
    tts_start: float | None = None
    tts_first_chunk: float | None = None
    voiced_played_s: float | None = None  # audio clock
    playback_until: float = 0.0  # when the audio queued so far will have played
    reply: ReplyStream | None = None
    interruption_latency_ms: float | None = None  # of the pause that interrupted it
    false_interruptions: int = 0

    @life.default
    def _life(self) -> TurnLife:
        return TurnLife(self.id)

    @property
    def calls(self) -> list[tuple[str, str]]:
        """Each tool call the reply made, as the model wrote it, with its result."""
        return [(call.written, result) for call, result in self.reply.calls] if self.reply else []

    def metrics(self) -> TurnMetrics:
        voice_to_voice = None
        if self.voiced_played_s is not None and not self.life.agent_started:
            voice_to_voice = round((self.voiced_played_s - self.speech_end_s) * 1000.0, 1)
        return TurnMetrics(
            turn_id=self.id,
            user_text=self.life.user_text,
            language=self.life.language,
            assistant_text=self.life.reply,
            speech_end_s=round(self.speech_end_s, 3),
            stt_ms=_ms(self.stt_start, self.stt_end),
            llm_ttft_ms=_ms(self.llm_start, self.llm_first_delta),
            first_batch_ms=_ms(self.llm_start, self.first_batch),
            tts_first_chunk_ms=_ms(self.tts_start, self.tts_first_chunk),
            voice_to_voice_ms=voice_to_voice,
            outcome=self.life.outcome.value if self.life.outcome else "open",
            error=self.error,
            interrupted=self.life.outcome is Outcome.INTERRUPTED,
            interruption_latency_ms=self.interruption_latency_ms,
            spoken_text=self.life.spoken,
            false_interruptions=self.false_interruptions,
            tool_calls=[written for written, _ in self.calls],
            agent_started=self.life.agent_started,
        )
