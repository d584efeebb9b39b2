"""Turns cut out of real recordings for the end-of-turn model: whole sentences (complete) and
sentences cut after a word in their middle (incomplete).

Sentence and word boundaries are faster-whisper tiny.en's word timestamps on the recordings in
the `moonshine-voice` wheel (`speech_samples.py`), stored in `turn_words.json`: a sentence ends
at a word ending in . ? or !. They are stored because CTranslate2's arithmetic follows the
processor: on one machine, its AVX or generic kernels instead of AVX2, or MKL's, moved words by
up to 0.18 s and changed the sentences ("No matter, try again." for "No matter. Try again."),
and a test that judges the cuts must see the same cuts on every machine.
`python -m tests.adapters.turn_samples` writes the file again (the stored one: CTranslate2
4.8.5's defaults on an AMD EPYC with AVX2); the tests' thresholds were measured on it, so
measure them again after a rewrite. Timestamps are approximate (tens of ms), so a cut "after a
word" may take the onset of the next one: still mid-sentence.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import attrs
import numpy as np

from domain.audio import BYTES_PER_SAMPLE, SAMPLE_RATE
from tests.adapters.speech_samples import load_speech

RECORDINGS = ("beckett", "two_cities", "endgame_nagg_nell", "clone-test")
WORDS_FILE = Path(__file__).with_name("turn_words.json")
SENTENCE_END = (".", "?", "!")
# Kept after a sentence's last word, and before its first, unless the neighbour is closer.
MARGIN_S = 0.15
MIN_SPEECH_S = 0.45  # shorter sentences ("No.") are under the VAD's min_speech_ms


@attrs.frozen
class Word:
    text: str
    start_s: float
    end_s: float


@attrs.frozen
class Sentence:
    recording: str
    words: tuple[Word, ...]
    start_s: float  # where the clip starts: before the first word
    end_s: float  # where the clip ends: after the last word

    @property
    def text(self) -> str:
        return "".join(w.text for w in self.words).strip()

    def pcm(self, start_s: float | None = None, end_s: float | None = None) -> bytes:
        return cut(self.recording, self.start_s if start_s is None else start_s,
                   self.end_s if end_s is None else end_s)  # fmt: skip

    def inner_cuts(self) -> list[float]:
        """Ends of the words inside the sentence that carry no punctuation: cutting there
        leaves it unfinished. At least two words before and one after."""
        return [w.end_s for w in self.words[1:-2] if w.text.strip()[-1:].isalpha()]


def cut(recording: str, start_s: float, end_s: float) -> bytes:
    pcm = load_speech(recording)
    first, last = (round(t * SAMPLE_RATE) * BYTES_PER_SAMPLE for t in (start_s, end_s))
    return pcm[max(first, 0) : last]


@functools.cache
def sentences() -> tuple[Sentence, ...]:
    """Every sentence of the recordings long enough to be a turn, in order."""
    stored = json.loads(WORDS_FILE.read_text())
    found: list[Sentence] = []
    for name in RECORDINGS:
        words = [Word(text, start, end) for text, start, end in stored[name]]
        found += _split(name, words, len(load_speech(name)) / BYTES_PER_SAMPLE / SAMPLE_RATE)
    return tuple(found)


def transcribed_words() -> dict[str, list[Word]]:
    """faster-whisper tiny.en's words of each recording, greedy, as the file stores them."""
    from adapters.faster_whisper_stt import FasterWhisperSpeechToText

    model = FasterWhisperSpeechToText(cpu_threads=1)._model
    found: dict[str, list[Word]] = {}
    for name in RECORDINGS:
        samples = np.frombuffer(load_speech(name), dtype="<i2").astype(np.float32) / 32768
        segments, _ = model.transcribe(
            samples, language="en", beam_size=1, temperature=0.0, word_timestamps=True,
            condition_on_previous_text=False,
        )  # fmt: skip
        found[name] = [
            Word(w.word, round(w.start, 2), round(w.end, 2))
            for s in segments
            for w in s.words or []
        ]
    return found


def write_words_file() -> None:
    """One word a line, so that a rewrite reads as a diff of the words it moved."""
    recordings = [
        f"  {json.dumps(name)}: [\n"
        + ",\n".join(f"    {json.dumps([w.text, w.start_s, w.end_s])}" for w in words)
        + "\n  ]"
        for name, words in transcribed_words().items()
    ]
    WORDS_FILE.write_text("{\n" + ",\n".join(recordings) + "\n}\n")


def _split(recording: str, words: list[Word], duration_s: float) -> list[Sentence]:
    groups: list[list[Word]] = [[]]
    for word in words:
        groups[-1].append(word)
        if word.text.strip().endswith(SENTENCE_END):
            groups.append([])
    groups = [g for g in groups if g]
    out = []
    for i, group in enumerate(groups):
        before = groups[i - 1][-1].end_s if i else 0.0
        after = groups[i + 1][0].start_s if i + 1 < len(groups) else duration_s
        start = max(group[0].start_s - MARGIN_S, (before + group[0].start_s) / 2)
        end = min(group[-1].end_s + MARGIN_S, (group[-1].end_s + after) / 2)
        ended = group[-1].text.strip().endswith(SENTENCE_END)
        if ended and group[-1].end_s - group[0].start_s >= MIN_SPEECH_S:
            out.append(Sentence(recording, tuple(group), start, end))
    return out


if __name__ == "__main__":
    write_words_file()
