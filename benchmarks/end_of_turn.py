"""End-of-turn benchmark: how often a policy cuts the speaker off, and how long it makes a
speaker who has finished wait.

    python -m benchmarks.end_of_turn [--cuts 3] [--seed 12]

Utterances come from the real recordings in the `moonshine-voice` wheel, split into sentences
by faster-whisper's word timestamps (`tests/adapters/turn_samples.py`; the Endgame recording is
a dialogue of two voices, the others one reader):

- complete: every sentence as recorded, natural pauses at its commas included;
- paused: each sentence with a pause of 0.6-1.5 s (seeded) inserted after a word in its middle
  (up to --cuts places per sentence, never after a comma), as someone thinking mid-sentence.

Each is played as 0.5 s of faint noise, the speech, then 2.5 s of the same noise, in 512-sample
blocks on the audio clock (no real-time waiting), through Silero VAD and the application's own
listening stage (`application.hearing.Hearing`: the domain segmenter, and for smart-turn the
real model asked synchronously). Reported per policy:

- cut off: utterances whose turn ended before their last word (for paused ones, nearly always
  in the inserted pause); the user would have been interrupted;
- <= 300 ms: complete utterances whose turn ended within 300 ms of the end of speech (the
  VAD's, `TurnEnded.speech_end_s`);
- mean wait: from that end of speech to the turn's end, over utterances not cut off.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Sequence

import attrs
import numpy as np

from adapters.silero_vad import SileroVad
from adapters.smart_turn import SmartTurn
from application.hearing import Hearing
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, BYTES_PER_SAMPLE, SAMPLE_RATE, MicBlock
from domain.end_of_turn import ModelTurnConfig
from domain.turn_segmentation import TurnEnded, VadConfig
from tests.adapters.turn_samples import Sentence, sentences

LEAD_S, TAIL_S = 0.5, 2.5
PAUSE_RANGE_S = (0.6, 1.5)
NOISE_RMS = 8  # int16 units, about -72 dBFS: a quiet room, not digital silence
QUICK_S = 0.3


@attrs.frozen
class Utterance:
    kind: str  # "complete" or "paused"
    text: str
    pcm: bytes
    last_word_end_s: float  # on the utterance's own clock


@attrs.frozen
class Outcome:
    cut_off: bool
    wait_s: float | None  # None when no turn ended after the last word


def noise(seconds: float, rng: np.random.Generator) -> bytes:
    samples = rng.normal(0, NOISE_RMS, round(seconds * SAMPLE_RATE))
    return samples.astype("<i2").tobytes()


def utterances(cuts: int, seed: int) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    choose = random.Random(seed)
    out: list[Utterance] = []
    for sentence in sentences():
        out.append(_framed("complete", sentence, sentence.pcm(), 0.0, rng))
        inner = sentence.inner_cuts()
        for cut_s in sorted(choose.sample(inner, min(cuts, len(inner)))):
            pause_s = choose.uniform(*PAUSE_RANGE_S)
            pcm = sentence.pcm(end_s=cut_s) + noise(pause_s, rng) + sentence.pcm(start_s=cut_s)
            out.append(_framed("paused", sentence, pcm, pause_s, rng))
    return out


def _framed(
    kind: str, sentence: Sentence, pcm: bytes, pause_s: float, rng: np.random.Generator
) -> Utterance:
    last = LEAD_S + sentence.words[-1].end_s - sentence.start_s + pause_s
    whole = noise(LEAD_S, rng) + pcm + noise(TAIL_S, rng)
    return Utterance(kind, sentence.text, whole[: len(whole) - len(whole) % BLOCK_BYTES], last)


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


class CachedModel:
    """smart-turn, each distinct audio judged once across policies; times each real call."""

    def __init__(self) -> None:
        self._model = SmartTurn()
        self._model.warm_up()
        self._seen: dict[bytes, float] = {}
        self.call_ms: list[float] = []

    def complete_probability(self, audio: bytes) -> float:
        key = hashlib.blake2b(audio, digest_size=16).digest()
        if key not in self._seen:
            started = time.perf_counter()
            self._seen[key] = self._model.complete_probability(audio)
            self.call_ms.append((time.perf_counter() - started) * 1000)
        return self._seen[key]


def probabilities(pcm: bytes) -> list[float]:
    vad = SileroVad()
    blocks = range(0, len(pcm), BLOCK_BYTES)
    return [vad.speech_probability(pcm[i : i + BLOCK_BYTES]) for i in blocks]


def play(
    utterance: Utterance, vad_probs: list[float], config: VadConfig, model: CachedModel | None
) -> tuple[Outcome, int]:
    """The outcome, and how many questions the model was asked."""
    counting = _Counting(model) if model else None
    hearing = Hearing(Replayed(vad_probs), config, counting)
    ends: list[tuple[float, TurnEnded]] = []
    for n in range(len(vad_probs)):
        block = MicBlock(utterance.pcm[n * BLOCK_BYTES : (n + 1) * BLOCK_BYTES], n * BLOCK_SECONDS)
        for event in hearing.hear(block, should_listen=True).events:
            if isinstance(event, TurnEnded):
                ends.append(((n + 1) * BLOCK_SECONDS, event))
    cut_off = any(decided < utterance.last_word_end_s for decided, _ in ends)
    final = [(decided, e) for decided, e in ends if decided >= utterance.last_word_end_s]
    wait = final[0][0] - final[0][1].speech_end_s if final else None
    return Outcome(cut_off, wait), counting.calls if counting else 0


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
    """Today's policy, the smart-turn defaults, and variants that show the trade-offs."""
    smart = ModelTurnConfig()  # asks at 200 ms, again every 300 ms, gives up at 1800 ms
    once = attrs.evolve(smart, ask_every_ms=smart.max_silence_ms)
    turn_ends = {
        "silence 500 ms (default)": None,
        "smart-turn 200 ms, every 300, max 1800": smart,
        "smart-turn 200 ms once, max 1800": once,
        "smart-turn 200 ms once, p > 0.9": attrs.evolve(once, complete_above=0.9),
        "smart-turn 400 ms once, max 1800": attrs.evolve(once, first_ask_ms=400),
    }
    configs = {
        name: VadConfig(partial_interval_ms=0, model_turn=m) for name, m in turn_ends.items()
    }
    for ms in (300, 700):
        configs[f"silence {ms} ms"] = VadConfig(partial_interval_ms=0, min_silence_ms=ms)
    return configs


