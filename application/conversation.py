"""The conversation: moves audio and text between the ports, and asks the domain what to do.

    audio --listening--> mute policy -> VAD -> segmenter --jobs--> transcription
          <--playback-- reply worker (per turn) <-- reply stream (per turn, LLM) <-- transcript

The decisions are the domain's: the mute policy (what the VAD hears), the segmenter (when a
turn ends), the `should_listen` machine, the life of a turn (its transcript, its close and what
the close entails), the chat window. The listen thread (listening.py) turns audio into turns and
barge-in; the memory (memory.py) keeps the history and the requests made from it; this module
owns the turns: it asks for replies, carries closes out and measures.
Every turn closes exactly once: listening re-opens, the history keeps a whole exchange or
nothing, nothing of the turn plays after its close, a fault is apologised for aloud, and one
metrics record is written. A due reminder is a turn the agent starts, at a quiet moment, and
lives like any other (the user may interrupt it; a fault ends it with the apology).
"""

from __future__ import annotations

import itertools
import logging
import threading

from application.guarded_metrics import GuardedMetrics
from application.listening import Listening
from application.memory import Memory
from application.playback import Playback
from application.prefetching import Prefetching
from application.reminders import Reminders
from application.reply_stream import ReplyStream, Said
from application.replying import ReplyWorker
from application.settings import ConversationSettings
from application.speaking_ahead import SpeakingAhead
from application.threads import Threads
from application.tool_calls import tool_runner
from application.transcription import Transcription
from application.turn import Turn
from domain import listening as transitions
from domain.listening import ListeningStateMachine, Phase, Transition
from domain.messages import ChatMessage, FinalTranscript
from domain.timers import quiet_moment
from domain.transcription_jobs import ConfirmJob
from domain.turn import Closing, Outcome
from domain.turn_segmentation import TurnEnded
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
from ports.tools import Toolbox

log = logging.getLogger(__name__)

