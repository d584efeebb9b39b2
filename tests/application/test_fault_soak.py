"""Hundreds of turns through the real containers, with fakes that fail at random (seeded), and the
turn invariants checked after every turn:

- every turn closes exactly once, with the outcome its fault calls for, and one metrics record;
- listening re-opens (the next turn is heard at all);
- the history alternates user / assistant and holds exactly the answered exchanges;
- nothing of a turn is queued or played after its close, and a fault is apologised for aloud;
- a user speaking over a long reply (barge-in) cuts it: the history keeps the words played of it,
  marked, and their speech is the next turn;
- every request the model gets fits its token budget, and history summaries land, though each
  takes real time and ignores a cancellation until its first token (as a local server does
  while it reads the prompt), and replies cancel them.

Metrics go through the adapters' FanOut, as in the agent: a sink that fails at random (a disk
full now and then) beside the journal that records every turn for the checks.
"""

from __future__ import annotations

import errno
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from dependency_injector import providers

from adapters.metrics_sinks import FanOut
from application.conversation import Conversation
from application.settings import DEFAULT_APOLOGY
from domain.audio import BLOCK_SAMPLES
from domain.chat_window import MESSAGE_OVERHEAD_TOKENS
from domain.heard_reply import INTERRUPTED_MARK
from domain.listening import Phase
from domain.messages import ChatMessage, TurnMetrics
from domain.notes import INTRO as NOTES_INTRO
from ports.language_model import LanguageModelError
from tests.application.harness import FakeAdapters
from tests.fakes import (
    Failing,
    FakeAudio,
    FakeConsole,
    FakeLanguageModel,
    FakeMetrics,
    FakeSpeechToText,
    FakeTextToSpeech,
    FakeVoiceActivity,
    Hanging,
    RealClock,
    Reply,
    block_level,
    reply_code,
    silence_blocks,
    speech,
)

TURNS = 240  # numbered from 1, as turn ids are; turn n is utterance n, its reply is tagged n
SEED = 20261122
WATCHDOG_S = 1.0
LATE_S = 1.5 * WATCHDOG_S  # when a hung stage wakes up again, its turn long closed
# A turn's decode may wait for its pause's, both hung: 2 x 0.3 s fails the turn well before the
# watchdog, and 0.3 s is far more than any decode of the fakes takes.
STT_TIMEOUT_S = 0.3
METRICS_FAIL = 0.2  # of the records, lost by the sink that fails at random
# The model reads at most this many tokens a request (a token a word, as the fake counts): the
# system prompt and a handful of exchanges. A summary takes this long before its first word,
# deaf to cancellation meanwhile.
PROMPT_BUDGET = 512
SUMMARY_S = 0.05
# The fake microphone runs as fast as the agent reads it; a person takes a moment between
# hearing the reply and asking again, in which a summary can land.
THINK_S = 0.1
# 20 ms of speech a word: the watchdog waits for what a hung reply queued to play out.
WORD_SAMPLES = 320
APOLOGY = FakeTextToSpeech.APOLOGY_LEVEL
# The apology is synthesised once, at start-up, and queued whole for every fault.
APOLOGY_BLOCKS = math.ceil(WORD_SAMPLES * len(DEFAULT_APOLOGY.split()) / BLOCK_SAMPLES)

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


def fault_plan(rng: random.Random) -> dict[int, str | None]:
    kinds = list(FAULTS)
    # Half the turns are healthy; the other half spread over every fault. The turn after an
    # interrupted one is its interruption: a healthy question.
    plan = {n: None if rng.random() < 0.5 else rng.choice(kinds[1:]) for n in range(1, TURNS + 1)}
    plan[TURNS] = None if plan[TURNS] == "user interrupts" else plan[TURNS]
    for n in range(2, TURNS + 1):
        if plan[n - 1] == "user interrupts":
            plan[n] = None
    return plan


def answer(n: int, fault: str | None) -> str:
    """The reply to turn n; one to talk over is long (two seconds), though never the same
    sentence twice (the agent cuts a reply that loops)."""
    points = " ".join(f"Point {k} is fine." for k in range(24 if fault == "user interrupts" else 1))
    return f"Answer {n}. {points} Really."


def language_model(plan: Mapping[int, str | None], release: threading.Event) -> FakeLanguageModel:
    """One generation at a time, like transformers: a reply cancels a summary. Reading ahead
    fails every other time: no turn may notice."""

    def reply(request: list[ChatMessage]) -> Reply:
        asked = re.fullmatch(r"question (\d+)", request[-1].content)
        assert asked is not None, request[-1]
        n = int(asked.group(1))
        text = answer(n, plan[n])
        match plan[n]:
            case "llm error before text":
                return LanguageModelError("HTTP 500")
            case "llm error mid-stream":
                return Failing(text, after_words=3)
            case "llm hang":  # a provider that neither answers in time nor honours cancellation
                return Hanging(release, LATE_S, text)
        return text

    return FakeLanguageModel(
        reply, summary=summarise, summary_s=SUMMARY_S, prompt_budget=PROMPT_BUDGET, flaky_prime=True
    )


def summarise(request: list[ChatMessage]) -> str:
    """Notes that merge the earlier ones: "Questions A to B, K of them.", over every question of
    the exchanges they cover."""
    text = request[-1].content
    numbers = [int(n) for n in re.findall(r"User: question (\d+)", text)]
    earlier = re.search(r"Questions (\d+) to (\d+), (\d+) of them", text)  # the summary
    if earlier is not None:
        first, last, count = (int(n) for n in earlier.groups())
        numbers, count = [first, last, *numbers], count + len(numbers)
    else:
        count = len(numbers)
    return f"Questions {min(numbers)} to {max(numbers)}, {count} of them."


