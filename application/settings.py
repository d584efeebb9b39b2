"""What the conversation needs to know, one validated bundle per concern."""

from __future__ import annotations

import attrs

from domain.barge_in import BargeInConfig
from domain.chat_window import ChatConfig
from domain.sentence_batching import BatchingConfig
from domain.turn_segmentation import VadConfig

DEFAULT_APOLOGY = "Sorry, I ran into a problem. Could you say that again?"
RESTART_NOTICE = "Sorry, my language model stopped, so I restarted it. Could you say that again?"


@attrs.frozen
class ConversationSettings:
    vad: VadConfig = attrs.Factory(VadConfig)
    chat: ChatConfig = attrs.Factory(ChatConfig)
    batching: BatchingConfig = attrs.Factory(BatchingConfig)
    # Show provisional transcripts while the user speaks (the segmenter's release points).
    live_transcription: bool = True
    enable_lang_prompt: bool = False
    # Ask the language model for the reply during the pause that may end the turn.
    prefetch_replies: bool = True
    # A reply that makes no progress for this long is abandoned and listening re-opens.
    watchdog_s: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    # A decode that takes longer is abandoned (a turn whose own decode hung fails), and the
    # recogniser goes on with a fresh worker.
    # Turns take 0.05-0.4 s with faster-whisper tiny.en on a laptop's CPU; larger models more.
    stt_timeout_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    # A tool that takes longer gives the model an error for its result (the tool is left).
    tool_timeout_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0))
    # Tool calls in a row for one reply: after one result the small models only call again.
    max_tool_calls: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    # A tool still running after this long has the agent say `tool_notice` (0: never).
    tool_notice_s: float = attrs.field(default=2.0, validator=attrs.validators.ge(0))
    tool_notice: str = "One moment."
    # The model may set timers, and the agent says each when it is due (`--tools timer`).
    timers: bool = False
    apology: str = DEFAULT_APOLOGY
    restart_notice: str = RESTART_NOTICE
    # False in text mode: the user types, and nothing the microphone hears makes a turn.
    listens: bool = True
    # The language of what the user types (None: not known).
    typed_language: str | None = None
    # The user may interrupt the reply (None: half duplex, deaf while the agent speaks).
    barge_in: BargeInConfig | None = None
