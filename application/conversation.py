"""The conversation: moves audio and text between the ports, and asks the domain what to do.

    audio --hearing--> mute policy -> VAD -> segmenter --jobs--> transcription
          <--playback-- reply worker (per turn) <-- reply stream (per turn, LLM) <-- transcript

The decisions are the domain's: the mute policy (what the VAD hears), the segmenter (when a
turn ends), the `should_listen` machine, the life of a turn (its transcript, its close and what
the close entails), the chat window. This module runs the threads, carries decisions out and
measures. Every turn closes exactly once: listening re-opens, the history keeps a whole exchange
or nothing, nothing of the turn plays after its close, a fault is apologised for aloud, and one
metrics record is written.
"""

from __future__ import annotations

import logging
import threading

from application.compaction import HistoryUpkeep
from application.guarded_metrics import GuardedMetrics
from application.hearing import Hearing
from application.interrupting import Confirmed, Interrupting
from application.playback import Playback
from application.prefetching import Prefetching
from application.priming import Priming
from application.reply_stream import ReplyStream
from application.replying import ReplyWorker
from application.settings import ConversationSettings
from application.threads import Threads
from application.transcription import Transcription
from application.turn import Turn
from domain import listening as transitions
from domain.audio import (
    AudioFailed,
    EndOfInput,
    MicBlock,
    PlaybackMark,
    ReplyDone,
    ReplyVoiced,
)
from domain.barge_in import Decision
from domain.chat_window import MIN_BUDGET_TOKENS, ChatWindow, TokenBudget
from domain.language import reply_language_prompt
from domain.listening import ListeningStateMachine, Phase, Transition
from domain.messages import ChatMessage, FinalTranscript
from domain.notes import Notes
from domain.transcription_jobs import ConfirmJob, LiveJob, PauseJob, TurnEndJob, TurnPartJob
from domain.turn import MAX_USER_CHARS, Closing, Outcome
from domain.turn_segmentation import (
    SpeechOngoing,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TurnEnded,
    TurnEvent,
)
from ports import (
    AudioDuplex,
    Clock,
    Console,
    EndOfTurn,
    LanguageModel,
    MetricsSink,
    SpeechToText,
    TextToSpeech,
    VoiceActivity,
)
from ports.language_model import ModelRestarted

log = logging.getLogger(__name__)

POLL_S = 0.05
# stop() waits this long in all for the threads, then leaves the daemon ones behind.
STOP_BUDGET_S = 0.6