def tokens(request: Sequence[ChatMessage]) -> int:
    """A request's size as the fake model counts it: a token a word, and each message's overhead."""
    return sum(len(m.content.split()) + MESSAGE_OVERHEAD_TOKENS for m in request)


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
    plan: Mapping[int, str | None], turns_done: int,
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
        if not user.content.startswith(NOTES_INTRO):
            n = int(user.content.split()[-1])
            whole = answer(n, plan[n])
            heard = assistant.content.removesuffix(INTERRUPTED_MARK).strip()
            cut = assistant.content.endswith(INTERRUPTED_MARK) and whole.startswith(heard)
            assert assistant.content == whole or cut, (user, assistant)
    kept = [r for r in records if r.outcome in ("answered", "interrupted")]
    questions = [m.content for m in history[::2] if not m.content.startswith(NOTES_INTRO)]
    if kept:
        assert questions[-1] == kept[-1].user_text
    closed: set[int] = set()
    apologies_due = apology_blocks = 0
    for what, item in journal:
        if what == "closed" and isinstance(item, TurnMetrics):
            closed.add(turn_number(item))
            apologies_due += item.outcome in ("failed", "timed out")
        elif what in ("queued", "played") and isinstance(item, bytes):
            of = reply_code(item)
            assert of is None or of not in closed, f"audio of turn {of} {what} after its close"
            apology_blocks += what == "queued" and block_level(item) == APOLOGY
    assert apology_blocks == APOLOGY_BLOCKS * apologies_due, (
        f"{apologies_due} faults, {apology_blocks} blocks"
    )


def turn_number(record: TurnMetrics) -> int:
    """The scripted turn a record is about."""
    return int(record.user_text.split()[-1]) if record.user_text else record.turn_id


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
                check_invariants(journal, metrics, conversation.memory.history, plan, n)
            except AssertionError as violation:
                violations.append(f"after turn {n}: {violation}")
                raise
            return True

        return ready

    def thinking() -> Callable[[], bool]:
        since: list[float] = []

        def done() -> bool:
            since.append(since[0] if since else time.monotonic())
            return time.monotonic() - since[0] >= THINK_S

        return done

    def reply_playing(n: int) -> Callable[[], bool]:
        return lambda: sum(reply_code(b) == n for b in audio.played) >= INTERRUPT_AFTER_BLOCKS

    script: list[bytes | Callable[[], bool]] = []
    for n in range(1, TURNS + 1):
        if plan.get(n - 1) == "user interrupts":
            continue  # spoken over the reply to turn n - 1
        script += [*silence_blocks(0.2), *speech(n, 0.5)]
        last = n
        if plan[n] == "user interrupts":
            script += [*silence_blocks(0.5), reply_playing(n), *speech(n + 1, 0.5)]
            last = n + 1
        script += [*silence_blocks(0.7), between_turns(last), thinking()]
    drops = random.Random(SEED + 1)
    audio = FakeAudio(script, journal=journal, drop=lambda: drops.random() < 0.02)

    def turns(fault: str) -> set[int]:
        return {n for n, planned in plan.items() if planned == fault}

    late = Hanging(release, LATE_S)  # a hung stage wakes up after its turn was closed
    stt = FakeSpeechToText({n: f"question {n}" for n, f in plan.items() if f != "empty transcript"})
    stt.fail_on, stt.hang_on = turns("stt error"), dict.fromkeys(turns("stt hang"), late)
    tts = FakeTextToSpeech(reply_to=r"Answer (\d+)", samples_per_word=WORD_SAMPLES)
    tts.fail_on, tts.hang_on = turns("tts error"), dict.fromkeys(turns("tts hang"), late)
    llm = language_model(plan, release)
    full_disk = FullDiskAtRandom(random.Random(SEED + 2))
    fakes = {
        "audio": audio, "vad": FakeVoiceActivity(), "stt": stt, "llm": llm, "tts": tts,
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
    check_invariants(journal, metrics, conversation.memory.history, plan, TURNS)
    assert len(llm.primed) > TURNS // 2  # read ahead after turns and while the user spoke
    assert all(tokens(request) <= PROMPT_BUDGET for request in llm.requests)
    # Summaries landed, though replies cancelled some, and no exchange was lost: the summary
    # covers every one kept that has left the history, from the first, and the user's own words
    # of the latest ones are in the notes.
    assert conversation.memory.summaries > TURNS // 20 and llm.cancelled_compactions > 0
    notes = conversation.memory.notes
    summary = re.search(r"Questions (\d+) to (\d+), (\d+) of them", notes.summary)
    assert summary is not None, notes
    first, last, count = (int(n) for n in summary.groups())
    in_history = {m.content for m in conversation.memory.history}
    kept = [turn_number(r) for r in metrics.records if r.outcome in ("answered", "interrupted")]
    left = [n for n in kept if f"question {n}" not in in_history]
    assert (first, last, count) == (kept[0], max(left), len(left))
    assert notes.said and notes.said[-1] == f"question {max(left)}"
    outcomes = Counter(r.outcome for r in metrics.records)
    print(
        f"\nsoak: {TURNS} turns in {time.monotonic() - started:.1f} s, "
        f"faults injected: {sum(f is not None for f in plan.values())} "
        f"({dict(Counter(f for f in plan.values() if f))}), metrics records lost by one sink: "
        f"{full_disk.failures}, outcomes: {dict(outcomes)}, summaries landed: "
        f"{conversation.memory.summaries} ({llm.cancelled_compactions} cancelled), "
        "invariant violations: 0"
    )