def _share(flags: list[bool]) -> str:
    return f"{100 * sum(flags) / len(flags):5.1f} %" if flags else "   -  "


HEADER = (
    f"{'policy':40} {'cut off: complete':>17} {'paused':>8} {'all':>8} {'<= 300 ms':>10} "
    f"{'mean wait':>10} {'asks':>5}"
)


def row(name: str, cases: list[Utterance], results: list[tuple[Outcome, int]]) -> str:
    outcomes = [outcome for outcome, _ in results]
    complete = [o for u, o in zip(cases, outcomes, strict=True) if u.kind == "complete"]
    paused = [o for u, o in zip(cases, outcomes, strict=True) if u.kind == "paused"]
    waits = [o.wait_s for o in outcomes if not o.cut_off and o.wait_s is not None]
    quick = [not o.cut_off and o.wait_s is not None and o.wait_s <= QUICK_S for o in complete]
    asks = statistics.mean(asked for _, asked in results)
    return (
        f"{name:40} {_share([o.cut_off for o in complete]):>17} "
        f"{_share([o.cut_off for o in paused]):>8} {_share([o.cut_off for o in outcomes]):>8} "
        f"{_share(quick):>10} {1000 * statistics.mean(waits):7.0f} ms {asks:5.1f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cuts", type=int, default=3, help="paused variants per sentence")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cases = utterances(args.cuts, args.seed)
    vad_probs = [probabilities(u.pcm) for u in cases]
    model = CachedModel()
    complete = sum(u.kind == "complete" for u in cases)
    seconds = sum(len(u.pcm) for u in cases) / BYTES_PER_SAMPLE / SAMPLE_RATE
    print(f"{complete} complete and {len(cases) - complete} paused utterances, {seconds:.0f} s\n")
    print(HEADER)
    print("-" * len(HEADER))
    for name, config in policies().items():
        judge = model if config.model_turn is not None else None
        results = [play(u, p, config, judge) for u, p in zip(cases, vad_probs, strict=True)]
        print(row(name, cases, results))
    if model.call_ms:
        calls = sorted(model.call_ms)
        p95 = calls[int(0.95 * (len(calls) - 1))]
        print(
            f"\nsmart-turn: {len(calls)} distinct calls, median {statistics.median(calls):.0f} ms, "
            f"p95 {p95:.0f} ms (onnxruntime, one thread)"
        )
    print(f"took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
