"""What people say to a voice assistant, for the end-of-turn benchmark: questions, answers and
requests, whole or with a thinking pause after a word that leaves them unfinished ("What is
the capital of ... France?", "So, um, ... what time is it?"), in espeak-ng's voices
(benchmarks/espeak_voices.py), none of them the agent's own. The end-of-turn benchmark frames
them in noise and inserts the pauses (seeded, 0.6-1.5 s)."""

from __future__ import annotations

import random

import attrs
import numpy as np

from benchmarks.espeak_voices import VOICES, speak

WHOLE = (
    "What is the capital of France?",
    "How far away is the moon?",
    "Can you tell me a joke?",
    "I'd like a recipe for pancakes.",
    "My name is Maria and I live in Lisbon.",
    "Yes, please.",
    "No, that's all for now.",
    "Thanks, that was really helpful.",
    "What should I cook for dinner tonight?",
    "Tell me something interesting about octopuses.",
    "Why is the sky blue?",
    "How do I boil an egg?",
    "Who wrote Pride and Prejudice?",
    "What's the difference between a virus and a bacterium?",
    "Set a timer for ten minutes.",
    "I don't think that's right.",
    "Where are you from?",
    "What are you thinking about?",
    "Okay, go on.",
    "Sure, why not?",
    "That sounds good to me.",
    "How many days are there in a leap year?",
    "Can you say that again, more slowly?",
    "I'm looking for a good book to read on holiday.",
)
# (before the pause, after it): the first part is unfinished.
PAUSED = (
    ("What is the capital of", "France?"),
    ("Tell me about the moon and", "why it has phases."),
    ("So, um,", "what time is it?"),
    ("I was wondering if", "you could help me with something."),
    ("Can you give me a recipe for", "banana bread?"),
    ("My favourite colour is, uh,", "probably green."),
    ("I need to buy milk, eggs and", "some bread."),
    ("I want to learn French because", "my family lives in Paris."),
    ("The thing is,", "I can't sleep at night."),
    ("How long does it take to, um,", "fly to Tokyo?"),
    ("I'd like to know the", "population of Canada."),
    ("Could you explain how", "photosynthesis works?"),
    ("What's the best way to learn", "the piano?"),
    ("Hmm.", "What about Jupiter?"),
    ("I live in Lisbon, and", "I work as a teacher."),
    ("Tell me a story about a dragon who", "loves to bake."),
    ("Which is bigger, the sun or", "the earth?"),
    ("Remind me to call my", "mother tomorrow."),
)
PAUSE_RANGE_S = (0.6, 1.5)


@attrs.frozen
class Spoken:
    """One utterance: its speech before the pause and after it (a whole one is one part)."""

    text: str
    parts: tuple[bytes, ...]
    pause_s: float  # 0 for a whole one


SILENT_BELOW = 200  # int16: espeak's own trailing quiet is not speech


def _voiced(text: str, voice: int) -> bytes:
    """`text` in one of the voices, from its first sound to its last."""
    name, words_per_minute = VOICES[voice % len(VOICES)]
    samples = np.frombuffer(speak(text, name, words_per_minute), dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENT_BELOW)
    return samples[loud[0] : loud[-1] + 1].tobytes()


def whole() -> list[Spoken]:
    return [Spoken(text, (_voiced(text, n),), 0.0) for n, text in enumerate(WHOLE)]


def paused(seed: int) -> list[Spoken]:
    choose = random.Random(seed)
    return [
        Spoken(f"{before} ... {after}", (_voiced(before, n), _voiced(after, n)),
               choose.uniform(*PAUSE_RANGE_S))
        for n, (before, after) in enumerate(PAUSED)
    ]  # fmt: skip