def token_budget(llm: LanguageModel) -> TokenBudget | None:
    """The history's budget of tokens, where the model knows its context."""
    prompt = llm.prompt_budget
    return TokenBudget(prompt) if prompt is not None and prompt >= MIN_BUDGET_TOKENS else None


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
        end_of_turn: EndOfTurn | None = None,
    ) -> None:
        self._audio, self._llm, self._tts = audio, llm, tts
        self._console, self._clock = console, clock
        self._metrics = GuardedMetrics(metrics)  # a record lost must not cost the turn
        self._settings = settings
        self._hearing = Hearing(vad, settings.vad, end_of_turn, settings.barge_in)
        self._audio_now_s = 0.0  # the audio clock: the last mic block's time
        self._lock = threading.Lock()  # guards the domain state below and each turn's life
        self._window = ChatWindow(settings.chat, token_budget(llm))
        self._state = ListeningStateMachine(settings.watchdog_s)
        self._turn: Turn | None = None
        self._next_turn_id = 1
        self._prefetching = Prefetching(
            llm, tts, clock, settings.batching, self._lock, enabled=settings.prefetch_replies
        )
        self._stop = threading.Event()
        self._input_ended = False
        self._transcription = Transcription(
            stt, console, clock, self, live_transcription=settings.live_transcription,
            decode_timeout_s=settings.stt_timeout_s,
        )  # fmt: skip
        self._playback = Playback(audio, clock, self._reply_queued_block, settings.apology)
        barge_in = self._hearing.barge_in
        self._interrupting = (
            None if barge_in is None
            else Interrupting(barge_in, audio, self._transcription.jobs.put, self._hearing.resume)
        )  # fmt: skip
        self._upkeep = HistoryUpkeep(llm, self._window, self._lock, self._summary_landed)
        self._priming = Priming(llm)
        self._threads = Threads(self._stop)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._playback.prepare(self._tts, self._settings.apology)
        self._playback.prepare(self._tts, self._settings.restart_notice)
        self._audio.open()
        self._threads.stage("listen", self._listen_loop)
        self._threads.stage("stt", lambda: self._transcription.run(self._stop))
        self._threads.stage("prime", lambda: self._priming.run(self._stop))
        self._threads.stage("history", lambda: self._upkeep.run(self._stop))
        self._console.notice(
            "Listening." if self._settings.listens else "Type to the agent; Ctrl-D ends."
        )

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the conversation stopped (end of input, a fault, or `stop`)."""
        return self._stop.wait(timeout_s)

    def stop(self) -> None:
        """Ends every thread and closes the device within about a second, whatever hangs."""
        self._stop.set()
        with self._lock:
            turn = self._turn
        if turn is not None:
            self._close(turn, Outcome.STOPPED)
        self._prefetching.drop()
        self._threads.join(STOP_BUDGET_S)
        self._audio.close()

    @property
    def fault(self) -> str | None:
        """Why the conversation stopped on its own, if it did."""
        return self._threads.fault

    @property
    def crashed(self) -> bool:
        return self.fault is not None

    @property
    def history(self) -> list[ChatMessage]:
        with self._lock:
            return self._window.history

    @property
    def notes(self) -> Notes:
        """What the turns that left the history left behind."""
        with self._lock:
            return self._window.notes

    @property
    def compacting(self) -> bool:
        """A history summary is planned and has not landed yet."""
        with self._lock:
            return self._window.compacting

    @property
    def summaries(self) -> int:
        """How many history summaries have landed."""
        return self._upkeep.summaries

    @property
    def phase(self) -> Phase:
        with self._lock:
            return self._state.phase

    # -- listen: audio events -> mute policy -> VAD -> segmenter ---------------------------

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            event = self._audio.next_event(POLL_S)
            self._check_watchdog()
            self._take_confirmations()
            self._judge_pauses()
            if isinstance(event, MicBlock):
                self._audio_now_s = event.captured_at_s
                if self._settings.listens:
                    self._hear(event)
            elif isinstance(event, PlaybackMark):
                self._on_mark(event)
            elif isinstance(event, EndOfInput):
                self._input_ended = True
                self._on_segmentation(self._hearing.end_of_input())
            elif isinstance(event, AudioFailed):
                self._console.notice(event.reason)
                self._threads.halt(event.reason)
            if self._input_ended and self.idle:
                self._stop.set()

    def _hear(self, block: MicBlock) -> None:
        with self._lock:
            should_listen = self._state.should_listen
        heard = self._hearing.hear(block, should_listen=should_listen)
        interrupting = self._interrupting
        if interrupting is not None:
            if heard.decision is Decision.PAUSE:
                with self._lock:
                    turn = self._turn
                interrupting.pause(turn)
            elif heard.decision is Decision.RESUME:
                interrupting.resume()
            elif interrupting.current is not None:
                interrupting.listen(block.pcm)
        self._on_segmentation(heard.events)

    def _judge_pauses(self) -> None:
        """A pause's transcript may end the turn, if the user is still silent in that pause."""
        for transcript in self._prefetching.to_judge():
            self._on_segmentation(self._hearing.transcribed(transcript.text, transcript.language))

    @property
    def idle(self) -> bool:
        """Listening, with no turn in flight and nothing left to transcribe."""
        with self._lock:
            quiet = self._turn is None and self._state.phase is Phase.LISTENING
        return quiet and self._transcription.idle

    def _on_segmentation(self, events: list[TurnEvent]) -> None:
        jobs = self._transcription.jobs
        for event in events:
            if self._paused() and not isinstance(event, SpeechOngoing):
                assert self._interrupting is not None
                self._interrupting.segmented(event)
            elif isinstance(event, SpeechStarted):
                self._fire(transitions.SPEECH_STARTED)
            elif isinstance(event, SpeechOngoing):
                if self._settings.live_transcription:
                    jobs.put(LiveJob(event.audio))
            elif isinstance(event, SpeechPaused):
                jobs.put(PauseJob(event.audio, self._prefetching.paused()))
            elif isinstance(event, SpeechResumed):
                self._prefetching.resumed()
            elif event.continues:
                turn = self._current_or_new_turn(event)
                if event.part == 0:
                    log.warning(
                        "turn %d: %.0f s of speech without a pause (a television nearby?): "
                        "transcribed in parts (--max_speech_ms), the reply answers its last "
                        "%d characters", turn.id, event.speech_end_s - event.speech_start_s,
                        MAX_USER_CHARS,
                    )  # fmt: skip
                jobs.put(TurnPartJob(turn.id, event.audio))
            else:
                turn = self._current_or_new_turn(event)
                turn.stt_start = self._clock.now()  # the wait the user feels starts here
                self._fire(transitions.TURN_ENDED)
                jobs.put(TurnEndJob(turn.id, event.audio, event.after_pause))

    def _current_or_new_turn(self, ended: TurnEnded) -> Turn:
        """The turn this audio belongs to: a long turn cut in parts keeps one Turn."""
        with self._lock:
            if self._turn is None:
                self._turn = Turn(self._next_turn_id, ended.speech_end_s)
                self._next_turn_id += 1
            self._turn.speech_end_s = ended.speech_end_s
            return self._turn

    def _on_mark(self, echo: PlaybackMark) -> None:
        turn = self.open_turn(echo.mark.turn_id)
        if turn is None:
            return  # the echo of a turn already closed (watchdog, stop)
        if isinstance(echo.mark, ReplyVoiced):
            turn.voiced_played_s = echo.played_at_s
        elif isinstance(echo.mark, ReplyDone):
            with self._lock:
                closing = turn.life.played_out()
            self._carry_out(turn, closing)

    def _check_watchdog(self) -> None:
        with self._lock:
            fired = self._state.check_watchdog(self._clock.now())
            turn = self._turn
        if fired and turn is not None:
            turn.error = turn.error or f"watchdog: no progress for {self._settings.watchdog_s} s"
            log.warning("%s: abandoning the turn", turn.error)
            self._close(turn, Outcome.TIMED_OUT)

    # -- barge-in (the listen thread) -------------------------------------------------------

    def _paused(self) -> bool:
        return self._interrupting is not None and self._interrupting.current is not None

    def interruption_heard(self, job: ConfirmJob, transcript: FinalTranscript) -> None:
        if self._interrupting is not None:
            self._interrupting.heard(job, transcript)  # handled on the listen thread

    def _take_confirmations(self) -> None:
        if self._interrupting is None:
            return
        while (confirmed := self._interrupting.confirmed(self._audio_now_s)) is not None:
            self._interrupt(confirmed)

    def _interrupt(self, confirmed: Confirmed) -> None:
        """Confirmed: the reply is cancelled, the history keeps what the user heard of it, and
        the user's speech is the next turn (`whole`: they have already finished it)."""
        interruption, whole = confirmed.interruption, confirmed.whole
        turn = interruption.turn
        heard = self._playback.cut(turn)
        turn.interruption_latency_ms = interruption.latency_ms
        with self._lock:
            closing = turn.life.interrupted(heard)
        self._carry_out(turn, closing)
        self._audio.pause_playback(False)
        log.info("interrupted by the user after: %r", heard)
        held = interruption.held
        if held is None:
            return  # the user is still speaking: their turn ends as any other
        if whole is None:  # confirmed by what they said so far: their turn is transcribed whole
            self._on_segmentation([held])
            return
        new_turn = self._current_or_new_turn(held)
        new_turn.stt_start = new_turn.stt_end = self._clock.now()
        self._fire(transitions.TURN_ENDED)
        self.turn_heard(new_turn, whole)

    # -- text mode -----------------------------------------------------------------------

    def typed(self, text: str) -> Turn:
        """The user typed `text`: a turn as if its transcript had just come in, answered like
        any other (its `closed` is set once it is over). Text mode has one turn at a time."""
        with self._lock:
            turn = self._turn = Turn(self._next_turn_id, self._audio_now_s)
            self._next_turn_id += 1
        self._fire(transitions.TURN_ENDED)
        self.turn_heard(turn, FinalTranscript(text, None))
        return turn

    # -- transcripts (called by the transcription thread) ----------------------------------

    def open_turn(self, turn_id: int) -> Turn | None:
        with self._lock:
            turn = self._turn
        return turn if turn is not None and turn.id == turn_id else None

    def partial_heard(self, text: str) -> None:
        if text:
            self._priming.offer(self._next_request(text))

    def pause_transcribed(self, pause: int, transcript: FinalTranscript) -> None:
        self._prefetching.transcribed(pause, transcript, self._prefetch_request)

    def _prefetch_request(self, transcript: FinalTranscript) -> list[ChatMessage]:
        self._priming.drop()
        request = self._request(transcript)
        self._upkeep.give_way()
        return request

    def speculation(self, after_pause: bool) -> FinalTranscript | None:
        return self._prefetching.take(after_pause)

    def turn_part_heard(self, turn: Turn, transcript: FinalTranscript) -> None:
        with self._lock:
            turn.life.heard_part(transcript)

    def turn_heard(self, turn: Turn, transcript: FinalTranscript) -> None:
        with self._lock:
            user_text = turn.life.heard_final(transcript)
        if not user_text:
            self._console.live("")
            self._close(turn, Outcome.EMPTY)
            return
        self._console.user(user_text)
        self._progress()
        self._start_reply(turn, self._request(FinalTranscript(user_text, transcript.language)))

    def _request(self, transcript: FinalTranscript) -> list[ChatMessage]:
        prompt = (
            reply_language_prompt(transcript.language)
            if self._settings.enable_lang_prompt
            else None
        )
        with self._lock:
            return self._window.request(prompt, new_user_text=transcript.text)

    def _next_request(self, user_text: str) -> list[ChatMessage]:
        """The next request as far as it is known: the history and the user's words so far
        (the reply-language prompt, if any, comes after them)."""
        with self._lock:
            return self._window.request(new_user_text=user_text)

    # -- replies ---------------------------------------------------------------------------

    def _start_reply(self, turn: Turn, request: list[ChatMessage]) -> None:
        """The prefetched reply, and what of it was spoken ahead, when it was asked with exactly
        this request (and for the same language), else a new one."""
        claimed = self._prefetching.claim(request, turn.life.language)
        if claimed is not None:
            stream, ahead = claimed
            turn.llm_first_delta = stream.first_delta_at
            log.debug("turn %d takes the prefetched reply (spoken ahead: %s)", turn.id, bool(ahead))
        else:
            ahead = None
            log.debug("turn %d asks for a new reply", turn.id)
            self._upkeep.give_way()
            self._priming.drop()
            stream = ReplyStream(self._llm, request, self._clock)
        turn.llm_start = stream.started_at
        turn.reply = stream
        worker = ReplyWorker(
            turn, stream, self._tts, self._playback, self._console, self._clock,
            self._settings.batching, self, ahead,
        )  # fmt: skip
        name = f"reply-{turn.id}"
        self._threads.reply(name, worker.run, stream)
        if turn.cancel.is_set():  # closed while it was being started (stop)
            stream.cancel()

    def replied(self, turn: Turn, delta: str) -> bool:
        with self._lock:
            goes_on = not turn.life.closed and turn.life.replied(delta)
            runaway = turn.life.runaway
        if runaway and not goes_on:
            log.warning("reply cut short: %s", runaway)
        self._progress()
        return goes_on

    def reply_queued(self, turn: Turn) -> bool:
        with self._lock:
            turn.life.reply_finished()
            said_something = bool(turn.life.reply.strip())
        if not said_something:
            self.fail(turn, "llm", RuntimeError("the model returned an empty reply"))
        return said_something

    def _reply_queued_block(self, turn: Turn, first_voiced: bool) -> None:
        with self._lock:
            if self._turn is not turn:
                return
            if first_voiced:
                self._state.fire(transitions.REPLY_STARTED, self._clock.now())
            self._state.progress(max(self._clock.now(), turn.playback_until))

    # -- terminal paths ----------------------------------------------------------------------

    def fail(self, turn: Turn, stage: str, error: Exception) -> None:
        """Stop the turn's work and apologise behind what already plays; the turn closes when
        the apology has played (or, if that never happens, by the watchdog)."""
        with self._lock:
            first = turn.life.fault()
        if not first:
            return
        log.warning("%s failed: %s", stage, error)
        turn.error = f"{stage}: {error}"
        turn.cancel.set()
        if turn.reply is not None:
            turn.reply.cancel()
        # A server that died and is being restarted is said so: the next question will work.
        notice = (
            self._settings.restart_notice
            if isinstance(error, ModelRestarted)
            else self._settings.apology
        )
        self._console.reply_ended()
        self._console.assistant(notice)
        self._playback.apologise(turn, notice)

    def _close(self, turn: Turn, outcome: Outcome) -> None:
        with self._lock:
            closing = turn.life.close(outcome)
        self._carry_out(turn, closing)

    def _carry_out(self, turn: Turn, closing: Closing | None) -> None:
        """What the domain says a close entails, exactly once per turn."""
        if closing is None:
            return
        if self._interrupting is not None:
            self._interrupting.forget(turn)  # closed while paused (watchdog, stop)
        with self._lock:
            if self._turn is turn:
                self._turn = None
            if closing.transition is not None:
                self._state.fire(closing.transition, self._clock.now())
            if closing.exchange is not None:
                self._window.add_user(closing.exchange[0])
                self._window.add_assistant(closing.exchange[1])
                self._window.after_reply()
        turn.cancel.set()
        if turn.reply is not None:
            turn.reply.cancel()
        self._playback.seal(turn, cut_short=closing.cut_short, apologise=closing.apologise)
        if closing.apologise:
            self._console.reply_ended()
            self._console.assistant(self._settings.apology)
        self._console.reply_ended()
        self._metrics.record(turn.metrics())
        if closing.exchange is not None:
            self._priming.offer(self._next_request(""))  # the history as the next turn finds it
            self._upkeep.changed()
        turn.closed.set()

    def _summary_landed(self) -> None:
        self._priming.offer(self._next_request(""))  # the summary changed the history

    # -- plumbing ----------------------------------------------------------------------------

    def _fire(self, transition: Transition) -> None:
        with self._lock:
            self._state.fire(transition, self._clock.now())

    def _progress(self) -> None:
        with self._lock:
            self._state.progress(self._clock.now())
