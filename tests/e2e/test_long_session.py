"""A long conversation on the real llama.cpp server, through the conversation core, with text in
place of audio (a fake microphone and recogniser; every turn's words are known): over a hundred
turns of long replies at a small --chat_size. No turn may fail, every request must fit the
model's context in its own tokens, and what the user said in the first turn must still be known
at the end, in the notes of the turns that left the history."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from dependency_injector import providers

from adapters.llama_cpp_llm import LlamaCppLanguageModel
from composition import stages
from composition.config import resolve
from composition.containers import build_agent
from composition.stage_settings import llm_settings
from domain.listening import Phase
from domain.messages import ChatMessage
from ports import Cancellation
from tests.application.harness import FakeAdapters
from tests.fakes import (
    FakeAudio,
    FakeConsole,
    FakeMetrics,
    FakeSpeechToText,
    FakeTextToSpeech,
    FakeVoiceActivity,
    RealClock,
    silence_blocks,
    speech,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

TURNS = 101  # the introduction, then a hundred requests for long answers
INTRODUCTION = "My name is Maria and I live in Lisbon."
TOPICS = (
    "volcanoes", "the Roman empire", "honey bees", "the moon", "jazz music", "glaciers",
    "the printing press", "octopuses", "rainforests", "the Olympic games", "chess",
    "coffee", "the Great Wall of China", "electric cars", "whales", "the piano", "deserts",
    "Mount Everest", "bread baking", "the internet",
)  # fmt: skip
ARGV = ["--chat_size", "4", "--llm_gen_max_new_tokens", "96", "--watchdog_s", "60"]
SUMMARY_WAIT_S = 120.0  # a person listens to a long answer meanwhile


class Recording:
    """The language model, as the conversation uses it, keeping every reply's request."""

    def __init__(self, llm: LlamaCppLanguageModel) -> None:
        self._llm = llm
        self.requests: list[list[ChatMessage]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        background: bool = False,
        offer_tools: bool = True,
    ) -> Iterator[str]:
        if not background:
            self.requests.append(list(messages))
        return self._llm.stream(messages, cancel, background=background)


def prompt_tokens(base_url: str, key: str, messages: list[ChatMessage]) -> int:
    """The request as the server reads it: its chat template applied, then tokenised."""
    address = base_url.removesuffix("/v1")

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{address}{path}", json.dumps(body).encode(),
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.load(response)
            return answer

    chat = [{"role": m.role, "content": m.content} for m in messages]
    prompt = post("/apply-template", {"messages": chat})["prompt"]
    return len(post("/tokenize", {"content": prompt, "parse_special": True})["tokens"])


@contextmanager
def embedded_model(config: dict[str, Any]) -> Iterator[LlamaCppLanguageModel]:
    with contextmanager(stages.llama_cpp)(llm_settings(config)) as llm:
        assert isinstance(llm, LlamaCppLanguageModel)
        llm.warm_up()
        yield llm


def test_a_hundred_long_turns_keep_the_users_name_and_every_request_within_the_context() -> None:
    config = resolve(ARGV, environ={})
    texts = {1: INTRODUCTION} | {
        code: f"Tell me about {topic} in detail." for code, topic in enumerate(TOPICS, start=2)
    }
    with embedded_model(config) as model:
        llm = Recording(model)
        ref: list[Any] = []

        def listening_and_summarised() -> bool:
            conversation = ref[0]
            return conversation.phase is Phase.LISTENING and not conversation.memory.compacting

        script: list[bytes | Callable[[], bool]] = []
        for turn in range(TURNS):
            code = 1 if turn == 0 else 2 + (turn - 1) % len(TOPICS)
            script += [*silence_blocks(0.3), *speech(code, 1.0), *silence_blocks(0.8)]
            script.append(listening_and_summarised)
        fakes = {
            "audio": FakeAudio(script), "vad": FakeVoiceActivity(), "end_of_turn": None,
            "stt": FakeSpeechToText(texts), "llm": llm, "tts": FakeTextToSpeech(),
            "console": FakeConsole(), "clock": RealClock(), "metrics": FakeMetrics(),
        }  # fmt: skip
        adapters = FakeAdapters(**{name: providers.Object(fake) for name, fake in fakes.items()})
        conversation = build_agent(config, adapters=adapters).conversation()
        ref.append(conversation)
        conversation.start()
        finished = conversation.wait(TURNS * SUMMARY_WAIT_S)
        conversation.stop()
        assert finished, "the conversation did not get through its turns"
        records = fakes["metrics"].records  # type: ignore[attr-defined]
        assert [r.outcome for r in records] == ["answered"] * TURNS
        assert conversation.memory.summaries >= TURNS // 10
        context = model.prompt_budget
        base_url, key = model._client.base_url, model._client._api_key
        longest = max(prompt_tokens(base_url, key, request) for request in llm.requests)
        assert longest <= context
        notes = conversation.memory.notes.text()
        assert INTRODUCTION in conversation.memory.notes.said, notes
        print(f"\nlong session: {TURNS} turns, {conversation.memory.summaries} summaries, longest "
              f"request {longest} of {context} tokens; notes: {notes}")  # fmt: skip
