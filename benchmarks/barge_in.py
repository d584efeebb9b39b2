"""Barge-in on echo: interruption latency, self-interruptions from echo alone, and how well the
interrupting user is transcribed.

Runs the agent's own listening stage (`Hearing` with the barge-in policy, Silero VAD) on audio
made the way WAV replay with `--simulated_echo` makes it: Piper replies played through the
simulated room into the microphone, WebRTC AEC3 removing them, tick by tick as in `DuplexCore`;
a pause stops the far end from the next block on, as the duplex does. The user's words are the
spoken questions (Piper) starting 1-2 s into the reply; their transcript (faster-whisper
tiny.en, the embedded profile's recogniser) confirms the interruption after 0.6 s of speech, as
the conversation does. It runs faster than real time, without the language model: this measures
the audio path, not the reply.

    python -m benchmarks.barge_in [--runs 20] [--min_interruption_ms 192] [--warmup_ms 500]

Also prints, from the same probability traces, how the self-interruptions and the latency move
with `min_interruption_ms` and the warm-up (the decision to pause depends only on the blocks
before it, so the latency is exact; after a false pause the trace goes on as if unpaused).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

import numpy as np

from adapters.duplex_core import make_dither
from adapters.faster_whisper_stt import FasterWhisperSpeechToText
from adapters.piper_tts import PiperTextToSpeech
from adapters.silero_vad import SileroVad
from adapters.simulated_room import RoomSpec, SimulatedRoom
from adapters.webrtc_echo import WebrtcEchoCanceller
from application.hearing import Hearing
from application.interrupting import CONFIRM_EVERY_S, BargeInAdmission
from benchmarks.spoken_questions import QUESTIONS
from domain.audio import BLOCK_BYTES, BLOCK_SECONDS, MicBlock
from domain.barge_in import BargeIn, BargeInConfig, Decision
from domain.mute_policy import Admission
from domain.turn_segmentation import TurnEnded, VadConfig
from tests.adapters.wer import word_error_rate

REPLIES = (
    "The Eiffel Tower was built for the world fair of 1889 in Paris. It was meant to stand for "
    "only twenty years, but it proved useful as a radio mast, so the city kept it.",
    "Cats sleep for up to sixteen hours a day. They are most active at dawn and dusk, which is "
    "when their prey is about, and they can see well in very dim light.",
    "To make a good cup of tea, boil fresh water, warm the pot, add one spoon of leaves per "
    "person, and let it steep for three to five minutes before you pour.",
    "Spiders have eight legs and most of them have eight eyes as well. Not all of them spin "
    "webs: some hunt by jumping, and some wait in burrows for insects to pass.",
    "The sky looks blue because air scatters short wavelengths of sunlight more than long ones. "
    "At sunset the light crosses more air, so the reds and oranges are left.",
    "A good night's sleep starts with a regular bedtime. Keep the room cool and dark, avoid "
    "screens for an hour before bed, and skip coffee after lunch.",
    "Vincent van Gogh painted more than two thousand works in about a decade. He sold very few "
    "in his lifetime, and today his sunflowers are known around the world.",
    "Leaves turn yellow and red in autumn because trees stop making green chlorophyll. The "
    "other pigments that were there all along finally show through.",
    "The Moon is slowly moving away from the Earth, by about four centimetres a year. Long ago "
    "it was much closer, and the days on Earth were shorter.",
    "Honey never really spoils. Archaeologists have found pots of it in ancient tombs that were "
    "thousands of years old, and it was still good to eat.",
)
ROOMS = (RoomSpec(), RoomSpec(delay_ms=150, gain=0.8, reverb_db=-3, seed=1))
SWEEP_MIN_MS = (96, 128, 192, 256, 320, 500)
SWEEP_WARMUP_MS = (0, 250, 500, 1000)


def blocks(pcm: bytes) -> list[bytes]:
    pcm += bytes(-len(pcm) % BLOCK_BYTES)
    return [pcm[i : i + BLOCK_BYTES] for i in range(0, len(pcm), BLOCK_BYTES)]


def onset_s(pcm: bytes) -> float:
    """Where the user's own voice starts: the first 10 ms above -40 dBFS."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 32768 * 0.01)
    return float(loud[0]) * 0.01 if loud.size else 0.0


