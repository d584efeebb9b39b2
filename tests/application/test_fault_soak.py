"""Hundreds of turns through the real containers, with fakes that fail at random (seeded), and the
turn invariants checked after every turn:

- every turn closes exactly once, with the outcome its fault calls for, and one metrics record;
- listening re-opens (the next turn is heard at all);
- the history alternates user / assistant and holds exactly the answered exchanges;
- nothing of a turn is queued or played after its close, and a fault is apologised for aloud;
- a user speaking over a long reply (barge-in) cuts it: the history keeps the words played of it,
  marked, and their speech is the next turn.

Metrics go through the adapters' FanOut, as in the agent: a sink that fails at random (a disk
full now and then) beside the journal that records every turn for the checks.
"""

from __future__ import annotations

import errno
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence

from dependency_injector import providers

from adapters.metrics_sinks import FanOut
from application.conversation import Conversation
from domain.audio import BLOCK_SAMPLES, BLOCK_SECONDS
from domain.chat_window import SUMMARY_QUESTION
from domain.heard_reply import INTERRUPTED_MARK
from domain.listening import Phase
from domain.messages import ChatMessage, FinalTranscript, PartialTranscript, TurnMetrics
from ports.language_model import Cancellation, LanguageModelError
from tests.application.harness import FakeAdapters
from tests.fakes import (
    FakeAudio,
    FakeConsole,
    FakeMetrics,
    FakeTextToSpeech,
    RealClock,
    silence_blocks,
)

TURNS = 240
SEED = 20261122
WATCHDOG_S = 1.0
LATE_S = 1.5 * WATCHDOG_S  # when a hung stage wakes up again, its turn long closed
# A turn's decode may wait for its pause's, both hung: 2 x 0.3 s fails the turn well before the
# watchdog, and 0.3 s is far more than any decode of the fakes takes.
STT_TIMEOUT_S = 0.3
METRICS_FAIL = 0.2  # of the records, lost by the sink that fails at random
TURN_LEVEL = 10_000  # speech and reply audio of turn n are at TURN_LEVEL + n
APOLOGY = FakeTextToSpeech.APOLOGY_LEVEL

FAULTS: dict[str | None, str] = {
    None: "answered",
    "stt error": "failed",
    # The recogniser's own bound abandons the decode before the watchdog would: a stage failed.
    "stt hang": "failed",
    "empty transcript": "empty",
    "llm error before text": "failed",
    "llm error mid-stream": "failed",
    "llm hang": "timed out",
    "tts error": "failed",
    "tts hang": "timed out",
    "user interrupts": "interrupted",  # the next turn's question is spoken over a long reply
}
INTERRUPT_AFTER_BLOCKS = 12  # of the reply played: past the barge-in warm-up


def fault_plan(rng: random.Random) -> list[str | None]:
    kinds = list(FAULTS)
    # Half the turns are healthy; the other half spread over every fault. The turn after an
    # interrupted one is its interruption: a healthy question.
    plan = [None if rng.random() < 0.5 else rng.choice(kinds[1:]) for _ in range(TURNS)]
    plan[-1] = None if plan[-1] == "user interrupts" else plan[-1]
    for n in range(1, TURNS):
        if plan[n - 1] == "user interrupts":
            plan[n] = None
    return plan


def level_block(level: int) -> bytes:
    return level.to_bytes(2, "little", signed=True) * BLOCK_SAMPLES


def turn_of(block: bytes) -> int | None:
    """The turn a block of speech or reply belongs to, from its level."""
    level = int.from_bytes(block[:2], "little", signed=True)
    return level - TURN_LEVEL if level >= TURN_LEVEL else None


class SoakVoiceActivity:
    def speech_probability(self, block: bytes) -> float:
        return 0.95 if turn_of(block) is not None else 0.02

    def reset(self) -> None:
        pass


class SoakSpeechToText:
    def __init__(self, plan: Sequence[str | None], release: threading.Event) -> None:
        self._plan, self._release = plan, release

    def _turn(self, audio: bytes) -> int:
        for offset in range(0, len(audio), 2 * BLOCK_SAMPLES):
            n = turn_of(audio[offset : offset + 2])
            if n is not None:
                return n
        raise AssertionError("no speech in the audio")

    def transcribe_partial(self, audio: bytes) -> PartialTranscript:
        return PartialTranscript("…")

    def transcribe(self, audio: bytes) -> FinalTranscript:
        n = self._turn(audio)
        if self._plan[n] == "stt error":
            raise RuntimeError(f"recogniser crashed on turn {n}")
        if self._plan[n] == "empty transcript":
            return FinalTranscript("", "en")
        if self._plan[n] == "stt hang":
            self._release.wait(LATE_S)  # answers after its turn was closed: nobody may listen
        return FinalTranscript(f"question {n}", "en")