# stop() waits this long in all for the threads, then leaves the daemon ones behind.
STOP_BUDGET_S = 0.6


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
        tools: Toolbox | None = None,
    ) -> None:
        self._audio, self._llm, self._tts = audio, llm, tts
        self._console, self._clock = console, clock
        self._metrics = GuardedMetrics(metrics)  # a record lost must not cost the turn
        self._settings = settings
        self._lock = threading.Lock()  # guards the domain state below and each turn's life
        self.memory = Memory(llm, settings, self._lock)
        self._state = ListeningStateMachine(settings.watchdog_s)
        self._turn: Turn | None = None
        self._turn_ids = itertools.count(1)
        self._reminders = Reminders(clock) if settings.timers else None
        self._tools = tool_runner([tools, self._reminders], settings)
        self._prefetching = Prefetching(
            llm, tts, clock, settings.batching, self._lock, enabled=settings.prefetch_replies,
            tools=self._tools,
        )  # fmt: skip
        self._stop = threading.Event()
        self._threads = Threads(self._stop)
        self._transcription = Transcription(
            stt, console, clock, self, live_transcription=settings.live_transcription,
            decode_timeout_s=settings.stt_timeout_s,
        )  # fmt: skip
        self._playback = Playback(audio, clock, self._reply_queued_block, settings.apology)
        self._listening = Listening(
            audio, vad, end_of_turn, self._transcription.jobs, self._prefetching, self, clock,
            console, vad_config=settings.vad, barge_in=settings.barge_in,
            listens=settings.listens, live_transcription=settings.live_transcription,
            halt=self._threads.halt,
        )  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._playback.prepare(self._tts, self._settings.apology)
        self._playback.prepare(self._tts, self._settings.restart_notice)
        self._audio.open()
        self._threads.stage("listen", lambda: self._listening.run(self._stop))
        self._threads.stage("stt", lambda: self._transcription.run(self._stop))
        self.memory.start(self._threads, self._stop)
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
        for timer in self._reminders.left_behind() if self._reminders else []:
            self._console.notice(timer)  # timers do not outlive the agent: say which are lost

    @property
    def fault(self) -> str | None:
        """Why the conversation stopped on its own, if it did."""
        return self._threads.fault

    @property
    def crashed(self) -> bool:
        return self.fault is not None

    @property
    def phase(self) -> Phase:
        with self._lock:
            return self._state.phase

    # -- the turn desk (asked by the listen thread) ----------------------------------------

    @property
    def should_listen(self) -> bool:
        with self._lock:
            return self._state.should_listen

    @property
    def idle(self) -> bool:
        """Listening, with no turn in flight and nothing left to transcribe."""
        with self._lock:
            quiet = self._turn is None and self._state.phase is Phase.LISTENING
        return quiet and self._transcription.idle

    def fire(self, transition: Transition) -> None:
        with self._lock:
            self._state.fire(transition, self._clock.now())

    def current_turn(self) -> Turn | None:
        with self._lock:
            return self._turn

    def turn_for(self, ended: TurnEnded) -> Turn:
        with self._lock:
            turn = self._turn or self._open(ended.speech_end_s)
            turn.speech_end_s = ended.speech_end_s
            return turn

    def played_out(self, turn: Turn) -> None:
        with self._lock:
            closing = turn.life.played_out()
        self._carry_out(turn, closing)

    def check_watchdog(self) -> None:
        with self._lock:
            fired = self._state.check_watchdog(self._clock.now())
            turn = self._turn
        if fired and turn is not None:
            turn.error = turn.error or f"watchdog: no progress for {self._settings.watchdog_s} s"
            log.warning("%s: abandoning the turn", turn.error)
            self._close(turn, Outcome.TIMED_OUT)

    def remind(self, user_silent_s: float) -> None:
        if self._reminders is None or not self._transcription.idle:
            return
        with self._lock:  # the moment is judged and taken at once (a line may be typed)
            quiet = quiet_moment(
                turn_in_flight=self._turn is not None,
                listening=self._state.phase is Phase.LISTENING,
                user_silent_s=user_silent_s,
            )
            timer = self._reminders.take_due() if quiet else None
            if timer is None:
                return
            turn = self._open(self._listening.audio_now_s)
            turn.life.started_by_agent()
            self._state.fire(transitions.TURN_ENDED, self._clock.now())
        log.info("turn %d: a timer is due: %s", turn.id, timer.announcement)
        self._speak(turn, ReplyStream(Said(timer.announcement), [], self._clock), None)

    def interrupted(self, turn: Turn, latency_ms: float) -> str:
        heard = self._playback.cut(turn)
        turn.interruption_latency_ms = latency_ms
        with self._lock:
            closing = turn.life.interrupted(heard)
        self._carry_out(turn, closing)
        return heard

    # -- text mode -----------------------------------------------------------------------

    def typed(self, text: str) -> Turn:
        """The user typed `text`: a turn as if its transcript had just come in, answered like
        any other (its `closed` is set once it is over). Text mode has one turn at a time: a
        reminder still being said is cut, as if the user had spoken over it."""
        while True:
            with self._lock:
                reminder = self._turn
                if reminder is None:
                    turn = self._open(self._listening.audio_now_s)
                    break
            self.interrupted(reminder, 0.0)
        self.fire(transitions.TURN_ENDED)
        self.turn_heard(turn, FinalTranscript(text, self._settings.typed_language))
        return turn

    # -- driven from outside the terminal (a Realtime session) -----------------------------

    def cancel_reply(self) -> bool:
        """The client cancelled the reply: closed as if the user had interrupted it (the
        history keeps what was heard of it). False when no turn is in flight."""
        turn = self.current_turn()
        if turn is None:
            return False
        self.interrupted(turn, 0.0)
        self._audio.pause_playback(False)  # a barge-in pause, if one was on, ends with it
        return True

    def instruct(self, instructions: str) -> None:
        """The system prompt from the next request on."""
        self.memory.instruct(instructions)

    # -- transcripts (called by the transcription thread) ----------------------------------

    def open_turn(self, turn_id: int) -> Turn | None:
        turn = self.current_turn()
        return turn if turn is not None and turn.id == turn_id else None

    def partial_heard(self, text: str) -> None:
        self.memory.heard_so_far(text)

    def pause_transcribed(self, pause: int, transcript: FinalTranscript) -> None:
        self._prefetching.transcribed(pause, transcript, self.memory.ask)

    def speculation(self, after_pause: bool) -> FinalTranscript | None:
        return self._prefetching.take(after_pause)

    def interruption_heard(self, job: ConfirmJob, transcript: FinalTranscript) -> None:
        self._listening.interruption_heard(job, transcript)

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
        request = self.memory.request(FinalTranscript(user_text, transcript.language))
        self._start_reply(turn, request)

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
            self.memory.give_way()
            stream = ReplyStream(self._llm, request, self._clock, self._tools)
        self._speak(turn, stream, ahead)

    def _speak(self, turn: Turn, stream: ReplyStream, ahead: SpeakingAhead | None) -> None:
        turn.llm_start = stream.started_at
        turn.reply = stream
        worker = ReplyWorker(
            turn, stream, self._tts, self._playback, self._console, self._clock,
            self._settings.batching, self, ahead,
        )  # fmt: skip
        self._threads.reply(f"reply-{turn.id}", worker.run, stream)
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
        restarted = isinstance(error, ModelRestarted)
        notice = self._settings.restart_notice if restarted else self._settings.apology
        self._console.reply_ended(cut_short=True)
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
        self._listening.forget(turn)  # closed while paused (watchdog, stop)
        if closing.exchange is not None:
            self.memory.keep(*closing.exchange, turn.calls)
        with self._lock:
            if self._turn is turn:
                self._turn = None
            if closing.transition is not None:
                self._state.fire(closing.transition, self._clock.now())
        turn.cancel.set()
        if turn.reply is not None:
            turn.reply.cancel()
        self._playback.seal(turn, cut_short=closing.cut_short, apologise=closing.apologise)
        if closing.apologise:
            self._console.reply_ended(cut_short=True)
            self._console.assistant(self._settings.apology)
        self._console.reply_ended(cut_short=closing.cut_short and not closing.apologise)
        self._metrics.record(turn.metrics())
        turn.closed.set()

    # -- plumbing ----------------------------------------------------------------------------

    def _open(self, speech_end_s: float) -> Turn:
        """The new current turn (under the lock)."""
        self._turn = Turn(next(self._turn_ids), speech_end_s)
        return self._turn

    def _progress(self) -> None:
        with self._lock:
            self._state.progress(self._clock.now())