class RecordingVad:
    """Silero, remembering every probability it gave (the policy's view, block by block)."""

    def __init__(self, vad: SileroVad) -> None:
        self._vad = vad
        self.probabilities: list[float] = []

    def speech_probability(self, block: bytes) -> float:
        probability = self._vad.speech_probability(block)
        self.probabilities.append(probability)
        return probability

    def reset(self) -> None:
        self._vad.reset()

    def warm_up(self) -> None:
        self._vad.warm_up()


def run_one(
    reply: bytes,
    user: bytes | None,
    user_at_s: float,
    room: RoomSpec,
    config: BargeInConfig,
    vad: SileroVad,
    stt: FasterWhisperSpeechToText,
) -> dict[str, Any]:
    """One reply, with or without the user speaking over it, through the room and the canceller
    into `Hearing`; returns what happened, and the trace of speech probabilities."""
    dither = make_dither()
    reply_blocks = blocks(reply)
    start = round(user_at_s / BLOCK_SECONDS)
    user_blocks = [] if user is None else blocks(user)
    total = max(len(reply_blocks), start + len(user_blocks)) + round(3.0 / BLOCK_SECONDS)
    near = [bytes(BLOCK_BYTES)] * total
    for i, b in enumerate(user_blocks):
        near[start + i] = b
    vad.reset()
    recording = RecordingVad(vad)
    admission = BargeInAdmission(config)
    hearing = Hearing(recording, VadConfig(thresh=config.thresh), admission=admission)
    room_sim, canceller = SimulatedRoom(room), WebrtcEchoCanceller()
    canceller.set_delay_ms(round(1000 * BLOCK_SECONDS))
    played = 0
    paused_at: float | None = None
    after = bytearray()
    result: dict[str, Any] = {"pauses": 0, "resumed": 0, "confirmed": False}
    for t in range(total):
        at_s = t * BLOCK_SECONDS
        out, playing = dither, False
        if paused_at is None and played < len(reply_blocks):
            out, playing, played = reply_blocks[played], True, played + 1
        cleaned = canceller.process(room_sim.into_mic(near[t]), out)
        room_sim.play(out)
        # Once confirmed, the conversation closes the reply's turn and listening re-opens.
        listening = result["confirmed"]
        heard = hearing.hear(MicBlock(cleaned, at_s, playing), should_listen=listening)
        barge_in = admission.policy
        if heard.decision is Decision.PAUSE:
            result["pauses"] += 1
            paused_at = at_s + BLOCK_SECONDS
            after = bytearray()
            if "paused_at_s" not in result and barge_in.paused_at_s is not None:
                result["paused_at_s"] = barge_in.paused_at_s
        elif heard.decision is Decision.RESUME:
            result["resumed"] += 1
            paused_at = None
        elif paused_at is not None and not result["confirmed"]:
            after += cleaned
            # Asked again after as much more speech while unconfirmed, as the agent does.
            if len(after) % (round(CONFIRM_EVERY_S / BLOCK_SECONDS) * BLOCK_BYTES) == 0:
                text = stt.transcribe(bytes(after)).text
                result["confirm_text"] = text
                if text.strip() and barge_in.confirm():
                    result["confirmed"] = True
        for event in heard.events:
            if isinstance(event, TurnEnded) and result["confirmed"] and "text" not in result:
                result["text"] = stt.transcribe(event.audio).text
        if "text" in result:
            break
    result["probabilities"] = recording.probabilities
    return result