class SoakLanguageModel:
    def __init__(self, plan: Sequence[str | None], release: threading.Event) -> None:
        self._plan, self._release = plan, release
        self.primes = 0

    def stream(
        self, messages: Sequence[ChatMessage], cancel: Cancellation, *, background: bool = False
    ) -> Iterator[str]:
        match = re.fullmatch(r"question (\d+)", messages[-1].content)
        if match is None:  # a summary for compaction
            yield "We talked."
            return
        n = int(match.group(1))
        fault = self._plan[n]
        if fault == "llm error before text":
            raise LanguageModelError("HTTP 500")
        if fault == "llm hang":
            # A provider that neither answers in time nor honours cancellation.
            self._release.wait(LATE_S)
        for i, word in enumerate(f"Answer {n}. It is fine. Really.".split(" ")):
            if fault == "llm error mid-stream" and i == 3:
                raise LanguageModelError("connection lost mid-stream")
            if cancel.is_set() and fault != "llm hang":
                return
            yield word if i == 0 else " " + word

    def complete(self, messages: Sequence[ChatMessage]) -> str:
        return "".join(self.stream(messages, threading.Event()))

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        # Reading ahead fails every other time: no turn may notice.
        self.primes += 1
        if self.primes % 2:
            raise LanguageModelError("HTTP 503")


class SoakTextToSpeech:
    def __init__(self, plan: Sequence[str | None], release: threading.Event) -> None:
        self._plan, self._release = plan, release
        self._turn = 0

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        if text.startswith("Sorry"):
            yield level_block(APOLOGY) * 3
            return
        match = re.match(r"Answer (\d+)", text)
        self._turn = n = int(match.group(1)) if match else self._turn
        fault = self._plan[n]
        if fault == "tts error" and match is None:
            raise RuntimeError("voice model crashed")
        yield level_block(TURN_LEVEL + n)[:700]
        if fault == "tts hang" and match is None:
            self._release.wait(LATE_S)  # stuck; wakes up after its turn was closed
        # A long reply to talk over: 20 blocks a sentence.
        yield level_block(TURN_LEVEL + n) * (20 if fault == "user interrupts" else 1)


class FullDiskAtRandom:
    """A metrics file on a disk that is full now and then (seeded)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.failures = 0

    def record(self, metrics: TurnMetrics) -> None:
        if self._rng.random() < METRICS_FAIL:
            self.failures += 1
            raise OSError(errno.ENOSPC, "No space left on device")


class JournalMetrics(FakeMetrics):
    """Notes each turn's close in the journal the fake audio writes its queue and output to."""

    def __init__(self, journal: list[tuple[str, object]]) -> None:
        super().__init__()
        self._journal = journal

    def record(self, metrics: TurnMetrics) -> None:
        super().record(metrics)
        self._journal.append(("closed", metrics))


