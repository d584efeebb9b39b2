"""End-of-turn benchmark: how often a policy cuts the speaker off, how long it makes a speaker
who has finished wait, and when the reply can start.

    python -m benchmarks.end_of_turn [--cuts 3] [--seed 12] [--reply_ms 450]

Two sets of utterances:

- read prose and a dialogue: the real recordings in the `moonshine-voice` wheel (the Endgame
  recording is a dialogue of two voices, the others one reader), split into sentences by
  faster-whisper's word timestamps (`tests/adapters/turn_samples.py`);
- said to an assistant: questions, answers and requests in espeak-ng's voices, none of them the
  agent's (`benchmarks/conversational_turns.py`).

Each comes complete (as recorded, natural pauses at its commas included) and paused: with a
pause of 0.6-1.5 s (seeded) after a word that leaves it unfinished, as someone thinking
mid-sentence (prose: up to --cuts places per sentence, never after a comma; said to an
assistant: after "the", "and", "um", ...). Each is played as 0.5 s of faint noise, the speech,
then 2.5 s of the same noise, in 512-sample blocks on the audio clock (no real-time waiting),
through Silero VAD and the application's own listening stage (`application.hearing.Hearing`:
the domain segmenter, for smart-turn the real model asked synchronously). At each speculative
pause the real recogniser (faster-whisper tiny.en, greedy, as the agent) transcribes the speech
so far, and its transcript reaches the listening stage as many blocks later as the decode took.
Reported per policy:

- cut off: utterances whose turn ended while the speaker had more to say: Silero heard speech
  after the turn's end and before the end of the last word (word timestamps alone are tens of
  ms off); the user was interrupted;
- <= 300 ms: complete utterances whose turn ended within 300 ms of the end of speech (the
  VAD's, `TurnEnded.speech_end_s`);
- wait: from that end of speech to the turn's end, over utterances not cut off (mean, p90);
- reply ready: of the complete utterances not cut off, how often a reply asked for at the
  transcript of the pause the turn ended in would have its first audio by the turn's end,
  taking --reply_ms for it (the first batch and the first synthesised chunk, medians of
  `benchmarks.voice_to_voice --person`); reply at: when that audio is ready, from the end of
  speech (mean, p90): what an earlier end of turn saves at the speaker.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import statistics
import time
from collections.abc import Sequence

import attrs
import numpy as np

from adapters.faster_whisper_stt import FasterWhisperSpeechToText
from adapters.silero_vad import SileroVad
from adapters.smart_turn import SmartTurn
from application.hearing import Hearing
from benchmarks import conversational_turns
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, BYTES_PER_SAMPLE, SAMPLE_RATE, MicBlock
from domain.end_of_turn import ModelTurnConfig, TranscriptTurnConfig
from domain.messages import FinalTranscript
from domain.turn_segmentation import (
    SpeechPaused,
    SpeechResumed,
    TurnEnded,
    TurnEvent,
    VadConfig,
)
from tests.adapters.turn_samples import Sentence, sentences

LEAD_S, TAIL_S = 0.5, 2.5
PAUSE_RANGE_S = (0.6, 1.5)
NOISE_RMS = 8  # int16 units, about -72 dBFS: a quiet room, not digital silence
QUICK_S = 0.3
WORD_END_MARGIN_S = 0.15  # turn_samples.py's margin after a sentence's last word
PROSE, SPOKEN_TO = "read prose and a dialogue", "said to an assistant"


@attrs.frozen
class Utterance:
    kind: str  # "complete" or "paused"
    source: str  # PROSE or SPOKEN_TO
    text: str
    pcm: bytes
    last_word_end_s: float  # on the utterance's own clock


@attrs.frozen
class Outcome:
    cut_off: bool
    wait_s: float | None  # None when no turn ended after the last word
    reply_s: float | None  # when the reply's first audio is ready, from the end of speech


def noise(seconds: float, rng: np.random.Generator) -> bytes:
    samples = rng.normal(0, NOISE_RMS, round(seconds * SAMPLE_RATE))
    return samples.astype("<i2").tobytes()


def utterances(cuts: int, seed: int) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    choose = random.Random(seed)
    out: list[Utterance] = []
    for sentence in sentences():
        out.append(_prose("complete", sentence, sentence.pcm(), 0.0, rng))
        inner = sentence.inner_cuts()
        for cut_s in sorted(choose.sample(inner, min(cuts, len(inner)))):
            pause_s = choose.uniform(*PAUSE_RANGE_S)
            pcm = sentence.pcm(end_s=cut_s) + noise(pause_s, rng) + sentence.pcm(start_s=cut_s)
            out.append(_prose("paused", sentence, pcm, pause_s, rng))
    spoken = conversational_turns.whole() + conversational_turns.paused(seed)
    for said in spoken:
        pcm = noise(said.pause_s, rng).join(said.parts)
        kind = "paused" if said.pause_s else "complete"
        out.append(_framed(kind, SPOKEN_TO, said.text, pcm, _seconds(pcm), rng))
    return out


def _seconds(pcm: bytes) -> float:
    return len(pcm) / BYTES_PER_SAMPLE / SAMPLE_RATE


def _prose(
    kind: str, sentence: Sentence, pcm: bytes, pause_s: float, rng: np.random.Generator
) -> Utterance:
    last = sentence.words[-1].end_s - sentence.start_s + pause_s
    return _framed(kind, PROSE, sentence.text, pcm, last, rng)


def _framed(
    kind: str, source: str, text: str, pcm: bytes, last_s: float, rng: np.random.Generator
) -> Utterance:
    whole = noise(LEAD_S, rng) + pcm + noise(TAIL_S, rng)
    whole = whole[: len(whole) - len(whole) % BLOCK_BYTES]
    return Utterance(kind, source, text, whole, LEAD_S + last_s)


class Replayed:
    """`VoiceActivity` replaying probabilities Silero computed once per utterance."""

    def __init__(self, probabilities: Sequence[float]) -> None:
        self._probabilities = iter(probabilities)

    def speech_probability(self, block: bytes) -> float:
        return next(self._probabilities)

    def reset(self) -> None:  # never called: the benchmark always listens
        raise AssertionError("unexpected VAD reset")

    def warm_up(self) -> None:  # the probabilities were computed beforehand
        pass


def _key(audio: bytes) -> bytes:
    return hashlib.blake2b(audio, digest_size=16).digest()


class CachedModel:
    """smart-turn, each distinct audio judged once across policies; times each real call."""

    def __init__(self) -> None:
        self._model = SmartTurn()
        self._model.warm_up()
        self._seen: dict[bytes, float] = {}
        self.call_ms: list[float] = []

    def complete_probability(self, audio: bytes) -> float:
        key = _key(audio)
        if key not in self._seen:
            started = time.perf_counter()
            self._seen[key] = self._model.complete_probability(audio)
            self.call_ms.append((time.perf_counter() - started) * 1000)
        return self._seen[key]


class CachedEar:
    """The agent's recogniser, each distinct pause transcribed once; with how long it took."""

    def __init__(self) -> None:
        self._stt = FasterWhisperSpeechToText()
        self._stt.warm_up()
        self._seen: dict[bytes, tuple[FinalTranscript, float]] = {}

    def transcribe(self, audio: bytes) -> tuple[FinalTranscript, float]:
        key = _key(audio)
        if key not in self._seen:
            started = time.perf_counter()
            transcript = self._stt.transcribe(audio)
            self._seen[key] = (transcript, time.perf_counter() - started)
        return self._seen[key]

    @property
    def decode_ms(self) -> list[float]:
        return [seconds * 1000 for _, seconds in self._seen.values()]


