"""The Realtime server end to end: `python -m composition.serve` with the embedded models, and
the official `openai` package's realtime client talking to it as it would to OpenAI."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import soxr
from openai import AsyncOpenAI

from adapters.llama_server import LlamaServer
from benchmarks.spoken_questions import spoken_questions
from tests.e2e.served_agent import Served, serving

CHUNK_S = 0.04
EVENT_TIMEOUT_S = 90.0
FLAGS = ("--llm_gen_max_new_tokens", "48", "--max_sessions", "2")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("served"), *FLAGS) as server:
        yield server


def client(served: Served) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="local", base_url=served.base_url)


async def next_of(connection: Any, *types: str) -> Any:
    """The next event of one of `types` (others are skipped), or a failed test."""
    while True:
        event = await asyncio.wait_for(connection.recv(), EVENT_TIMEOUT_S)
        assert event.type != "error", event.error.message
        if event.type in types:
            return event


async def ask_typed(connection: Any, text: str) -> None:
    await connection.conversation.item.create(
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    )
    await connection.response.create()


async def reply_to(connection: Any) -> tuple[str, int, Any]:
    """The transcript and the audio bytes of the next response, and its `response.done`."""
    transcript, audio = "", 0
    while True:
        event = await next_of(connection, "response.output_audio_transcript.delta",
                              "response.output_text.delta", "response.output_audio.delta",
                              "response.done")  # fmt: skip
        if event.type == "response.output_audio.delta":
            audio += len(base64.b64decode(event.delta))
        elif event.type == "response.done":
            return transcript, audio, event
        else:
            transcript += event.delta


async def stream_in_real_time(connection: Any, pcm24: bytes, then_silence_s: float) -> None:
    """As a microphone would: 40 ms at a time, then silence."""
    step = int(24_000 * CHUNK_S) * 2
    pcm24 += bytes(int(24_000 * then_silence_s) * 2)
    for start in range(0, len(pcm24), step):
        chunk = base64.b64encode(pcm24[start : start + step]).decode()
        await connection.input_audio_buffer.append(audio=chunk)
        await asyncio.sleep(CHUNK_S)


def at_24_khz(pcm16k: bytes) -> bytes:
    samples: np.ndarray = soxr.resample(np.frombuffer(pcm16k, dtype="<i2"), 16_000, 24_000)
    return samples.astype("<i2").tobytes()


@pytest.mark.slow
def test_a_spoken_question_is_transcribed_and_answered_in_voice(served: Served) -> None:
    _, spoken = spoken_questions(1)[0]

    async def talk() -> None:
        async with client(served).realtime.connect(model="local") as connection:
            await next_of(connection, "session.created")
            # Half a second of room tone first, as a microphone opened before the question.
            sending = asyncio.create_task(
                stream_in_real_time(connection, at_24_khz(bytes(16_000) + spoken), 12.0)
            )
            await next_of(connection, "input_audio_buffer.speech_started")
            await next_of(connection, "input_audio_buffer.speech_stopped")
            heard = await next_of(
                connection, "conversation.item.input_audio_transcription.completed"
            )
            assert "capital" in heard.transcript.lower()
            transcript, audio, done = await reply_to(connection)
            sending.cancel()
            assert done.response.status == "completed"
            assert "paris" in transcript.lower()
            assert audio > 24_000  # more than half a second of reply audio at 24 kHz

    asyncio.run(talk())


def spoken(text: str) -> bytes:
    """`text` in the Piper voice at 24 kHz, the same on every run."""
    from adapters.piper_tts import PiperTextToSpeech

    voice = PiperTextToSpeech(noise_scale=0.0, noise_w_scale=0.0)
    return at_24_khz(b"".join(voice.synthesize(text, "en")))


@pytest.mark.slow
def test_speaking_over_the_reply_interrupts_it_and_is_answered(served: Served) -> None:
    story, question = (
        spoken("Tell me a long story about a dragon."),
        spoken("What is the capital of France?"),
    )

    async def talk() -> None:
        async with client(served).realtime.connect(model="local") as connection:
            await next_of(connection, "session.created")
            sending = asyncio.create_task(stream_in_real_time(connection, story, 30.0))
            await next_of(connection, "response.output_audio.delta")
            sending.cancel()
            # The user speaks up a second into the reply, as they would.
            await stream_in_real_time(connection, bytes(24_000 * 2), 0.0)
            sending = asyncio.create_task(stream_in_real_time(connection, question, 15.0))
            await next_of(connection, "input_audio_buffer.speech_started")
            done = await next_of(connection, "response.done")
            assert done.response.status == "cancelled"
            heard = await next_of(
                connection, "conversation.item.input_audio_transcription.completed"
            )
            assert "capital" in heard.transcript.lower()
            transcript, _, done = await reply_to(connection)
            sending.cancel()
            assert done.response.status == "completed" and "paris" in transcript.lower()

    asyncio.run(talk())


@pytest.mark.slow
def test_a_long_reply_is_cancelled_and_the_session_goes_on(served: Served) -> None:
    async def talk() -> None:
        async with client(served).realtime.connect(model="local") as connection:
            await next_of(connection, "session.created")
            await ask_typed(connection, "Tell me a long story about a dragon and a knight.")
            await next_of(connection, "response.output_audio.delta")
            await connection.response.cancel()
            done = await next_of(connection, "response.done")
            assert done.response.status == "cancelled"
            await ask_typed(connection, "What is the capital of France?")
            transcript, _, done = await reply_to(connection)
            assert done.response.status == "completed" and "paris" in transcript.lower()

    asyncio.run(talk())


@pytest.mark.slow
def test_two_sessions_at_once_each_get_their_own_answer(served: Served) -> None:
    async def session(question: str, modality: Literal["audio", "text"]) -> str:
        async with client(served).realtime.connect(model="local") as connection:
            await next_of(connection, "session.created")
            await connection.session.update(
                session={"type": "realtime", "output_modalities": [modality]}
            )
            await next_of(connection, "session.updated")
            await ask_typed(connection, question)
            transcript, audio, done = await reply_to(connection)
            assert done.response.status == "completed"
            assert (audio > 0) == (modality == "audio")
            return transcript.lower()

    async def both() -> tuple[str, str]:
        return await asyncio.gather(
            session("What is the capital of France?", "audio"),
            session("What is the capital of Japan?", "text"),
        )

    france, japan = asyncio.run(both())
    assert "paris" in france and "tokyo" not in france
    assert "tokyo" in japan and "paris" not in japan


@pytest.mark.slow
def test_the_server_talks_to_a_llama_cpp_server_through_chat_completions(tmp_path: Path) -> None:
    with LlamaServer(threads=1) as llm, serving(
        tmp_path, "--llm_backend", "chat-completions", "--responses_api_base_url", llm.base_url,
        "--responses_api_api_key", llm.api_key, "--model_name", "local", *FLAGS,
    ) as server:  # fmt: skip

        async def talk() -> tuple[str, Any]:
            async with client(server).realtime.connect(model="local") as connection:
                await next_of(connection, "session.created")
                await ask_typed(connection, "What is the capital of France?")
                transcript, _, done = await reply_to(connection)
                return transcript, done

        transcript, done = asyncio.run(talk())
    assert done.response.status == "completed" and "paris" in transcript.lower()