def check_invariants(
    journal: list[tuple[str, object]], metrics: FakeMetrics, history: list[ChatMessage],
    plan: Sequence[str | None], turns_done: int,
) -> None:  # fmt: skip
    records = metrics.records
    assert len(records) == turns_done, f"{turns_done} turns ended, {len(records)} records"
    assert len({r.turn_id for r in records}) == len(records), "a turn closed twice"
    for record in records:
        n = turn_number(record)
        expected = FAULTS[plan[n]]
        assert record.outcome == expected, f"turn {n} ({plan[n]}): {record.outcome}"
    roles = [m.role for m in history]
    assert roles == ["user", "assistant"] * (len(history) // 2), "history does not alternate"
    # Each exchange kept is a question and its own whole answer, or the words of it played before
    # the user interrupted, marked (or the summary of older ones).
    for user, assistant in zip(history[::2], history[1::2], strict=True):
        if user.content != SUMMARY_QUESTION:
            answer = f"Answer {user.content.split()[-1]}. It is fine. Really."
            heard = assistant.content.removesuffix(INTERRUPTED_MARK).strip()
            cut = assistant.content.endswith(INTERRUPTED_MARK) and answer.startswith(heard)
            assert assistant.content == answer or cut, (user, assistant)
    kept = [r for r in records if r.outcome in ("answered", "interrupted")]
    if kept:
        assert history[-2].content == kept[-1].user_text
    closed: set[int] = set()
    apologies_due = apology_blocks = 0
    for what, item in journal:
        if what == "closed" and isinstance(item, TurnMetrics):
            closed.add(turn_number(item))
            apologies_due += item.outcome in ("failed", "timed out")
        elif what in ("queued", "played") and isinstance(item, bytes):
            of = turn_of(item)
            assert of is None or of not in closed, f"audio of turn {of} {what} after its close"
            apology_blocks += what == "queued" and item[:2] == level_block(APOLOGY)[:2]
    assert apology_blocks == 3 * apologies_due, f"{apologies_due} faults, {apology_blocks} blocks"


def turn_number(record: TurnMetrics) -> int:
    """The scripted turn a record is about (turn ids count from 1, the script from 0)."""
    return int(record.user_text.split()[-1]) if record.user_text else record.turn_id - 1


def test_hundreds_of_faulty_turns_keep_every_invariant() -> None:
    from composition.config import resolve
    from composition.containers import build_agent

    rng = random.Random(SEED)
    plan = fault_plan(rng)
    release = threading.Event()
    journal: list[tuple[str, object]] = []
    metrics = JournalMetrics(journal)
    conversation_ref: list[Conversation] = []
    turns_done = [0]
    violations: list[str] = []

    def between_turns(n: int) -> Callable[[], bool]:
        def ready() -> bool:
            conversation = conversation_ref[0]
            if len(metrics.records) < n or conversation.phase is not Phase.LISTENING:
                return False
            turns_done[0] = n
            try:
                check_invariants(journal, metrics, conversation.history, plan, n)
            except AssertionError as violation:
                violations.append(f"after turn {n}: {violation}")
                raise
            return True

        return ready

    def reply_playing(n: int) -> Callable[[], bool]:
        return lambda: sum(turn_of(b) == n for b in audio.played) >= INTERRUPT_AFTER_BLOCKS

    def speech(n: int) -> list[bytes]:
        return [level_block(TURN_LEVEL + n)] * round(0.5 / BLOCK_SECONDS)

    script: list[bytes | Callable[[], bool]] = []
    for n in range(TURNS):
        if n and plan[n - 1] == "user interrupts":
            continue  # spoken over the reply to turn n - 1
        script += [*silence_blocks(0.2), *speech(n)]
        last = n
        if plan[n] == "user interrupts":
            script += [*silence_blocks(0.5), reply_playing(n), *speech(n + 1)]
            last = n + 1
        script += [*silence_blocks(0.7), between_turns(last + 1)]
    drops = random.Random(SEED + 1)
    audio = FakeAudio(script, journal=journal, drop=lambda: drops.random() < 0.02)
    llm = SoakLanguageModel(plan, release)
    full_disk = FullDiskAtRandom(random.Random(SEED + 2))
    fakes = {
        "audio": audio, "vad": SoakVoiceActivity(), "stt": SoakSpeechToText(plan, release),
        "llm": llm, "tts": SoakTextToSpeech(plan, release),
        "console": FakeConsole(), "clock": RealClock(),
        "metrics": FanOut([full_disk, metrics]), "end_of_turn": None,
    }  # fmt: skip
    adapters = FakeAdapters(**{name: providers.Object(fake) for name, fake in fakes.items()})
    argv = ["--watchdog_s", str(WATCHDOG_S), "--stream_batch_sentences", "1",
            "--chat_size", "4", "--llm_timeout_s", "0.2",
            "--stt_timeout_s", str(STT_TIMEOUT_S)]  # fmt: skip
    agent = build_agent(resolve(argv, environ={}), adapters=adapters)
    conversation = agent.conversation()
    conversation_ref.append(conversation)
    started = time.monotonic()
    conversation.start()
    try:
        finished = conversation.wait(TURNS * (WATCHDOG_S + 1.0))
    finally:
        conversation.stop()
        release.set()
    assert not violations, violations[0]
    assert not conversation.crashed, conversation.fault
    assert finished and turns_done[0] == TURNS, f"stuck after {turns_done[0]} turns"
    check_invariants(journal, metrics, conversation.history, plan, TURNS)
    assert llm.primes > TURNS // 2  # read ahead after turns and while the user spoke, half failing
    assert full_disk.failures > TURNS // 10  # and every turn was recorded all the same
    outcomes = Counter(r.outcome for r in metrics.records)
    print(
        f"\nsoak: {TURNS} turns in {time.monotonic() - started:.1f} s, "
        f"faults injected: {sum(f is not None for f in plan)} "
        f"({dict(Counter(f for f in plan if f))}), metrics records lost by one sink: "
        f"{full_disk.failures}, outcomes: {dict(outcomes)}, "
        "invariant violations: 0"
    )
