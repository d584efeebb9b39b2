"""Values that cross the pipeline: chat messages, transcripts, and a turn's metrics."""

from __future__ import annotations

import attrs


@attrs.frozen
class ChatMessage:
    role: str
    content: str


@attrs.frozen
class PartialTranscript:
    """A hypothesis while the user is still speaking: shown, never sent to the language model."""

    text: str


@attrs.frozen
class FinalTranscript:
    """The whole turn, transcribed once it ended. `language` is an ISO 639-1 code, or None when
    unknown."""

    text: str
    language: str | None = None

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


@attrs.frozen
class TurnMetrics:
    """One record per turn. Times in ms are stage latencies; `speech_end_s` is on the audio clock.
    A field is None when its stage did not run (an empty transcript has no `llm_ttft_ms`)."""

    turn_id: int
    user_text: str
    language: str | None
    assistant_text: str
    speech_end_s: float
    stt_ms: float | None
    llm_ttft_ms: float | None
    first_batch_ms: float | None
    tts_first_chunk_ms: float | None
    voice_to_voice_ms: float | None
    outcome: str  # answered, empty, failed, timed out, stopped, interrupted (domain.turn.Outcome)
    error: str | None
    # Barge-in: the user's speech start (where the detector's run of speech began) -> playback
    # paused, on the audio clock; what they heard of an interrupted reply; pauses that nothing
    # confirmed (playback resumed).
    interrupted: bool = False
    interruption_latency_ms: float | None = None
    spoken_text: str | None = None
    false_interruptions: int = 0
    # The tools the reply called, each call in its canonical form, in order.
    tool_calls: list[str] = attrs.Factory(list)
    # A turn the agent started on its own (a due reminder): no user words, no voice-to-voice.
    agent_started: bool = False
