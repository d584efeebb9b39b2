"""The offline ear and voice on this machine: how well and how fast.

    python -m benchmarks.stt_tts_latency [--repeats 7] [--ears tiny.en:1,base:1]

The recognisers (faster-whisper int8 tiny.en and base, beam 1 and 5, on every core): the decode
at the pause, median and p90 over the end-of-turn benchmark's real sentences (as the agent
decodes a turn); the word error rate on the two real recordings with published texts; and the
92 questions of benchmarks/answer_questions.py spoken in six espeak-ng voices: how many heard
right (word error <= 25 %), the mean word error and the median decode. Errors are counted after
Whisper's English normaliser. Piper en_US-joe-medium: time to the first chunk of a short
sentence, and the whole sentence, for 1/2 onnxruntime threads. Needs the dev extra
(moonshine-voice for the recordings, espeak-ng).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from functools import partial

from adapters.faster_whisper_stt import FasterWhisperSpeechToText
from adapters.piper_tts import PiperTextToSpeech
from benchmarks.answer_quality import Ear, heard_error
from benchmarks.answer_questions import QUESTIONS
from benchmarks.espeak_voices import VOICES, speak
from tests.adapters.speech_samples import (
    BECKETT_TEXT,
    TWO_CITIES_TEXT,
    load_speech,
)
from tests.adapters.turn_samples import sentences

SHORT_SENTENCE = "Sure, I can help with that."


def median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def timed_ms(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return 1000 * (time.perf_counter() - start)


def bench_stt(ears: list[tuple[str, int]]) -> None:
    pauses = [sentence.pcm() for sentence in sentences()]
    recordings = {"beckett": BECKETT_TEXT, "two_cities": TWO_CITIES_TEXT}
    said = [question.turns[-1] for question in QUESTIONS]
    spoken = [speak(text, *VOICES[i % len(VOICES)]) for i, text in enumerate(said)]
    print(
        f"faster-whisper int8 on {os.cpu_count()} threads: decode at the pause over "
        f"{len(pauses)} real sentences; WER on the real recordings; {len(said)} questions in "
        f"{len(VOICES)} espeak-ng voices"
    )
    print("  model    beam  pause ms (median, p90)  WER real  heard right  WER espeak  decode ms")
    for model, beam in ears:
        stt = FasterWhisperSpeechToText(model, beam_size=beam, cpu_threads=os.cpu_count())
        stt.warm_up()
        decode = sorted(timed_ms(partial(stt.transcribe, pcm)) for pcm in pauses)
        real = [
            heard_error(text, stt.transcribe(load_speech(name)).text)
            for name, text in recordings.items()
        ]
        errors, espeak_ms = [], []
        for text, pcm in zip(said, spoken, strict=True):
            started = time.perf_counter()
            heard_text = stt.transcribe(pcm).text
            espeak_ms.append(1000 * (time.perf_counter() - started))
            errors.append(heard_error(text, heard_text))
        heard = sum(error <= Ear.HEARD_RIGHT_WER for error in errors)
        p90 = decode[int(0.9 * (len(decode) - 1))]
        print(
            f"  {model:<8} {beam:>4} {statistics.median(decode):>9.0f}, {p90:>4.0f} "
            f"{statistics.mean(real):>15.1%} {heard:>6}/{len(said)} "
            f"{statistics.mean(errors):>11.1%} {statistics.median(espeak_ms):>10.0f}",
            flush=True,
        )


def first_chunk(tts: PiperTextToSpeech) -> bytes:
    return next(iter(tts.synthesize(SHORT_SENTENCE, "en")))


def whole_sentence(tts: PiperTextToSpeech) -> list[bytes]:
    return list(tts.synthesize(SHORT_SENTENCE, "en"))


def bench_tts(repeats: int) -> None:
    print(f"Piper en_US-joe-medium, {SHORT_SENTENCE!r}")
    print("  threads   first chunk median ms   whole sentence median ms")
    for threads in (1, 2):
        tts = PiperTextToSpeech(threads=threads)
        tts.warm_up()
        first = median_ms(partial(first_chunk, tts), repeats)
        whole = median_ms(partial(whole_sentence, tts), repeats)
        print(f"  {threads:>7} {first:>23.0f} {whole:>26.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Median STT and TTS latency.")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ears", default="tiny.en:1,tiny.en:5,base:1,base:5",
                        help="recognisers as MODEL:BEAM, comma-separated")  # fmt: skip
    args = parser.parse_args()
    ears = [(ear.split(":")[0], int(ear.split(":")[1])) for ear in args.ears.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the models are local; never reach the Hub
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPU cores, load average {load:.1f}, {args.repeats} repeats per figure")
    bench_stt(ears)
    bench_tts(args.repeats)


if __name__ == "__main__":
    main()
