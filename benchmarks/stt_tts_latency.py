"""Latency of the offline ear and voice, as medians on this machine.

    python -m benchmarks.stt_tts_latency [--repeats 7]

faster-whisper tiny.en int8: final transcript of a 2.7 s turn for beam 1/5 x cpu_threads 1/2,
plus WER on the two real recordings; Piper en_US-joe-medium: time to the first chunk of a short
sentence, and the whole sentence, for 1/2 onnxruntime threads. Needs the dev extra
(moonshine-voice for the recordings).
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
from domain.audio import BYTES_PER_SAMPLE, SAMPLE_RATE
from tests.adapters.speech_samples import (
    BECKETT_TEXT,
    TWO_CITIES_TEXT,
    load_speech,
)
from tests.adapters.wer import word_error_rate

TURN_SECONDS = 2.7
SHORT_SENTENCE = "Sure, I can help with that."


def median_ms(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def bench_stt(repeats: int) -> None:
    turn = load_speech("beckett")[: int(TURN_SECONDS * SAMPLE_RATE) * BYTES_PER_SAMPLE]
    recordings = {"beckett": BECKETT_TEXT, "two_cities": TWO_CITIES_TEXT}
    print(f"faster-whisper tiny.en int8, final transcript of a {TURN_SECONDS} s turn")
    print("  beam threads   median ms   WER beckett   WER two_cities")
    for beam in (1, 5):
        for threads in (1, 2):
            stt = FasterWhisperSpeechToText(beam_size=beam, cpu_threads=threads)
            stt.warm_up()
            ms = median_ms(partial(stt.transcribe, turn), repeats)
            wers = [
                word_error_rate(text, stt.transcribe(load_speech(name)).text)
                for name, text in recordings.items()
            ]
            print(f"  {beam:>4} {threads:>7} {ms:>11.0f} {wers[0]:>13.1%} {wers[1]:>16.1%}")


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
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the models are local; never reach the Hub
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPU cores, load average {load:.1f}, {args.repeats} repeats per figure")
    bench_stt(args.repeats)
    bench_tts(args.repeats)


if __name__ == "__main__":
    main()
