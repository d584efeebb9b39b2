"""The conversation: moves audio and text between the ports, one thread per stage.

    audio --listen--> VAD + segmenter --stt--> transcript --reply--> LLM deltas -> batches
          <--speak-- reblocked PCM <-- TTS <---------------------------------------'

Half duplex, as in the seeds: when a turn ends the agent stops listening, and listening re-opens
when the reply's response-done mark has played, or on any other terminal path (empty transcript,
a failure, the watchdog). The domain decides; this module executes and measures.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import attrs

from application.prefetch import Prefetch
from application.settings import ConversationSettings
from application.turn import Turn
from domain import listening as transitions
from domain.audio import (
    BLOCK_BYTES,
    BLOCK_SECONDS,
    RESPONSE_DONE_MARK,
    VOICED_MARK,
    EndOfInput,
    MicBlock,
    PlaybackMark,
    Reblocker,
)
from domain.chat_window import ChatWindow, CompactionPlan
from domain.language import reply_language_prompt
from domain.listening import ListeningStateMachine, Phase, Transition
from domain.messages import ChatMessage, FinalTranscript
from domain.sentence_batching import SentenceBatcher
from domain.speech_text import speakable
from domain.turn_segmentation import (
    SegmentationEvent,
    SpeechOngoing,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnSegmenter,
)
from ports import (
    AudioDuplex,
    Clock,
    Console,
    LanguageModel,
    MetricsSink,
    SpeechToText,
    TextToSpeech,
    VoiceActivity,
)

log = logging.getLogger(__name__)

POLL_S = 0.05
# Any sample beyond the dither's +-1 LSB counts as the reply's voice.
_VOICED_LEVEL = 2

T = TypeVar("T")


class _Job(enum.Enum):
    PARTIAL = "partial"  # the live line while the user speaks; never reaches the LLM
    SPECULATIVE = "speculative"  # all the speech so far, during a pause: may become the final
    PART = "part"  # a long turn cut by max_speech_ms; more of the same turn follows
    FINAL = "final"  # the end of the turn


@attrs.frozen
class _Speech:
    audio: bytes
    job: _Job
    turn: Turn | None = None
    after_pause: bool = False  # no word since the last SPECULATIVE job: its transcript holds


@attrs.frozen
class _Say:
    turn: Turn
    text: str


@attrs.frozen
class _EndOfReply:
    turn: Turn


def _is_voiced(block: bytes) -> bool:
    view = memoryview(block).cast("h")
    return max(view) >= _VOICED_LEVEL or min(view) <= -_VOICED_LEVEL


class Conversation:
    def __init__(
        self,
        audio: AudioDuplex,
        vad: VoiceActivity,
        stt: SpeechToText,
        llm: LanguageModel,
        tts: TextToSpeech,
        console: Console,
        clock: Clock,
        metrics: MetricsSink,
        settings: ConversationSettings,
    ) -> None:
        self._audio, self._vad, self._stt, self._llm, self._tts = audio, vad, stt, llm, tts
        self._console, self._clock, self._metrics = console, clock, metrics
        self._settings = settings
        self._segmenter = TurnSegmenter(settings.vad)
        self._window = ChatWindow(settings.chat)
        self._state = ListeningStateMachine(settings.watchdog_s)
        self._lock = threading.Lock()  # guards _state, _window, _turn, _next_turn_id
        self._turn: Turn | None = None
        self._next_turn_id = 1
        self._stop = threading.Event()
        self._input_ended = False
        self._stt_queue: queue.Queue[_Speech] = queue.Queue()
        self._reply_queue: queue.Queue[Turn] = queue.Queue()
        self._speech_queue: queue.Queue[_Say | _EndOfReply] = queue.Queue(maxsize=32)
        self._threads: list[threading.Thread] = []
        self._compaction: threading.Thread | None = None
        self._prefetch: Prefetch | None = None  # guarded by _lock
        self.crashed = False  # a stage died of a bug and stopped the conversation

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._audio.open()
        for name, loop in (
            ("listen", self._listen_loop),
            ("stt", self._stt_loop),
            ("reply", self._reply_loop),
            ("speak", self._speak_loop),
        ):
            thread = threading.Thread(target=self._guarded(loop), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._console.notice("Listening.")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the conversation stopped (end of input, or `stop`); True if it did."""
        return self._stop.wait(timeout_s)

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        with self._lock:
            if self._turn is not None:
                self._turn.cancel.set()
        self._audio.clear_playback()
        prefetch = self._take_prefetch()
        if prefetch is not None:
            prefetch.cancel()
            prefetch.join(timeout_s)
        for thread in [*self._threads, self._compaction]:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout_s)
        self._audio.close()

    @property
    def history(self) -> list[ChatMessage]:
        with self._lock:
            return self._window.history

    @property
    def phase(self) -> Phase:
        with self._lock:
            return self._state.phase

    def _guarded(self, loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except Exception:  # a bug in a stage must not leave the agent silently deaf
                log.exception("stage crashed; stopping the conversation")
                self.crashed = True
                self._stop.set()

        return run

    # -- listen: audio events -> VAD -> segmenter ------------------------------------------

    def _listen_loop(self) -> None:
        was_listening = True
        while not self._stop.is_set():
            event = self._audio.next_event(POLL_S)
            self._check_watchdog()
            with self._lock:
                listening = self._state.should_listen
                idle = self._turn is None and self._state.phase is Phase.LISTENING
            if listening and not was_listening:
                # Whatever the segmenter and VAD held belongs to before the reply.
                self._segmenter.reset()
                self._vad.reset()
            was_listening = listening
            if self._input_ended and idle and self._stt_queue.empty():
                self._stop.set()
            elif isinstance(event, MicBlock) and listening:
                probability = self._vad.speech_probability(event.pcm)
                self._on_segmentation(
                    self._segmenter.feed(event.pcm, probability, event.captured_at_s)
                )
            elif isinstance(event, PlaybackMark):
                self._on_mark(event)
            elif isinstance(event, EndOfInput):
                self._input_ended = True
                self._on_segmentation(self._segmenter.end_of_input())

    def _on_segmentation(self, events: list[SegmentationEvent]) -> None:
        for event in events:
            if isinstance(event, SpeechStarted):
                self._fire(transitions.SPEECH_STARTED)
            elif isinstance(event, SpeechOngoing):
                if self._settings.live_transcription:
                    self._stt_queue.put(_Speech(event.audio, _Job.PARTIAL))
            elif isinstance(event, SpeechPaused):
                self._stt_queue.put(_Speech(event.audio, _Job.SPECULATIVE))
            elif isinstance(event, SpeechResumed):
                self._drop_prefetch()  # the user went on: that reply would answer half a turn
            elif event.continues:
                turn = self._current_or_new_turn(event)
                self._stt_queue.put(_Speech(event.audio, _Job.PART, turn))
            else:
                turn = self._current_or_new_turn(event)
                turn.stt_start = self._clock.now()  # the wait the user feels starts here
                self._fire(transitions.TURN_ENDED)
                self._stt_queue.put(_Speech(event.audio, _Job.FINAL, turn, event.after_pause))

    def _current_or_new_turn(self, ended: TurnEnded) -> Turn:
        """The turn this audio belongs to: a long turn cut in parts keeps one Turn."""
        with self._lock:
            if self._turn is None:
                self._turn = Turn(self._next_turn_id, ended.speech_end_s)
                self._next_turn_id += 1
            self._turn.speech_end_s = ended.speech_end_s
            return self._turn

    def _on_mark(self, mark: PlaybackMark) -> None:
        with self._lock:
            turn = self._turn if self._turn is not None and self._turn.id == mark.turn_id else None
        if turn is None:
            return  # the echo of a turn already closed (watchdog, stop)
        if mark.label == VOICED_MARK and turn.voiced_played_s is None:
            turn.voiced_played_s = mark.played_at_s
        elif mark.label == RESPONSE_DONE_MARK:
            self._finish(turn, transitions.RESPONSE_PLAYED)

    def _check_watchdog(self) -> None:
        with self._lock:
            fired = self._state.check_watchdog(self._clock.now())
            turn = self._turn
        if fired:
            log.warning("no progress for %.0f s: abandoning the reply", self._settings.watchdog_s)
            self._audio.clear_playback()
            if turn is not None:
                turn.error = turn.error or "watchdog: no progress"
                self._finish(turn, None)

    # -- stt: audio -> transcripts ---------------------------------------------------------

    def _stt_loop(self) -> None:
        parts: list[str] = []
        speculation: FinalTranscript | None = None
        for speech in self._drain(self._stt_queue):
            if speech.job is _Job.PARTIAL:
                if self._stt_queue.empty():  # a newer request makes this one stale
                    self._show_partial(speech.audio)
                continue
            if speech.job is _Job.SPECULATIVE:
                speculation = self._speculate(speech.audio)
                if speculation is not None and not speculation.is_empty:
                    self._start_prefetch(speculation)
                continue
            turn = speech.turn
            assert turn is not None
            try:
                if speech.after_pause and speculation is not None:
                    # Transcribed from the whole speech of the turn during the pause that
                    # ended it: the final transcript, early, not a fragment standing in for it.
                    transcript = speculation
                    turn.prefetch = self._take_prefetch()
                else:
                    self._drop_prefetch()
                    transcript = self._stt.transcribe(speech.audio)
                turn.stt_end = self._clock.now()
            except Exception as error:
                parts.clear()
                self._fail(turn, "stt", error, speak=False)
                continue
            finally:
                speculation = None
            parts.append(transcript.text.strip())
            if speech.job is _Job.PART:
                continue
            turn.user_text = " ".join(p for p in parts if p)
            turn.language = transcript.language
            parts.clear()
            if not turn.user_text:
                self._console.live("")
                self._finish(turn, transitions.EMPTY_TRANSCRIPT)
                continue
            self._console.user(turn.user_text)
            self._progress()
            self._reply_queue.put(turn)

    def _speculate(self, audio: bytes) -> FinalTranscript | None:
        try:
            transcript = self._stt.transcribe(audio)
        except Exception as error:  # the final transcription will try again
            log.debug("speculative transcription failed: %s", error)
            return None
        if self._settings.live_transcription:
            self._console.live(transcript.text)
        return transcript

    def _start_prefetch(self, speculation: FinalTranscript) -> None:
        if not self._settings.prefetch_replies:
            return
        with self._lock:
            messages = self._window.request(
                self._language_prompt(speculation.language), new_user_text=speculation.text
            )
            stale, self._prefetch = self._prefetch, Prefetch(self._llm, messages, self._clock)
        if stale is not None:
            stale.cancel()

    def _take_prefetch(self) -> Prefetch | None:
        with self._lock:
            prefetch, self._prefetch = self._prefetch, None
        return prefetch

    def _drop_prefetch(self) -> None:
        prefetch = self._take_prefetch()
        if prefetch is not None:
            prefetch.cancel()

    def _language_prompt(self, language: str | None) -> str | None:
        return reply_language_prompt(language) if self._settings.enable_lang_prompt else None

    def _show_partial(self, audio: bytes) -> None:
        try:
            self._console.live(self._stt.transcribe_partial(audio).text)
        except Exception as error:  # a provisional transcript is a nicety, never a failure
            log.debug("partial transcription failed: %s", error)

    # -- reply: transcript -> LLM deltas -> sentence batches --------------------------------

    def _reply_loop(self) -> None:
        batcher = SentenceBatcher(self._settings.batching)
        for turn in self._drain(self._reply_queue):
            batcher.reset()
            with self._lock:
                self._window.add_user(turn.user_text)
                messages = self._window.request(self._language_prompt(turn.language))
            try:
                for delta in self._reply_deltas(turn, messages):
                    if turn.llm_first_delta is None:
                        turn.llm_first_delta = self._clock.now()
                    turn.assistant_text += delta
                    self._progress()
                    self._say_all(turn, batcher.feed(delta))
                    if turn.cancel.is_set():
                        break
            except Exception as error:
                self._fail(turn, "llm", error, speak=True)
                continue
            if turn.cancel.is_set():
                continue  # closed elsewhere (stop, watchdog): nothing of it will be heard
            self._say_all(turn, batcher.flush())
            with self._lock:
                self._window.add_assistant(turn.assistant_text)
                plan = self._window.after_reply()
            if plan is not None:
                self._start_compaction(plan)
            self._put(self._speech_queue, _EndOfReply(turn))

    def _reply_deltas(self, turn: Turn, messages: list[ChatMessage]) -> Iterator[str]:
        """The prefetched reply when it was asked with exactly these messages, else a new one."""
        prefetch, turn.prefetch = turn.prefetch, None
        if prefetch is not None and prefetch.messages == messages:
            turn.llm_start = prefetch.started_at
            turn.llm_first_delta = prefetch.first_delta_at
            return prefetch.deltas(turn.cancel)
        if prefetch is not None:
            prefetch.cancel()
        turn.llm_start = self._clock.now()
        return self._llm.stream(messages, turn.cancel)

    def _say_all(self, turn: Turn, batches: list[str]) -> None:
        for batch in batches:
            if turn.first_batch is None:
                turn.first_batch = self._clock.now()
            self._put(self._speech_queue, _Say(turn, batch))

    def _start_compaction(self, plan: CompactionPlan) -> None:
        def compact() -> None:
            try:
                summary = self._llm.complete(plan.request)
            except Exception as error:
                log.warning("history compaction failed, history kept as is: %s", error)
                with self._lock:
                    self._window.abandon_summary(plan)
                return
            with self._lock:
                self._window.apply_summary(plan, summary)

        self._compaction = threading.Thread(target=compact, name="compaction", daemon=True)
        self._compaction.start()

    # -- speak: text -> TTS -> 512-sample blocks -> audio ----------------------------------

    def _speak_loop(self) -> None:
        reblocker = Reblocker()
        voiced: set[int] = set()
        for item in self._drain(self._speech_queue):
            turn = item.turn
            if turn.cancel.is_set():
                continue
            if isinstance(item, _EndOfReply):
                self._play(turn, reblocker.flush(), voiced)
                self._audio.mark(turn.id, RESPONSE_DONE_MARK)
                voiced.discard(turn.id)
                continue
            text = speakable(item.text)
            if not text:
                continue
            self._console.assistant(text)
            try:
                self._play(turn, self._synthesize(turn, text, reblocker), voiced)
            except Exception as error:
                log.warning("text-to-speech failed: %s", error)
                turn.error = turn.error or f"tts: {error}"

    def _synthesize(self, turn: Turn, text: str, reblocker: Reblocker) -> Iterator[bytes]:
        if turn.tts_start is None:
            turn.tts_start = self._clock.now()
        for chunk in self._tts.synthesize(text, turn.language):
            if turn.tts_first_chunk is None:
                turn.tts_first_chunk = self._clock.now()
            if turn.cancel.is_set():
                return
            yield from reblocker.feed(chunk)

    def _play(self, turn: Turn, blocks: Iterator[bytes] | list[bytes], voiced: set[int]) -> None:
        for block in blocks:
            assert len(block) == BLOCK_BYTES
            if turn.id not in voiced and _is_voiced(block):
                voiced.add(turn.id)
                self._audio.mark(turn.id, VOICED_MARK)
                self._fire(transitions.REPLY_STARTED)
            self._audio.play(block)
            # Queued audio plays out in real time after this: the watchdog must wait for it.
            now = self._clock.now()
            turn.playback_until = max(turn.playback_until, now) + BLOCK_SECONDS
            self._progress(turn.playback_until)

    # -- terminal paths ----------------------------------------------------------------------

    def _fail(self, turn: Turn, stage: str, error: Exception, *, speak: bool) -> None:
        log.warning("%s failed: %s", stage, error)
        turn.error = f"{stage}: {error}"
        if speak and not turn.cancel.is_set():
            # The apology goes through the same path as a reply, so listening re-opens when it
            # has played. What the model said before failing is not stored as a reply.
            self._put(self._speech_queue, _Say(turn, self._settings.apology))
            self._put(self._speech_queue, _EndOfReply(turn))
        else:
            self._finish(turn, transitions.STAGE_FAILED)

    def _finish(self, turn: Turn, transition: Transition | None) -> None:
        """Close the turn exactly once: back to listening, and one metrics record."""
        with self._lock:
            if self._turn is not turn:
                return
            self._turn = None
            if transition is not None:
                self._state.fire(transition, self._clock.now())
        turn.cancel.set()
        self._metrics.record(turn.metrics())

    # -- plumbing ----------------------------------------------------------------------------

    def _fire(self, transition: Transition) -> None:
        with self._lock:
            self._state.fire(transition, self._clock.now())

    def _progress(self, until_s: float | None = None) -> None:
        with self._lock:
            now = self._clock.now()
            self._state.progress(now if until_s is None else max(now, until_s))

    def _drain(self, source: queue.Queue[T]) -> Iterator[T]:
        while not self._stop.is_set():
            try:
                yield source.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def _put(self, target: queue.Queue[T], item: T) -> None:
        while not self._stop.is_set():
            try:
                target.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue
