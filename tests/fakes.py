"""Hand-written fakes of every port. They record what happened, so tests assert on it.

Fake "speech" is a block filled with one sample value: the value names the utterance, so the
fake VAD hears speech where the value is loud and the fake STT knows what was said.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

from domain.audio import (
    BLOCK_SAMPLES,
    BLOCK_SECONDS,
    EndOfInput,
    MicBlock,
    PlaybackMark,
)
from domain.messages import ChatMessage, FinalTranscript, PartialTranscript, TurnMetrics
from ports.language_model import Cancellation, LanguageModelError

SPEECH_LEVEL = 1000


def speech(code: int, seconds: float) -> list[bytes]:
    """Blocks of the utterance named `code` (1..30): a constant loud sample value."""
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
        if SPEECH_LEVEL <= sample < SPEECH_LEVEL + 100 and sample - SPEECH_LEVEL not in codes:
            codes.append(sample - SPEECH_LEVEL)
    return codes


class FakeAudio:
    """A duplex device driven as fast as the agent asks: each `next_event` is one callback.

    `script` holds mic blocks, and callables: the mic holds (sending silence) until the
    callable returns True, e.g. "until the agent listens again". Played blocks are recorded in
    `played`, marks echoed as the output reaches them, exactly like the real stream.
    """

    def __init__(self, script: Sequence[bytes | Callable[[], bool]]) -> None:
        self._script: deque[bytes | Callable[[], bool]] = deque(script)
        self._output: deque[bytes | tuple[int, str]] = deque()
        self._lock = threading.Lock()
        self._ticks = 0
        self._ended = False
        self.played: list[bytes] = []
        self.marks: list[PlaybackMark] = []
        self.forwarded_while_playing = 0
        self.opened = self.closed = False

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.closed = True

    def play(self, block: bytes) -> None:
        with self._lock:
            self._output.append(block)

    def mark(self, turn_id: int, label: str) -> None:
        with self._lock:
            self._output.append((turn_id, label))

    def clear_playback(self) -> None:
        with self._lock:
            self._output.clear()

    def next_event(self, timeout_s: float) -> MicBlock | PlaybackMark | EndOfInput | None:
        time.sleep(0.0005)  # let the other stages run, as a real 32 ms callback would
        with self._lock:
            now = self._ticks * BLOCK_SECONDS
            head = self._output.popleft() if self._output else None
            if isinstance(head, tuple):
                mark = PlaybackMark(head[0], head[1], now)
                self.marks.append(mark)
                return mark
            self._ticks += 1
            if head is not None:
                self.played.append(head)
                return None  # half duplex: the mic is not forwarded while the reply plays
            return self._mic(now)

    def _mic(self, now: float) -> MicBlock | EndOfInput | None:
        while self._script and callable(self._script[0]):
            if not self._script[0]():
                return MicBlock(bytes(2 * BLOCK_SAMPLES), now)
            self._script.popleft()
        if self._script:
            return MicBlock(self._script.popleft(), now)  # type: ignore[arg-type]
        if not self._ended:
            self._ended = True
            return EndOfInput()
        return None


class FakeVoiceActivity:
    def __init__(self) -> None:
        self.resets = 0

    def speech_probability(self, block: bytes) -> float:
        return 0.95 if utterance_code(block) is not None else 0.02

    def reset(self) -> None:
        self.resets += 1


class FakeSpeechToText:
    def __init__(self, transcripts: Mapping[int, str], language: str | None = "en") -> None:
        self._transcripts = transcripts
        self._language = language
        self.finals: list[str] = []
        self.partials: list[str] = []
        self.fail_on: set[int] = set()

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
        self.finals.append(text)
        return FinalTranscript(text, self._language)


class FakeLanguageModel:
    """Streams each scripted reply word by word. A reply may be an exception (raised before the
    first delta) or a `Failing(text, after_words)` (raised mid-stream)."""

    def __init__(
        self,
        replies: Sequence[str | Exception | Failing],
        delta_delay_s: float = 0.0,
        summary: str | Exception = "They talked.",
    ) -> None:
        self._replies = deque(replies)
        self._delay = delta_delay_s
        self._summary = summary
        self.requests: list[list[ChatMessage]] = []
        self.cancelled: list[int] = []  # indices of requests abandoned before their end
        self.compactions: list[list[ChatMessage]] = []
        self.compaction_gate = threading.Event()
        self.compaction_gate.set()

    def stream(self, messages: Sequence[ChatMessage], cancel: Cancellation) -> Iterator[str]:
        self.requests.append(list(messages))
        reply = self._replies.popleft() if self._replies else "OK."
        if isinstance(reply, Exception):
            raise reply
        text, fail_after = (reply.text, reply.after_words) if isinstance(reply, Failing) else (
            reply, None)  # fmt: skip
        for i, word in enumerate(text.split(" ")):
            if fail_after is not None and i == fail_after:
                raise LanguageModelError("connection lost mid-stream")
            if cancel.is_set():
                self.cancelled.append(len(self.requests) - 1)
                return
            time.sleep(self._delay)
            yield word if i == 0 else " " + word

    def complete(self, messages: Sequence[ChatMessage]) -> str:
        self.compactions.append(list(messages))
        self.compaction_gate.wait(10)
        if isinstance(self._summary, Exception):
            raise self._summary
        return self._summary


class Failing:
    def __init__(self, text: str, after_words: int) -> None:
        self.text = text
        self.after_words = after_words


class FakeTextToSpeech:
    """Two chunks per text, 40 ms of audio per word, at a level that is plainly not dither."""

    LEVEL = 3000

    def __init__(self) -> None:
        self.spoken: list[str] = []
        self.languages: list[str | None] = []

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        self.spoken.append(text)
        self.languages.append(language)
        samples = 640 * max(1, len(text.split()))
        pcm = self.LEVEL.to_bytes(2, "little", signed=True) * samples
        half = (samples // 2) * 2
        yield pcm[:half]
        yield pcm[half:]


class FakeConsole:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.live_lines: list[str] = []

    def live(self, text: str) -> None:
        self.live_lines.append(text)

    def user(self, text: str) -> None:
        self.lines.append(f"USER: {text}")

    def assistant(self, text: str) -> None:
        self.lines.append(f"ASSISTANT: {text}")

    def notice(self, text: str) -> None:
        self.lines.append(text)


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
