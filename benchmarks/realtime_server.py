"""Voice-to-voice over the Realtime server, as a client meets it: the official `openai`
package's realtime client streams each spoken question in real time (40 ms pcm16 chunks at
24 kHz, silence between questions, as a microphone would), and the figure is the time from the
last sample of the question sent to the first sample of the reply received.

    python -m benchmarks.realtime_server [--runs 2] [-- extra server flags]

Each run is one session asking the eight questions of `spoken_questions.QUESTIONS`, each after
the whole reply to the one before; the server is `python -m composition.serve` with the
embedded models, started once. The server's own per-turn records give the same turn's
voice-to-voice on its audio clock (end of speech to the first reply block played) and the
stages; local mode's figure on the same questions is `python -m benchmarks.voice_to_voice`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from benchmarks.spoken_questions import spoken_questions
from benchmarks.text_mode import summary
from tests.e2e.served_agent import serving

CHUNK_S = 0.04
RATE = 24_000
LEAD_S = 0.5
STAGES = ("stt_ms", "llm_ttft_ms", "first_batch_ms", "tts_first_chunk_ms", "voice_to_voice_ms")


def at_24_khz(pcm16k: bytes) -> bytes:
    samples: np.ndarray = soxr.resample(np.frombuffer(pcm16k, dtype="<i2"), 16_000, RATE)
    return samples.astype("<i2").tobytes()


class Microphone:
    """Streams silence in real time until given speech; notes when speech's last chunk left."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._speech = bytearray()
        self.speech_sent_at: float | None = None

    def say(self, pcm24: bytes) -> None:
        self.speech_sent_at = None
        self._speech += bytes(int(RATE * LEAD_S) * 2) + pcm24

    async def run(self) -> None:
        step = int(RATE * CHUNK_S) * 2
        due = time.monotonic()
        while True:
            speaking = bool(self._speech)
            chunk = bytes(self._speech[:step]) if speaking else bytes(step)
            del self._speech[:step]
            await self._connection.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
            if speaking and not self._speech:
                self.speech_sent_at = time.monotonic()
            due += CHUNK_S
            await asyncio.sleep(max(0.0, due - time.monotonic()))


async def session(base_url: str, questions: list[bytes]) -> list[float | None]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="local", base_url=base_url)
    measured: list[float | None] = []
    async with client.realtime.connect(model="local") as connection:
        microphone = Microphone(connection)
        streaming = asyncio.create_task(microphone.run())
        try:
            for question in questions:
                microphone.say(question)
                first: float | None = None
                while True:
                    event = await asyncio.wait_for(connection.recv(), 120)
                    if event.type == "response.output_audio.delta" and first is None:
                        first = time.monotonic()
                    elif event.type == "response.done":
                        break
                sent = microphone.speech_sent_at
                ok = first is not None and sent is not None and event.response.status == "completed"
                measured.append(1000 * (first - sent) if ok else None)  # type: ignore[operator]
                print(f"  {measured[-1] and round(measured[-1])} ms", flush=True)
        finally:
            streaming.cancel()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="sessions, 8 questions each")
    parser.add_argument("server_args", nargs="*", help="extra server flags, after --")
    args = parser.parse_args()
    questions = [at_24_khz(pcm) for _, pcm in spoken_questions(8)]
    with tempfile.TemporaryDirectory() as home:
        with serving(Path(home), *args.server_args) as served:
            measured = [v for _ in range(args.runs) for v in asyncio.run(
                session(served.base_url, questions))]  # fmt: skip
        # Read once the server stopped: the last turn's record is written as its reply ends.
        records = [json.loads(line) for line in served.metrics.read_text().splitlines()]
    answered = [v for v in measured if v is not None]
    print(f"answered: {len(answered)}/{len(measured)}")
    print(f"voice-to-voice at the client, median / p90: {summary(answered)}")
    for stage in STAGES:
        values = [r[stage] for r in records if r.get(stage) is not None]
        if values:
            print(f"  server's {stage:<20} {summary(values)}")


if __name__ == "__main__":
    main()
