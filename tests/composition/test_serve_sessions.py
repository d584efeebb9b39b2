"""Served sessions as `python -m composition.serve` wires them (its session container, real
sessions and conversations, each with its own VAD) around shared fakes of the models: each
session has its own conversation, and one session's fault is that session's apology alone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from dependency_injector import providers

from application.settings import DEFAULT_APOLOGY
from composition.config import resolve
from composition.local import main as local_main
from composition.serve import check_server, session_opener
from composition.serve import main as serve_main
from composition.settings import ConfigError
from domain.messages import ChatMessage
from ports.language_model import Cancellation, LanguageModelError
from tests.application.harness import FakeAdapters
from tests.fakes import (
    FakeClock,
    FakeLanguageModel,
    FakeMetrics,
    FakeSpeechToText,
    FakeTextToSpeech,
)

EVENT_TIMEOUT_S = 10.0


class EchoingModel(FakeLanguageModel):
    """Answers every session at once with its own words; fails a request that asks it to."""

    def __init__(self) -> None:
        super().__init__([])

    def stream(
        self, messages: Sequence[ChatMessage], cancel: Cancellation, **options: bool
    ) -> Iterator[str]:
        asked = messages[-1].content
        if "fail" in asked:
            raise LanguageModelError("the provider broke")
        yield from ("You", " said:", f" {asked}")


class Client:
    """The events one session sent, waited on as they come."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._came = threading.Condition()

    def send(self, event: dict[str, Any]) -> None:
        with self._came:
            self.events.append(event)
            self._came.notify_all()

    def wait_for(self, kind: str, count: int = 1) -> list[dict[str, Any]]:
        with self._came:
            assert self._came.wait_for(lambda: len(self.of(kind)) >= count, EVENT_TIMEOUT_S), (
                f"no {kind} among {[e['type'] for e in self.events]}"
            )
            return self.of(kind)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]

    def said(self) -> str:
        return "".join(e["delta"] for e in self.of("response.output_audio_transcript.delta"))


def opener(llm: FakeLanguageModel, clock: FakeClock, *argv: str) -> Any:
    fakes = {
        "end_of_turn": None, "stt": FakeSpeechToText({}), "llm": llm,
        "tts": FakeTextToSpeech(), "clock": clock, "metrics": FakeMetrics(),
        "audio": None, "vad": None, "console": None,
    }  # fmt: skip
    shared = FakeAdapters(**{name: providers.Object(fake) for name, fake in fakes.items()})
    config = resolve(["--turn_detection", "silence", *argv], environ={})
    return session_opener({**config, "text": False}, shared)


@pytest.fixture
def open_session() -> Any:
    return opener(EchoingModel(), FakeClock())


def ask(session: Any, text: str) -> None:
    session.handle(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        }
    )
    session.handle({"type": "response.create"})


def test_each_session_has_its_own_conversation_and_its_own_faults(open_session: Any) -> None:
    failing, working = Client(), Client()
    sessions = [open_session(failing.send), open_session(working.send)]
    for session in sessions:
        session.start()
    try:
        ask(sessions[0], "Please fail.")
        ask(sessions[1], "Hello there.")
        # The response asked for ends with nothing said, then the apology is one of its own.
        first, _ = failing.wait_for("response.done", 2)
        assert first["response"]["status"] == "cancelled"
        working.wait_for("response.done")
        assert DEFAULT_APOLOGY in failing.said()
        assert working.said() == "You said: Hello there."
        assert not working.of("error") and working.of("response.output_audio.delta")
        # The faulted session goes on: its next question is answered.
        ask(sessions[0], "Hello again.")
        failing.wait_for("response.done", 3)
        assert failing.said().endswith("You said: Hello again.")
    finally:
        for session in sessions:
            session.close()


@pytest.mark.parametrize(("host", "token", "refused"), [
    ("127.0.0.1", None, False), ("localhost", None, False), ("::1", None, False),
    ("0.0.0.0", None, True), ("192.168.1.5", None, True), ("0.0.0.0", "s3cret", False),
])  # fmt: skip
def test_binding_beyond_loopback_needs_a_token(host: str, token: str | None, refused: bool) -> None:
    config = {"host": host, "serve_token": token}
    if refused:
        with pytest.raises(ConfigError, match="--serve_token"):
            check_server(config)
    else:
        check_server(config)


@pytest.mark.parametrize(("door", "argv", "refusal"), [
    (serve_main, ["--input_wav", "q.wav"], "--input_wav is for python -m composition.local: "),
    (serve_main, ["--text"], "--text is for python -m composition.local: "),
    (local_main, ["--port", "9000", "--text"], "--port is for python -m composition.serve, "),
    (local_main, ["--serve_token", "s3cret"], "--serve_token is for python -m composition.serve, "),
])  # fmt: skip
def test_a_flag_of_the_other_entry_point_is_refused_in_one_line(
    door: Callable[[list[str]], int],
    argv: list[str],
    refusal: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICE_AGENT_PORT", "8800")  # the environment serves both: never refused
    code = door([*argv, "--print_config"])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "") and err.startswith(f"error: {refusal}") and err.count("\n") == 1


def test_a_due_timer_is_a_response_the_server_starts() -> None:
    """The reminder reaches a Realtime client as any response does, unasked."""
    clock = FakeClock()
    model = FakeLanguageModel(
        ['<tool_call>{"name": "set_timer", "arguments": {"duration": "five minutes"}}</tool_call>',
         "The timer is set."]
    )  # fmt: skip
    client = Client()
    session = opener(model, clock, "--tools", "timer")(client.send)
    session.start()
    try:
        ask(session, "Set a timer for five minutes.")
        client.wait_for("response.done")
        assert client.said() == "The timer is set."
        clock.advance(300.0)
        client.wait_for("response.created", 2)
        _, reminded = client.wait_for("response.done", 2)
        assert reminded["response"]["status"] == "completed"
        (item,) = reminded["response"]["output"]
        assert item["content"][0]["transcript"] == "Your timer for 5 minutes is done."
    finally:
        session.close()