def first_pause(trace: list[float], config: BargeInConfig) -> list[float]:
    """The times the policy would pause at on an unpaused trace (resuming after the window)."""
    policy = BargeIn(config)
    pauses = []
    for i, p in enumerate(trace):
        at_s = i * BLOCK_SECONDS
        if policy.admit(playing=True, should_listen=False, at_s=at_s) is Admission.WATCH:
            if policy.watched(p, at_s) is Decision.PAUSE and policy.paused_at_s is not None:
                pauses.append(policy.paused_at_s)
        else:
            policy.expired(at_s)
    return pauses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="interruptions, and echo-only replies")
    parser.add_argument("--min_interruption_ms", type=float, default=128.0)
    parser.add_argument("--warmup_ms", type=float, default=250.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", help="also write the report here")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    config = BargeInConfig(
        min_interruption_ms=options.min_interruption_ms, warmup_ms=options.warmup_ms
    )
    started = time.monotonic()
    tts = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    stt = FasterWhisperSpeechToText()
    stt.warm_up()
    vad = SileroVad()
    replies = [b"".join(tts.synthesize(text, "en")) for text in REPLIES]
    asked = [f"Wait. {q}" for q in QUESTIONS]
    questions = [b"".join(tts.synthesize(text, "en")) for text in asked]

    echo_runs, user_runs = [], []
    for n in range(options.runs):
        reply, room = replies[n % len(replies)], ROOMS[n % len(ROOMS)]
        echo_runs.append(run_one(reply, None, 0.0, room, config, vad, stt))
        q = n % len(questions)
        at_s = rng.uniform(1.0, 2.0)
        run = run_one(reply, questions[q], at_s, room, config, vad, stt)
        run["said"] = asked[q]
        run["onset_s"] = at_s + onset_s(questions[q])
        user_runs.append(run)

    latencies = [1000 * (r["paused_at_s"] - r["onset_s"]) for r in user_runs if "paused_at_s" in r]
    correct = [r for r in user_runs if "text" in r and word_error_rate(r["said"], r["text"]) <= 0.2]
    report: dict[str, Any] = {
        "config": {
            "min_interruption_ms": config.min_interruption_ms,
            "warmup_ms": config.warmup_ms,
        },
        "echo_only_replies": len(echo_runs),
        "self_pauses_from_echo": sum(r["pauses"] for r in echo_runs),
        "self_interruptions_confirmed": sum(r["confirmed"] for r in echo_runs),
        "interruptions": len(user_runs),
        "interruptions_paused": len(latencies),
        "interruptions_confirmed": sum(r["confirmed"] for r in user_runs),
        "latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p90": round(float(np.percentile(latencies, 90)), 1) if latencies else None,
        "transcribed_correctly": f"{len(correct)}/{len(user_runs)}",
        "misheard": [(r["said"], r.get("text")) for r in user_runs if r not in correct],
        "seconds": round(time.monotonic() - started, 1),
    }
    sweep = {}
    for warmup in SWEEP_WARMUP_MS:
        for minimum in SWEEP_MIN_MS:
            swept = BargeInConfig(min_interruption_ms=minimum, warmup_ms=warmup)
            false = sum(len(first_pause(r["probabilities"], swept)) for r in echo_runs)
            lat = []
            for r in user_runs:
                times = first_pause(r["probabilities"], swept)
                if times:
                    lat.append(1000 * (times[0] - r["onset_s"]))
            early = sum(1 for x in lat if x < 0)  # paused before the user spoke: by echo
            sweep[f"warmup {warmup} ms, min {minimum} ms"] = {
                "false_pauses": false,
                "median_ms": round(statistics.median(lat), 1) if lat else None,
                "p90_ms": round(float(np.percentile(lat, 90)), 1) if lat else None,
                "missed": len(user_runs) - len(lat),
                "paused_before_user": early,
            }
    report["sweep"] = sweep
    print(json.dumps(report, indent=2))
    if options.json:
        with open(options.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
