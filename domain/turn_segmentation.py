"""From per-block speech probabilities to user turns.

Fed one 512-sample block at a time with the VAD's probability for it, the segmenter decides when
a turn starts, when it may be transcribed provisionally (live transcription), and when it ends.
Times are on the audio clock carried by the blocks, so the logic never reads a clock.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import attrs

from domain.audio import BLOCK_SECONDS, level_db
from domain.end_of_turn import (
    Completeness,
    ModelTurnConfig,
    TranscriptTurnConfig,
    transcript_completeness,
)

# The hysteresis of Silero's own segmenter: once speech started it continues while the
# probability stays above thresh - HYSTERESIS, so a soft syllable does not end the turn.
HYSTERESIS = 0.15


# One block: the reply is asked for at the first quiet block of a pause. Against two blocks it
# brought the reply ~20 ms closer at the speaker (benchmarks/voice_to_voice.py --person, five
# interleaved runs each), for 23 % more decodes at pauses its speaker goes on from, each
# dropped at once, and cut off no one more (benchmarks/end_of_turn.py).
PAUSE_MS = 32.0
PAUSE_SHARE_OF_SILENCE = 0.5
# Silero's probability falls one to three blocks after the voice stops. A block this far below
# the turn's speech level counts as silent already, toward the speculative pause and the silence
# that ends the turn. On the 8 spoken questions of the voice-to-voice benchmark the pause came
# 72 ms after the last sound instead of 131. On the end-of-turn benchmark's real recordings it
# started 1.00 speculations per sentence that its speaker went on from, against 0.86 (at 20 dB:
# 1.68), and the silence policy cut off no one more (3.6 % complete, 89.8 % paused).
QUIET_BELOW_SPEECH_DB = 26.0
# The speech level is the median of the turn's latest voiced blocks (2 s), and is trusted from 3.
SPEECH_LEVEL_BLOCKS = 64
MIN_LEVEL_BLOCKS = 3


def speculative_pause_ms(min_silence_ms: float) -> float:
    """The default pause before the speculative transcript: it must come before the silence
    that ends the turn."""
    pause = min(PAUSE_MS, min_silence_ms * PAUSE_SHARE_OF_SILENCE)
    return pause if pause >= BLOCK_SECONDS * 1000 else 0.0


def _blocks(ms: float) -> float:
    """Whole blocks needed to cover `ms` (infinite stays infinite)."""
    return ms if math.isinf(ms) else math.ceil(ms / 1000 / BLOCK_SECONDS)


@attrs.frozen
class VadConfig:
    """Turn-taking settings. Defaults are upstream's except `min_silence_ms` and
    `max_speech_ms`."""

    thresh: float = attrs.field(default=0.6, validator=attrs.validators.and_(
        attrs.validators.gt(HYSTERESIS), attrs.validators.le(1.0)))  # fmt: skip
    min_speech_ms: float = attrs.field(default=384, validator=attrs.validators.ge(0))
    # Upstream ends a turn after 64 ms of silence, which cuts people off between words and at
    # every comma. Pauses inside an utterance run 200-500 ms; 500 ms waits them out while
    # keeping the wait at the end of the turn well under the one-second latency budget.
    min_silence_ms: float = attrs.field(default=500, validator=attrs.validators.gt(0))
    speech_pad_ms: float = attrs.field(default=500, validator=attrs.validators.ge(0))
    # A turn is cut in parts this long, pre-roll included (the rest continues as its next part,
    # never discarded), so what is buffered and every decode of it (live, pause, part) stay
    # bounded however long the user, or a television beside the microphone, talks without a
    # pause. 20 s fits faster-whisper's short window (25 s) and Whisper's own (30 s); upstream's
    # inf keeps a turn whole, and its decodes grow with it.
    max_speech_ms: float = attrs.field(default=20_000.0)
    # When set, an end-of-turn model decides when the turn ends (`TurnMayEnd`), and
    # `min_silence_ms` only ends bursts too short to be speech; None: the silence alone does.
    model_turn: ModelTurnConfig | None = None
    # When set, the transcript of the speculative pause (given back through
    # `TurnSegmenter.transcribed`) shortens or lengthens the silence that ends the turn;
    # None: `min_silence_ms` (or `model_turn`) alone decides.
    transcript_turn: TranscriptTurnConfig | None = attrs.field(default=None)
    # How often a growing turn is offered for provisional transcription; 0 disables it.
    partial_interval_ms: float = attrs.field(default=500, validator=attrs.validators.ge(0))
    # After this much silence the whole speech so far is offered for a speculative final
    # transcript, so the recogniser works while the turn's end is still being confirmed; 0
    # disables it. By default one block (32 ms), at most half of `min_silence_ms`, and none
    # under one block, where there is no pause to use. With a model,
    # no later than its first question, so the transcript is under way when the turn may end.
    pause_ms: float = attrs.field(
        default=attrs.Factory(lambda self: self._default_pause_ms(), True),
        validator=attrs.validators.ge(0),
    )
    # A block this many dB quieter than the turn's speech counts as silent (toward `pause_ms`,
    # and `min_silence_ms` when no model ends the turn) even while the VAD still hears speech;
    # None: only the VAD's silence does.
    quiet_db: float | None = attrs.field(default=QUIET_BELOW_SPEECH_DB)

    def _default_pause_ms(self) -> float:
        if self.model_turn is not None:
            return min(PAUSE_MS, self.model_turn.first_ask_ms)
        return speculative_pause_ms(self.min_silence_ms)

    @pause_ms.validator
    def _before_the_turn_may_end(self, _: attrs.Attribute[float], value: float) -> None:
        if self.model_turn is not None:
            if value > self.model_turn.first_ask_ms:
                raise ValueError(f"pause_ms ({value}) must not come after the model's first ask")
        elif value >= self.min_silence_ms:
            raise ValueError(f"pause_ms ({value}) must be shorter than min_silence_ms")

    @transcript_turn.validator
    def _one_judge(
        self, _: attrs.Attribute[TranscriptTurnConfig | None], value: TranscriptTurnConfig | None
    ) -> None:
        if value is None:
            return
        if self.model_turn is not None:
            raise ValueError("a turn's end is judged by the model or by the transcript, not both")
        if self.pause_ms >= value.shortest_ms:  # without a pause, the silence alone decides
            raise ValueError(
                f"the pause that is transcribed ({self.pause_ms:g} ms) must come before the "
                f"shortest silence that ends a turn ({value.shortest_ms:g} ms)"
            )

    @quiet_db.validator
    def _a_drop_in_level(self, _: attrs.Attribute[float | None], value: float | None) -> None:
        if value is not None and not value > 0:
            raise ValueError(f"quiet_db ({value}) must be more than 0 dB")

    @max_speech_ms.validator
    def _longer_than_min_speech(self, _: attrs.Attribute[float], value: float) -> None:
        if value <= self.min_speech_ms:
            raise ValueError(f"max_speech_ms ({value}) must exceed min_speech_ms")


@attrs.frozen
class SpeechStarted:
    """Speech lasted `min_speech_ms`: a real turn has begun (a cough or a click does not get
    here). `at_s` is when the speech itself began."""

    at_s: float


@attrs.frozen
class SpeechOngoing:
    """The turn so far, offered for a provisional transcript."""

    audio: bytes


@attrs.frozen
class TurnEnded:
    """A whole turn: pre-roll + speech + the trailing silence that ended it.
    `speech_end_s` is the end of the last voiced block (where the user stopped talking).
    `continues` is set when `max_speech_ms` cut the turn while the user was still talking: the
    next `TurnEnded` carries the rest of the same utterance. `part` counts the parts of the
    utterance before this one (0: its first, or only, part). `after_pause` is set when the turn
    ended in the silence that emitted the last `SpeechPaused`: no word was said since."""

    audio: bytes
    speech_start_s: float
    speech_end_s: float
    continues: bool = False
    after_pause: bool = False
    part: int = 0


@attrs.frozen
class SpeechPaused:
    """The user has been silent for `pause_ms`: the turn may be over. `audio` holds all of its
    speech; if the turn does end in this silence, a transcript of it is the final one."""

    audio: bytes


@attrs.frozen
class SpeechResumed:
    """The user spoke again after a `SpeechPaused`: the turn was not over after all."""


@attrs.frozen
class TurnMayEnd:
    """With an end-of-turn model: the user has been silent long enough to ask whether the turn
    is over. `audio` is the turn so far, trailing silence included; the answer goes back through
    `TurnSegmenter.judge` before the next block."""

    audio: bytes


# What the rest of the agent sees; `TurnMayEnd` is answered inside the listening stage.
TurnEvent = SpeechStarted | SpeechOngoing | SpeechPaused | SpeechResumed | TurnEnded
SegmentationEvent = TurnEvent | TurnMayEnd


class TurnSegmenter:
    """A two-state machine (idle, in speech) over blocks; `feed` returns what happened."""

    def __init__(self, config: VadConfig) -> None:
        self._config = config
        self._pad_blocks = int(_blocks(config.speech_pad_ms))
        self._min_speech_blocks = _blocks(config.min_speech_ms)
        self._model = config.model_turn
        self._by_transcript = config.transcript_turn
        self._min_silence_blocks = _blocks(config.min_silence_ms)
        self._max_blocks = _blocks(config.max_speech_ms)
        self._partial_blocks = _blocks(config.partial_interval_ms)
        self._pause_blocks = _blocks(config.pause_ms)
        self._preroll: deque[bytes] = deque(maxlen=self._pad_blocks or 1)
        self._turn: list[bytes] = []
        self._part = 0
        self._reset_turn()

    def _reset_turn(self) -> None:
        self._turn = []
        self._in_speech = False
        self._confirmed = False
        self._voiced_blocks = 0
        self._silent_run = 0
        # Blocks since the last that was voiced and loud: the pause and the silence count these.
        self._hushed_run = 0
        self._speech_levels: deque[float] = deque(maxlen=SPEECH_LEVEL_BLOCKS)
        self._speech_start_s = 0.0
        self._speech_end_s = 0.0
        self._blocks_since_partial = 0
        self._asked = False
        self._forget_judgement()

    def _forget_judgement(self) -> None:
        """No transcript judged yet for this pause: the usual silence ends it."""
        self._ending_blocks = self._min_silence_blocks
        self._completeness: Completeness | None = None

    def reset(self) -> None:
        """Forget everything, pre-roll included: what was heard before listening re-opened (the
        agent's own voice, an old utterance) must never leak into the next turn."""
        self._preroll.clear()
        self._part = 0
        self._reset_turn()

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, block: bytes, probability: float, at_s: float) -> list[SegmentationEvent]:
        if not self._in_speech:
            return self._feed_idle(block, probability, at_s)
        return self._feed_speech(block, probability, at_s)

    def judge(self, probability: float) -> list[TurnEvent]:
        """The model's answer to the last `TurnMayEnd`: the turn ends now if it is complete
        (judged with the transcript: when the silence it then needs has passed). An answer
        nobody waits for any more (the user spoke again) changes nothing."""
        if not self._asked:
            return []
        self._asked = False
        if self._model is not None:
            return [self._end_turn()] if self._model.is_complete(probability) else []
        assert self._by_transcript is not None and self._completeness is not None
        complete = probability > self._by_transcript.complete_above
        return self._end_after(self._completeness, complete)

    def transcribed(self, text: str, language: str | None) -> list[SegmentationEvent]:
        """The transcript of the pause the user is still silent in (the caller checks that it
        is this pause's): it sets the silence that ends the turn, which may have passed
        already. A finished sentence is first put to the audio model when it is to agree."""
        config = self._by_transcript
        in_pause = self._confirmed and 0 < self._pause_blocks <= self._hushed_run
        if config is None or not in_pause or self._completeness is not None:
            return []
        completeness = transcript_completeness(text, language)
        self._completeness = completeness
        finished = completeness in (Completeness.QUESTION, Completeness.STATEMENT)
        if finished and config.ask_audio:
            self._asked = True
            return [TurnMayEnd(b"".join(self._turn))]
        return list(self._end_after(completeness, None))

    def _end_after(self, completeness: Completeness, audio: bool | None) -> list[TurnEvent]:
        assert self._by_transcript is not None
        ms = self._by_transcript.silence_ms(completeness, audio, self._config.min_silence_ms)
        self._ending_blocks = int(_blocks(ms))
        return [self._end_turn()] if self._hushed_run >= self._ending_blocks else []

    def end_of_input(self) -> list[TurnEvent]:
        """The source ran out: a turn in progress ends here rather than being lost."""
        if self._in_speech and self._confirmed:
            return [self._end_turn()]
        self.reset()
        return []

    def _feed_idle(self, block: bytes, probability: float, at_s: float) -> list[SegmentationEvent]:
        if probability < self._config.thresh:
            if self._pad_blocks:
                self._preroll.append(block)
            return []
        self._turn = [*self._preroll, block]
        self._preroll.clear()
        self._in_speech = True
        self._voiced_blocks = 1
        self._speech_start_s = at_s
        self._speech_end_s = at_s + BLOCK_SECONDS
        return self._confirm_if_long_enough()

    def _feed_speech(
        self, block: bytes, probability: float, at_s: float
    ) -> list[SegmentationEvent]:
        self._turn.append(block)
        events: list[SegmentationEvent] = []
        voiced = probability >= self._config.thresh - HYSTERESIS
        if voiced:
            self._voiced_blocks += 1
            self._silent_run = 0
            self._asked = False  # the user went on: an answer about that silence is moot
            self._speech_end_s = at_s + BLOCK_SECONDS
        else:
            self._silent_run += 1
        if voiced and not self._quiet(block):
            if self._confirmed and 0 < self._pause_blocks <= self._hushed_run:
                events.append(SpeechResumed())
                self._forget_judgement()
            self._hushed_run = 0
        else:
            self._hushed_run += 1
        if self._silence_ends_turn():
            if not self._confirmed:  # a burst too short to be speech
                self._reset_turn()
                return []
            return [self._end_turn()]
        if self._confirmed and self._hushed_run:
            pending = self._pause_or_question()
            if pending:
                return pending
        events += self._confirm_if_long_enough()
        if self._confirmed and len(self._turn) >= self._max_blocks:
            return [*events, self._split_turn(at_s)]
        return events + self._partial_if_due()

    def _quiet(self, block: bytes) -> bool:
        """Far below the turn's speech; a loud voiced block raises the speech level."""
        if self._config.quiet_db is None:
            return False
        level = level_db(block)
        if len(self._speech_levels) >= MIN_LEVEL_BLOCKS:
            speech = statistics.median(self._speech_levels)
            if level < speech - self._config.quiet_db:
                return True
        self._speech_levels.append(level)
        return False

    def _silence_ends_turn(self) -> bool:
        if not self._confirmed:  # a burst is never worth a question
            return self._hushed_run >= self._min_silence_blocks
        if self._model is None:
            return self._hushed_run >= self._ending_blocks
        return self._model.gives_up(self._silent_run)

    def _pause_or_question(self) -> list[SegmentationEvent]:
        """The speculative pause comes first when both fall on the same block."""
        events: list[SegmentationEvent] = []
        if self._hushed_run == self._pause_blocks:
            events.append(SpeechPaused(b"".join(self._turn)))
        if (
            self._silent_run
            and self._model is not None
            and self._model.asks_after(self._silent_run)
        ):
            self._asked = True
            events.append(TurnMayEnd(b"".join(self._turn)))
        return events

    def _confirm_if_long_enough(self) -> list[SegmentationEvent]:
        if self._confirmed or self._voiced_blocks < self._min_speech_blocks:
            return []
        self._confirmed = True
        return [SpeechStarted(self._speech_start_s)]

    def _partial_if_due(self) -> list[SegmentationEvent]:
        # Not while the user is silent: the turn may be ending, and a provisional decode then
        # would still occupy the recogniser when the final one is needed.
        if not self._confirmed or not self._partial_blocks or self._hushed_run:
            return []
        self._blocks_since_partial += 1
        if self._blocks_since_partial < self._partial_blocks:
            return []
        self._blocks_since_partial = 0
        return [SpeechOngoing(b"".join(self._turn))]

    def _end_turn(self) -> TurnEnded:
        # Keep at most `speech_pad_ms` of the trailing silence: enough to not clip the last
        # phoneme, no more dead air for the recogniser to chew on.
        keep = len(self._turn) - max(self._silent_run - self._pad_blocks, 0)
        paused = 0 < self._pause_blocks <= self._hushed_run
        ended = TurnEnded(
            b"".join(self._turn[:keep]), self._speech_start_s, self._speech_end_s,
            after_pause=paused, part=self._part,
        )  # fmt: skip
        self._part = 0
        self._reset_turn()
        return ended

    def _split_turn(self, at_s: float) -> TurnEnded:
        ended = TurnEnded(
            b"".join(self._turn), self._speech_start_s, self._speech_end_s, continues=True,
            part=self._part,
        )  # fmt: skip
        self._part += 1
        self._reset_turn()
        # The speaker has not stopped: the next block continues a new, already real, turn.
        self._in_speech = True
        self._confirmed = True
        self._speech_start_s = self._speech_end_s = at_s + BLOCK_SECONDS
        return ended
