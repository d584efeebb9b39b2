"""smart-turn v3.2 on real speech: sentences cut out of the wheels' recordings where they end,
and where they do not (`turn_samples.py`, the same cuts on every machine).

The model errs on single clips ("I do." scores 0.03), and single scores follow the
processor: the model is int8, so a change in the last bit of one feature (another machine's FFT
or log) can move a score by 0.5, and onnxruntime's int8 kernels saturate on x86-64 without VNNI
(AVX2-only machines, Skylake's AVX-512), which leaves cut sentences sounding more finished than
with VNNI. So the assertions are on the set, with thresholds that hold for both kernels."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import pytest

from adapters.errors import SetupError
from adapters.smart_turn import SmartTurn
from domain.audio import SAMPLE_RATE, silence
from tests.adapters.turn_samples import sentences

# What the segmenter hands over at the first question: the turn and ~200 ms of silence.
TRAILING = silence(SAMPLE_RATE // 5)
# The last cuts of each sentence: with most of it said ("it was the season of"), it is plainly
# unfinished, where its first words ("It was") might be a whole reply.
CUTS_PER_SENTENCE = 4


@pytest.fixture(scope="module")
def model() -> SmartTurn:
    return SmartTurn()  # installed by scripts/setup.sh


def softer(pcm: bytes, divisor: int) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2") / divisor
    return np.round(samples).astype("<i2").tobytes()


# 18 dB quieter, the speech sounds the same only if the waveform is normalised before the
# features: unnormalised, the cut sentences' mean rises to ~0.8.
@pytest.mark.parametrize("divisor", [1, 8], ids=["as-recorded", "18-dB-quieter"])
def test_finished_sentences_sound_complete_and_cut_ones_less_so(
    model: SmartTurn, divisor: int
) -> None:
    def score(pcm: bytes) -> float:
        return model.complete_probability(softer(pcm, divisor) + TRAILING)

    complete = [score(s.pcm()) for s in sentences()]
    cut = [
        score(s.pcm(end_s=end)) for s in sentences() for end in s.inner_cuts()[-CUTS_PER_SENTENCE:]
    ]
    median, gap = statistics.median(complete), statistics.mean(complete) - statistics.mean(cut)
    print(f"\n{len(complete)} complete, median {median:.3f}; {len(cut)} cut; mean gap {gap:.3f}")
    assert len(complete) >= 25 and len(cut) >= 50
    # Measured with saturating and exact int8 kernels, each with features jittered in their
    # last bits: median 0.95-0.97, gap 0.29-0.50. Broken features (zeroed, shuffled, unscaled,
    # mel or time axis reversed), reversed audio, noise, padding on the wrong side, or a quiet
    # speaker not normalised: gap 0.11 at most.
    assert median > 0.9
    assert gap > 0.2


def test_only_the_last_eight_seconds_count(model: SmartTurn) -> None:
    sentence = sentences()[0]
    long_silence_first = silence(20 * SAMPLE_RATE) + sentence.pcm() + TRAILING
    assert model.complete_probability(long_silence_first) == pytest.approx(
        model.complete_probability(sentence.pcm() + TRAILING), abs=1e-4
    )


def test_a_missing_model_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(SetupError, match=r"scripts/install-model\.sh smart-turn-v3\.2"):
        SmartTurn()
