"""Hand-written fakes of every port. They record what happened, so tests assert on it.

Fake "speech" is a block filled with one sample value: the value names the utterance, so the
fake VAD hears speech where the value is loud and the fake STT knows what was said. Utterance
codes run 1..999: speech, apology and reply levels stay apart, and a reply's audio can carry the
code of the utterance it answers (see FakeTextToSpeech).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

import attrs

from application.settings import DEFAULT_APOLOGY
from domain.audio import (
    BLOCK_SAMPLES,
    BLOCK_SECONDS,
    EndOfInput,
    MicBlock,
    PlaybackMark,
    ReplyDone,
    ReplyMark,
    ReplyVoiced,
)
from domain.chat_window import SUMMARY_INSTRUCTIONS
from domain.messages import ChatMessage, FinalTranscript, PartialTranscript, TurnMetrics
from ports.language_model import Cancellation, LanguageModelError

SPEECH_LEVEL = 1000
CODES = 1000  # utterance codes are below this


def speech(code: int, seconds: float) -> list[bytes]:
    """Blocks of the utterance named `code`: a constant loud sample value."""
    value = SPEECH_LEVEL + code
    block = value.to_bytes(2, "little", signed=True) * BLOCK_SAMPLES
    return [block] * round(seconds / BLOCK_SECONDS)


def silence_blocks(seconds: float) -> list[bytes]:
    return [bytes(2 * BLOCK_SAMPLES)] * round(seconds / BLOCK_SECONDS)


def utterance_code(audio: bytes) -> int | None:
    """The code of the first loud sample in `audio`, or None when there is none."""
    codes = utterance_codes(audio)
    return codes[0] if codes else None


def utterance_codes(audio: bytes) -> list[int]:
    """The codes of the utterances in `audio`, in order of appearance."""
    codes: list[int] = []
    for sample in memoryview(audio).cast("h")[::64]:
        if 0 < sample - SPEECH_LEVEL < CODES and sample - SPEECH_LEVEL not in codes:
            codes.append(sample - SPEECH_LEVEL)
    return codes


def block_level(block: bytes) -> int:
    """The first sample of `block`: the fakes fill a block with one value."""
    return int.from_bytes(block[:2], "little", signed=True)


def reply_code(block: bytes) -> int | None:
    """The code of the utterance a block of a tagged reply answers, or None (see
    FakeTextToSpeech)."""
    code = block_level(block) - FakeTextToSpeech.LEVEL
    return code if 0 < code < CODES else None


@attrs.frozen
class Frozen:
    """A script step: the audio clock stands still (no callback at all) until `until()` is
    true or `timeout_s` has passed; `met` tells which."""

    until: Callable[[], bool]
    timeout_s: float = 5.0
    met: threading.Event = attrs.field(factory=threading.Event)

    def wait(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self.until():
            if time.monotonic() > deadline:
                return
            time.sleep(0.001)
        self.met.set()


class FakeAudio:
    """A duplex device driven as fast as the agent asks: each `next_event` is one callback.

    `script` holds mic blocks, `Frozen` steps, and callables: the mic holds (sending silence)
    until the callable returns True, e.g. "until the agent listens again". Every mic block is
    delivered, with `playing` set when a reply block went out in the same tick; played blocks
    are recorded in `played`, marks echoed as the output reaches them, like the real stream.
    `journal`, when given, gets ("queued" | "played", block) and ("cleared", None) entries.
    """

    def __init__(
        self,
        script: Sequence[bytes | Frozen | Callable[[], bool]],
        journal: list[tuple[str, object]] | None = None,
        drop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._script: deque[bytes | Frozen | Callable[[], bool]] = deque(script)
        self._output: deque[bytes | ReplyMark] = deque()
        self._lock = threading.Lock()
        self._ticks = 0
        self._ended = False
        self._journal = journal
        self._drop = drop  # True: this tick's mic block is lost (a device hiccup)
        self.played: list[bytes] = []
        self.marks: list[PlaybackMark] = []
        self.paused = False
        self.pauses: list[bool] = []  # every pause_playback call
        self.opened = self.closed = False

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.closed = True

    def check(self) -> None:
        pass

    def play(self, block: bytes) -> None:
        with self._lock:
            self._output.append(block)
            self._note("queued", block)

    def mark(self, mark: ReplyMark) -> None:
        with self._lock:
            self._output.append(mark)

    def clear_playback(self) -> int:
        with self._lock:
            dropped = sum(isinstance(item, bytes) for item in self._output)
            self._output.clear()
            self._note("cleared", None)
            return dropped

    def pause_playback(self, paused: bool) -> None:
        with self._lock:
            self.paused = paused
            self.pauses.append(paused)

    def _note(self, what: str, block: bytes | None) -> None:
        if self._journal is not None:
            self._journal.append((what, block))

    def next_event(self, timeout_s: float) -> MicBlock | PlaybackMark | EndOfInput | None:
        time.sleep(0.0005)  # let the other stages run, as a real 32 ms callback would
        if self._script and isinstance(frozen := self._script[0], Frozen):
            frozen.wait()
            self._script.popleft()
        with self._lock:
            now = self._ticks * BLOCK_SECONDS
            head = self._output.popleft() if self._output and not self.paused else None
            if isinstance(head, ReplyVoiced | ReplyDone):
                echo = PlaybackMark(head, now)
                self.marks.append(echo)
                return echo
            self._ticks += 1
            if head is not None:
                self.played.append(head)
                self._note("played", head)
            event = self._mic(now, playing=head is not None)
            return None if isinstance(event, MicBlock) and self._drop() else event

    def _mic(self, now: float, *, playing: bool) -> MicBlock | EndOfInput | None:
        while self._script and callable(step := self._script[0]):
            if not step():
                return MicBlock(bytes(2 * BLOCK_SAMPLES), now, playing)
            self._script.popleft()
        if self._script:
            return MicBlock(self._script.popleft(), now, playing)  # type: ignore[arg-type]
        if not self._ended:
            self._ended = True
            return EndOfInput()
        return None


class WarmsUp:
    """Counts warm-ups: the composition warms every model stage once, before listening."""

    warm_ups = 0

    def warm_up(self) -> None:
        self.warm_ups += 1


class FakeVoiceActivity(WarmsUp):
    def __init__(self) -> None:
        self.resets = 0

    def speech_probability(self, block: bytes) -> float:
        return 0.95 if utterance_code(block) is not None else 0.02

    def reset(self) -> None:
        self.resets += 1


class FakeEndOfTurn(WarmsUp):
    """Hears a turn as complete when the last utterance in it is one of `complete_codes`."""

    def __init__(self, complete_codes: set[int]) -> None:
        self.complete_codes = complete_codes
        self.asked: list[list[int]] = []  # the utterances heard at each question

    def complete_probability(self, audio: bytes) -> float:
        codes = utterance_codes(audio)
        self.asked.append(codes)
        return 0.9 if codes and codes[-1] in self.complete_codes else 0.1


class FakeSpeechToText(WarmsUp):
    """Knows each utterance by its code (an unknown one is heard as nothing). Audio holding an
    utterance in `fail_on` makes it raise; one in `hang_on` holds up its final decode on that
    `Hanging`."""

    def __init__(self, transcripts: Mapping[int, str], language: str | None = "en") -> None:
        self._transcripts = transcripts
        self._language = language
        self.finals: list[str] = []
        self.partials: list[str] = []
        self.fail_on: set[int] = set()
        self.hang_on: dict[int, Hanging] = {}

    def _text(self, audio: bytes) -> str:
        """The transcripts of every utterance heard in `audio`, in order."""
        codes = utterance_codes(audio)
        if self.fail_on & set(codes):
            raise RuntimeError(f"stt broke on utterance {codes}")
        return " ".join(t for code in codes if (t := self._transcripts.get(code, "")))

    def transcribe_partial(self, audio: bytes) -> PartialTranscript:
        text = self._text(audio)
        self.partials.append(text)
        return PartialTranscript(text)

    def transcribe(self, audio: bytes) -> FinalTranscript:
        text = self._text(audio)
        for code in self.hang_on.keys() & utterance_codes(audio):
            self.hang_on[code].wait()
        self.finals.append(text)
        return FinalTranscript(text, self._language)


class FakeLanguageModel(WarmsUp):
    """Streams each scripted reply word by word. A reply may be an exception (raised before the
    first delta), a `Failing(text, after_words)` (raised mid-stream) or a `Hanging` (a provider
    that answers late or never, and ignores cancellation). `replies` is a list taken in order,
    or a function of the request. A summary request (history compaction) is told apart by its
    instructions and answered with `summary` (text, error, or a function of the request) after
    `summary_s` deaf to cancellation (a local server reading the prompt), once
    `compaction_gate` opens. With `flaky_prime`, every other read-ahead fails.
    `prompt_budget` and `background_yields` are what the port says of them; a text's tokens
    are its words."""

    def __init__(
        self,
        replies: Sequence[Reply] | Callable[[list[ChatMessage]], Reply],
        delta_delay_s: float = 0.0,
        summary: str | Exception | Callable[[list[ChatMessage]], str] = "They talked.",
        prompt_budget: int | None = None,
        background_yields: bool = False,
        summary_s: float = 0.0,
        flaky_prime: bool = False,
    ) -> None:
        self.prompt_budget = prompt_budget
        self.background_yields = background_yields
        if callable(replies):
            self._reply = replies
        else:
            queue = deque(replies)
            self._reply = lambda _: queue.popleft() if queue else "OK."
        self._delay = delta_delay_s
        self._summary = summary
        self._summary_s = summary_s
        self._flaky_prime = flaky_prime
        self.requests: list[list[ChatMessage]] = []
        self.cancelled: list[int] = []  # indices of requests abandoned before their end
        self.compactions: list[list[ChatMessage]] = []
        self.cancelled_compactions = 0
        self.compaction_gate = threading.Event()
        self.compaction_gate.set()
        self.primed: list[list[ChatMessage]] = []
        self.offered_tools: list[bool] = []  # per request: whether tools were offered

    def stream(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        background: bool = False,
        offer_tools: bool = True,
    ) -> Iterator[str]:
        self.offered_tools.append(offer_tools)
        if messages and messages[0].content == SUMMARY_INSTRUCTIONS:
            if not background:  # it would take the conversation's own place in a prompt cache
                raise AssertionError("a summary was asked for as part of the conversation")
            yield self._summarise(messages, cancel)
            return
        self.requests.append(list(messages))
        index = len(self.requests) - 1
        reply = self._reply(self.requests[-1])
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Hanging):
            reply.wait()
        text = reply if isinstance(reply, str) else reply.text
        fail_after = reply.after_words if isinstance(reply, Failing) else None
        for i, word in enumerate(text.split(" ")):
            if fail_after is not None and i == fail_after:
                raise LanguageModelError("connection lost mid-stream")
            if cancel.is_set() and not isinstance(reply, Hanging):
                self.cancelled.append(index)
                return
            time.sleep(self._delay)
            yield word if i == 0 else " " + word

    def _summarise(self, messages: Sequence[ChatMessage], cancel: Cancellation) -> str:
        self.compactions.append(list(messages))
        time.sleep(self._summary_s)  # reading the prompt
        while not cancel.is_set():
            if self.compaction_gate.wait(0.01):
                summary = self._summary
                summary = summary(list(messages)) if callable(summary) else summary
                if isinstance(summary, Exception):
                    raise summary
                return summary
        self.cancelled_compactions += 1
        return ""

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        self.primed.append(list(messages))
        if self._flaky_prime and len(self.primed) % 2:
            raise LanguageModelError("HTTP 503")

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@attrs.frozen
class Failing:
    text: str
    after_words: int


@attrs.frozen
class Hanging:
    """A stage stuck, whatever the cancellation says, until `release` is set or `timeout_s` has
    passed; then it carries on as if nothing happened (a reply says `text`). `woke` is set once
    a stuck stage has carried on."""

    release: threading.Event
    timeout_s: float | None = None
    text: str = ""
    woke: threading.Event = attrs.field(factory=threading.Event, eq=False)

    def wait(self) -> None:
        self.release.wait(self.timeout_s)
        self.woke.set()


Reply = str | Exception | Failing | Hanging


class FakeTextToSpeech(WarmsUp):
    r"""Two chunks per text, 40 ms of audio per word (unless told otherwise), at a level that is
    plainly not dither.

    Given `reply_to`, a pattern such as r"Answer (\d+)", a text it matches opens the reply to
    utterance N, voiced at LEVEL + N up to the next such text, so a test knows whose audio it
    hears. A later text of reply N raises when N is in `fail_on`, and hangs after its first
    chunk on `hang_on[N]` (later, so that some of the reply was queued before)."""

    LEVEL = 3000
    APOLOGY_LEVEL = 2000

    def __init__(self, reply_to: str | None = None, samples_per_word: int = 640) -> None:
        self._samples_per_word = samples_per_word
        self.spoken: list[str] = []
        self.languages: list[str | None] = []
        self._reply_to = re.compile(reply_to) if reply_to else None
        self._code: int | None = None  # of the reply being voiced
        self.fail_on: set[int] = set()
        self.hang_on: dict[int, Hanging] = {}

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        self.spoken.append(text)
        self.languages.append(language)
        opens = self._reply_to.match(text) if self._reply_to else None
        if opens:
            self._code = int(opens.group(1))
        code = self._code  # this call's, whatever the next ones set
        if not opens and code in self.fail_on:
            raise RuntimeError(f"voice model crashed in reply {code}")
        samples = self._samples_per_word * max(1, len(text.split()))
        level = self.APOLOGY_LEVEL if text == DEFAULT_APOLOGY else self.LEVEL + (code or 0)
        pcm = level.to_bytes(2, "little", signed=True) * samples
        half = (samples // 2) * 2
        yield pcm[:half]
        if not opens and code in self.hang_on:
            self.hang_on[code].wait()
        yield pcm[half:]


class FakeConsole:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.live_lines: list[str] = []
        self.replies_ended = 0
        self.cut_short = 0
        self.speech: list[str] = []  # "started", "stopped" or "resumed" (no turn), in order

    def live(self, text: str) -> None:
        self.live_lines.append(text)

    def user(self, text: str) -> None:
        self.lines.append(f"USER: {text}")

    def assistant(self, text: str) -> None:
        self.lines.append(f"ASSISTANT: {text}")

    def notice(self, text: str) -> None:
        self.lines.append(text)

    def reply_ended(self, cut_short: bool = False) -> None:
        self.replies_ended += 1
        self.cut_short += cut_short

    def speech_started(self) -> None:
        self.speech.append("started")

    def speech_stopped(self, turn_ended: bool = True) -> None:
        self.speech.append("stopped" if turn_ended else "resumed")


class RealClock:
    """Monotonic seconds, for tests where the watchdog must fire on its own."""

    def now(self) -> float:
        return time.monotonic()


class FakeClock:
    """Moves forward a little at every reading (so latencies are positive), and jumps when a
    test calls `advance`."""

    def __init__(self, step_s: float = 0.001) -> None:
        self._now = 0.0
        self._step = step_s
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            self._now += self._step
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class FakeMetrics:
    def __init__(self) -> None:
        self.records: list[TurnMetrics] = []

    def record(self, metrics: TurnMetrics) -> None:
        self.records.append(metrics)
