"""WebRTC AEC3 (the pywebrtc-audio wheel) on real speech played through a simulated room."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapters.silero_vad import SileroVad
from adapters.simulated_room import RoomSpec, SimulatedRoom
from adapters.webrtc_echo import WebrtcEchoCanceller
from domain.audio import BLOCK_BYTES, silence
from tests.adapters.speech_samples import load_speech

SPEECH_THRESHOLD = 0.5  # the VAD's default onset threshold
CONVERGED_AFTER_BLOCKS = 60  # ~2 s: the measurements skip the canceller's warm-up


def blocks(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + BLOCK_BYTES] for i in range(0, len(pcm) - BLOCK_BYTES + 1, BLOCK_BYTES)]


def energy(pcm_blocks: list[bytes]) -> float:
    samples = np.frombuffer(b"".join(pcm_blocks), dtype="<i2").astype(np.float64)
    return float(np.mean(samples**2)) + 1e-9


def through_room(
    played: list[bytes], user: list[bytes], spec: RoomSpec, canceller: WebrtcEchoCanceller | None
) -> tuple[list[bytes], list[bytes]]:
    """(what the microphone heard, what the canceller made of it), tick by tick as in
    `DuplexCore`: the block heard now holds the echo of what was played before."""
    room = SimulatedRoom(spec)
    heard, cleaned = [], []
    for out, voice in zip(played, user, strict=True):
        mic = room.into_mic(voice)
        heard.append(mic)
        cleaned.append(mic if canceller is None else canceller.process(mic, out))
        room.play(out)
    return heard, cleaned


@pytest.fixture(scope="module")
def reply() -> list[bytes]:
    return blocks(load_speech("two_cities"))[:400]  # ~13 s of a long reply


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec",
    [  # noiseless, so that the reduction measures the echo, not the room's noise floor
        RoomSpec(noise_dbfs=-120),
        RoomSpec(noise_dbfs=-120, delay_ms=150, gain=0.8, reverb_db=-3),
        RoomSpec(noise_dbfs=-120, delay_ms=300, decay_ms=80),
    ],
)
def test_echo_is_reduced_by_more_than_20_db_and_silero_hears_none_of_it(
    reply: list[bytes], spec: RoomSpec
) -> None:
    quiet = [silence(512)] * len(reply)
    canceller = WebrtcEchoCanceller()
    canceller.set_delay_ms(32)
    heard, cleaned = through_room(reply, quiet, spec, canceller)
    after = slice(CONVERGED_AFTER_BLOCKS, None)
    reduction_db = 10 * math.log10(energy(heard[after]) / energy(cleaned[after]))
    assert reduction_db > 20, reduction_db

    vad = SileroVad()
    raw_hits = sum(vad.speech_probability(b) >= SPEECH_THRESHOLD for b in heard)
    vad.reset()
    probabilities = [vad.speech_probability(b) for b in cleaned]
    hits = sum(p >= SPEECH_THRESHOLD for p in probabilities[CONVERGED_AFTER_BLOCKS:])
    assert raw_hits > len(heard) // 3  # without the canceller the echo is plainly speech
    assert hits == 0, hits


@pytest.mark.slow
def test_the_user_speaking_over_the_reply_is_still_heard(reply: list[bytes]) -> None:
    user_speech = blocks(load_speech("beckett"))[:120]
    start = 200  # the user starts ~6 s into the reply
    user = [silence(512)] * start + user_speech
    user += [silence(512)] * (len(reply) - len(user))
    canceller = WebrtcEchoCanceller()
    canceller.set_delay_ms(32)
    _, cleaned = through_room(reply, user, RoomSpec(), canceller)
    vad = SileroVad()
    alone = [vad.speech_probability(b) for b in user_speech]
    onset = start + next(i for i, p in enumerate(alone) if p >= SPEECH_THRESHOLD)
    vad.reset()
    probabilities = [vad.speech_probability(b) for b in cleaned]
    voiced = [i for i, p in enumerate(probabilities) if p >= SPEECH_THRESHOLD]
    assert voiced and voiced[0] >= start  # nothing before the user speaks
    # Caught within ~130 ms of the onset Silero finds in their voice alone.
    assert voiced[0] - onset <= 4, voiced[0] - onset
    during = sum(p >= SPEECH_THRESHOLD for p in probabilities[start : start + len(user_speech)])
    assert during > len(user_speech) // 4


def test_blocks_keep_their_length_and_a_silent_far_end_passes_the_mic_through() -> None:
    canceller = WebrtcEchoCanceller()
    rng = np.random.default_rng(1)
    tone = (3000 * np.sin(np.arange(512 * 40) * 2 * np.pi * 440 / 16000)).astype("<i2").tobytes()
    mic = blocks(tone)
    out = [canceller.process(b, silence(512)) for b in mic]
    assert all(len(b) == BLOCK_BYTES for b in out)
    # Nothing played: after the high-pass filter settles, the tone comes through near intact.
    assert energy(out[10:]) > 0.5 * energy(mic[10:])
    with pytest.raises(ValueError):
        canceller.process(rng.bytes(100), silence(512))