def probabilities(pcm: bytes) -> list[float]:
    vad = SileroVad()
    blocks = range(0, len(pcm), BLOCK_BYTES)
    return [vad.speech_probability(pcm[i : i + BLOCK_BYTES]) for i in blocks]


@attrs.define
class _Pause:
    """The transcript of the latest pause: when it reaches the listening stage (block index)."""

    transcript: FinalTranscript
    arrives: int
    delivered: bool = False


def play(
    utterance: Utterance,
    vad_probs: list[float],
    config: VadConfig,
    model: CachedModel | None,
    ear: CachedEar,
    reply_s: float,
) -> tuple[Outcome, int]:
    """The outcome, and how many questions the model was asked."""
    counting = _Counting(model) if model else None
    hearing = Hearing(Replayed(vad_probs), config, counting)
    ends: list[tuple[float, TurnEnded, _Pause | None]] = []
    pause: _Pause | None = None
    for n in range(len(vad_probs)):
        heard: list[tuple[float, TurnEvent]] = []
        if pause is not None and not pause.delivered and pause.arrives == n:
            pause.delivered = True
            text = pause.transcript
            heard += [(n * BLOCK_SECONDS, e) for e in hearing.transcribed(text.text, text.language)]
        block = MicBlock(utterance.pcm[n * BLOCK_BYTES : (n + 1) * BLOCK_BYTES], n * BLOCK_SECONDS)
        heard += [
            ((n + 1) * BLOCK_SECONDS, e) for e in hearing.hear(block, should_listen=True).events
        ]
        for at_s, event in heard:
            if isinstance(event, SpeechPaused):
                transcript, decode_s = ear.transcribe(event.audio)
                pause = _Pause(transcript, n + 1 + math.ceil(decode_s / BLOCK_SECONDS))
            elif isinstance(event, SpeechResumed):
                pause = None
            elif isinstance(event, TurnEnded):
                ends.append((at_s, event, pause if event.after_pause else None))
                pause = None
    cut = [_spoke_after(utterance, vad_probs, config.thresh, decided) for decided, _, _ in ends]
    cut_off = any(cut)
    final = [end for end, was_cut in zip(ends, cut, strict=True) if not was_cut]
    if not final:
        return Outcome(cut_off, None, None), counting.calls if counting else 0
    decided, ended, its_pause = final[0]
    # Without the pause's transcript the turn's own decode starts at its end.
    asked_s = its_pause.arrives * BLOCK_SECONDS if its_pause else decided + _decode_s(ear, ended)
    ready_s = max(decided, asked_s + reply_s)
    outcome = Outcome(cut_off, decided - ended.speech_end_s, ready_s - ended.speech_end_s)
    return outcome, counting.calls if counting else 0


def _spoke_after(
    utterance: Utterance, vad_probs: list[float], thresh: float, decided_s: float
) -> bool:
    """Whether the speaker still said something after the turn ended: Silero hears speech in
    two blocks or more between then and the end of the last word. (Word timestamps alone are
    tens of ms off, and at times 200 ms late on a last word that fades.)"""
    first = math.ceil(decided_s / BLOCK_SECONDS)
    last = int((utterance.last_word_end_s + WORD_END_MARGIN_S) / BLOCK_SECONDS)
    return sum(p >= thresh for p in vad_probs[first:last]) >= 2


def _decode_s(ear: CachedEar, ended: TurnEnded) -> float:
    return ear.transcribe(ended.audio)[1]


class _Counting:
    def __init__(self, model: CachedModel) -> None:
        self._model = model
        self.calls = 0

    def complete_probability(self, audio: bytes) -> float:
        self.calls += 1
        return self._model.complete_probability(audio)

    def warm_up(self) -> None:  # the cached model warmed up when it loaded
        pass


def policies() -> dict[str, VadConfig]:
    """The default, silence alone, the smart-turn model alone, and variants of the
    transcript's judgement that show the trade-offs."""
    smart = ModelTurnConfig()  # asks at 200 ms, again every 300 ms, gives up at 1800 ms
    once = attrs.evolve(smart, ask_every_ms=smart.max_silence_ms)
    words = TranscriptTurnConfig()

    def by_words(judged: TranscriptTurnConfig) -> tuple[str, VadConfig]:
        name = f"transcript {judged.question_ms:g} / {judged.statement_ms:g} / "
        name += f"{judged.incomplete_ms:g} ms" + (" + smart-turn" if judged.ask_audio else "")
        return name, VadConfig(partial_interval_ms=0, transcript_turn=judged)

    default_name, default = by_words(words)
    configs = {f"{default_name} (default)": default}
    for ms in (500, 300, 700):
        configs[f"silence {ms} ms"] = VadConfig(partial_interval_ms=0, min_silence_ms=ms)
    configs |= {
        "smart-turn 200 ms, every 300, max 1800": VadConfig(
            partial_interval_ms=0, model_turn=smart
        ),
        "smart-turn 200 ms once, p > 0.9": VadConfig(
            partial_interval_ms=0, model_turn=attrs.evolve(once, complete_above=0.9)
        ),
    }
    configs |= dict(
        by_words(attrs.evolve(words, **changes))
        for changes in (
            {"ask_audio": True},
            {"statement_ms": 350},
            {"statement_ms": 200},
            {"statement_ms": 200, "ask_audio": True},
            {"incomplete_ms": 1000},
            {"incomplete_ms": 2000},
        )
    )
    return configs


def _share(flags: list[bool]) -> str:
    return f"{100 * sum(flags) / len(flags):5.1f} %" if flags else "   -  "


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


HEADER = (
    f"{'policy':40} {'cut off: complete':>17} {'paused':>8} {'all':>8} {'<= 300 ms':>10} "
    f"{'wait: mean':>10} {'p90':>6} {'reply ready':>11} {'reply at':>8} {'p90':>6} {'asks':>5}"
)


def row(name: str, cases: list[Utterance], results: list[tuple[Outcome, int]]) -> str:
    outcomes = [outcome for outcome, _ in results]
    complete = [o for u, o in zip(cases, outcomes, strict=True) if u.kind == "complete"]
    paused = [o for u, o in zip(cases, outcomes, strict=True) if u.kind == "paused"]
    kept = [o for o in outcomes if not o.cut_off and o.wait_s is not None]
    waits = [1000 * o.wait_s for o in kept if o.wait_s is not None]
    # The reply over complete utterances only: a paused one a policy waited out (and another
    # cut off) would make the policies' means of different utterances.
    answered = [o for o in complete if not o.cut_off and o.reply_s is not None]
    replies = [1000 * o.reply_s for o in answered if o.reply_s is not None]
    ready = [o.reply_s is not None and o.reply_s <= (o.wait_s or 0) for o in answered]
    quick = [not o.cut_off and o.wait_s is not None and o.wait_s <= QUICK_S for o in complete]
    asks = statistics.mean(asked for _, asked in results)
    return (
        f"{name:40} {_share([o.cut_off for o in complete]):>17} "
        f"{_share([o.cut_off for o in paused]):>8} {_share([o.cut_off for o in outcomes]):>8} "
        f"{_share(quick):>10} {statistics.mean(waits):7.0f} ms {_p90(waits):6.0f} "
        f"{_share(ready):>11} {statistics.mean(replies):5.0f} ms {_p90(replies):6.0f} "
        f"{asks:5.1f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cuts", type=int, default=3, help="paused variants per prose sentence")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--reply_ms", type=float, default=450.0,
        help="from the pause's transcript to the reply's first audio",
    )  # fmt: skip
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cases = utterances(args.cuts, args.seed)
    vad_probs = [probabilities(u.pcm) for u in cases]
    model, ear = CachedModel(), CachedEar()
    seconds = sum(_seconds(u.pcm) for u in cases)
    results = {
        name: [
            play(u, p, config, model if _asks(config) else None, ear, args.reply_ms / 1000)
            for u, p in zip(cases, vad_probs, strict=True)
        ]
        for name, config in policies().items()
    }
    for source in (PROSE, SPOKEN_TO, None):
        chosen = [n for n, u in enumerate(cases) if source in (None, u.source)]
        complete = sum(cases[n].kind == "complete" for n in chosen)
        print(
            f"\n{source or 'all'}: {complete} complete and {len(chosen) - complete} paused "
            "utterances\n"
        )
        print(HEADER)
        print("-" * len(HEADER))
        for name, outcomes in results.items():
            print(row(name, [cases[n] for n in chosen], [outcomes[n] for n in chosen]))
    decodes = ear.decode_ms
    print(
        f"\nrecogniser at the pauses: {len(decodes)} distinct decodes, median "
        f"{statistics.median(decodes):.0f} ms, p90 {_p90(decodes):.0f} ms"
    )
    if model.call_ms:
        calls = model.call_ms
        print(
            f"smart-turn: {len(calls)} distinct calls, median {statistics.median(calls):.0f} ms, "
            f"p90 {_p90(calls):.0f} ms (onnxruntime, one thread)"
        )
    print(f"{seconds:.0f} s of audio, took {time.perf_counter() - started:.0f} s")


def _asks(config: VadConfig) -> bool:
    judged = config.transcript_turn
    return config.model_turn is not None or (judged is not None and judged.ask_audio)


if __name__ == "__main__":
    main()
