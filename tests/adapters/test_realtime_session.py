"""A Realtime session's protocol, with hand-written fakes of the conversation and the models:
client events become the conversation's calls, the conversation's console becomes server
events, and every bad event is an `error` event on a session that goes on."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from adapters.realtime_session import Session
from domain.messages import FinalTranscript, PartialTranscript


class FakeAgent:
    def __init__(self) -> None:
        self.typed_texts: list[str] = []
        self.instructions: list[str] = []
        self.cancels = 0
        self.idle = True
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def typed(self, text: str) -> None:
        self.typed_texts.append(text)

    def cancel_reply(self) -> bool:
        self.cancels += 1
        return not self.idle

    def instruct(self, instructions: str) -> None:
        self.instructions.append(instructions)


class FakeStt:
    def __init__(self) -> None:
        self.heard: list[int] = []

    def warm_up(self) -> None:
        """Nothing to load."""

    def transcribe_partial(self, audio: bytes) -> PartialTranscript:
        raise AssertionError("a session transcribes whole commits only")

    def transcribe(self, audio: bytes) -> FinalTranscript:
        self.heard.append(len(audio))
        return FinalTranscript(" What time is it? ", "en")


class FakeVoice:
    def warm_up(self) -> None:
        """Nothing to load."""

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        yield bytes(640)


class Client:
    """The session, the events it sent, and the fakes behind it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.agent = FakeAgent()
        self.stt = FakeStt()
        self.parts: dict[str, Any] = {}

        def agents(audio: Any, console: Any, voice: Any) -> FakeAgent:
            self.parts.update(audio=audio, console=console, voice=voice)
            return self.agent

        self.session = Session(self.sent.append, agents, FakeVoice(), self.stt, "local-model")
        self.session.start()

    def send(self, event: Any) -> list[dict[str, Any]]:
        """The events the session sent in answer."""
        before = len(self.sent)
        self.session.handle(event)
        # Commits and responses are carried out in order on the session's worker: wait for it.
        self.session._worker.submit(lambda: None).result(timeout=5)
        return self.sent[before:]

    def types(self) -> list[str]:
        return [event["type"] for event in self.sent]

    def last_error(self) -> str:
        errors = [event["error"]["code"] for event in self.sent if event["type"] == "error"]
        return str(errors[-1])


@pytest.fixture
def client() -> Client:
    return Client()


def audio_event(seconds: float) -> dict[str, Any]:
    pcm = (np.sin(np.arange(int(24_000 * seconds)) / 8) * 8000).astype("<i2").tobytes()
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}


def test_a_session_starts_its_conversation_and_announces_itself(client: Client) -> None:
    assert client.agent.started
    created = client.sent[0]
    assert created["type"] == "session.created"
    assert created["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert created["session"]["audio"]["input"]["turn_detection"] == {"type": "server_vad"}
    client.session.close()
    assert client.agent.stopped


def test_session_update_sets_instructions_and_text_only_output(client: Client) -> None:
    [updated] = client.send({"type": "session.update", "session": {
        "type": "realtime", "instructions": "Answer like a pirate.",
        "output_modalities": ["text"]}})  # fmt: skip
    assert updated["type"] == "session.updated"
    assert updated["session"]["instructions"] == "Answer like a pirate."
    assert updated["session"]["output_modalities"] == ["text"]
    assert client.agent.instructions == ["Answer like a pirate."]
    assert list(client.parts["voice"].synthesize("Arr.", "en")) == []
    client.session.assistant("Arr.")
    assert client.sent[-1]["type"] == "response.output_text.delta"


@pytest.mark.parametrize("session", [
    {"audio": {"input": {"format": {"type": "audio/pcmu"}}}},
    {"audio": {"output": {"format": {"type": "audio/pcm", "rate": 16000}}}},
    {"output_modalities": ["video"]},
    {"audio": {"input": {"turn_detection": {"type": "push_to_talk"}}}},
    {"type": "transcription"},
])  # fmt: skip
def test_an_impossible_session_update_is_an_error_and_changes_nothing(
    client: Client, session: dict[str, Any]
) -> None:
    [answer] = client.send({"type": "session.update", "event_id": "e1",
                            "session": {"instructions": "x", **session}})  # fmt: skip
    assert answer["type"] == "error" and answer["error"]["event_id"] == "e1"
    assert client.agent.instructions == []
    assert list(client.parts["voice"].synthesize("Still spoken.", "en"))


@pytest.mark.parametrize(("event", "code"), [
    ({"type": "input_audio_buffer.append", "audio": "%%%not base64"}, "invalid_value"),
    ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()},
     "invalid_value"),
    ({"type": "input_audio_buffer.append"}, "invalid_value"),
    ({"type": "response.fly"}, "unknown_event"),
    (["a", "list"], "invalid_event"),
    ({"no": "type"}, "invalid_event"),
    ({"type": "conversation.item.create", "item": {"role": "system", "content": []}},
     "invalid_value"),
    ({"type": "response.create"}, "invalid_value"),
    ({"type": "input_audio_buffer.commit"}, "invalid_value"),
])  # fmt: skip
def test_bad_events_are_answered_with_an_error_and_the_session_goes_on(
    client: Client, event: Any, code: str
) -> None:
    [answer] = client.send(event)
    assert answer["type"] == "error" and answer["error"]["code"] == code
    assert answer["error"]["message"]
    [cleared] = client.send({"type": "input_audio_buffer.clear"})
    assert cleared["type"] == "input_audio_buffer.cleared"


def test_typed_words_are_answered_once_asked_and_not_echoed_as_a_transcript(
    client: Client,
) -> None:
    [added] = client.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "Hello there."}]}})  # fmt: skip
    assert added["type"] == "conversation.item.added" and added["item"]["id"]
    [created] = client.send({"type": "response.create"})
    assert created["type"] == "response.created"  # at once, before the model's first word
    assert client.agent.typed_texts == ["Hello there."]
    client.session.user("Hello there.")  # the conversation shows the typed words
    assert "conversation.item.input_audio_transcription.completed" not in client.types()


def test_a_second_response_while_one_is_in_flight_is_refused(client: Client) -> None:
    client.send({"type": "conversation.item.create", "item": {
        "role": "user", "content": [{"type": "input_text", "text": "Hi."}]}})  # fmt: skip
    client.agent.idle = False
    client.send({"type": "response.create"})
    assert client.last_error() == "conversation_already_has_active_response"
    assert client.agent.typed_texts == []


def test_with_turn_detection_off_the_client_commits_and_asks(client: Client) -> None:
    client.send({"type": "session.update",
                 "session": {"audio": {"input": {"turn_detection": None}}}})  # fmt: skip
    client.send(audio_event(0.05))
    client.send({"type": "input_audio_buffer.commit"})
    assert client.last_error() == "input_audio_buffer_commit_empty"
    client.send(audio_event(1.0))
    committed, transcribed = client.send({"type": "input_audio_buffer.commit"})
    assert committed["type"] == "input_audio_buffer.committed"
    assert transcribed["transcript"] == "What time is it?"
    assert transcribed["item_id"] == committed["item_id"]
    assert abs(client.stt.heard[-1] - 32_000) <= 640  # one second at 16 kHz, all of it
    client.send({"type": "response.create"})
    assert client.agent.typed_texts == ["What time is it?"]


def test_what_the_conversation_hears_and_says_becomes_server_events(client: Client) -> None:
    console = client.parts["console"]
    console.speech_started()
    console.live("What")
    console.live("What is")
    console.live("Was it")  # a hypothesis that took words back: no delta
    console.speech_stopped()
    console.user("What is it?")
    console.assistant("It is")
    console.assistant("a test.")
    console.reply_ended(cut_short=True)
    events = client.sent[1:]
    assert [e["type"] for e in events] == [
        "input_audio_buffer.speech_started",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.created",  # the answer is on its way from the end of the user's speech
        "conversation.item.input_audio_transcription.completed",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.delta",
        "response.done",
    ]
    item = events[0]["item_id"]
    assert {e.get("item_id") for e in events[:7]} == {item, None}
    assert [e["delta"] for e in events[1:3]] == ["What", " is"]
    assert events[6]["transcript"] == "What is it?"
    done = events[-1]["response"]
    assert done["id"] == events[5]["response"]["id"] == events[7]["response_id"]
    assert done["status"] == "cancelled"
    assert done["output"][0]["content"][0]["transcript"] == "It is a test."


def test_a_cough_over_the_reply_stops_the_speech_but_commits_nothing(client: Client) -> None:
    console = client.parts["console"]
    console.speech_started()
    console.speech_stopped(turn_ended=False)
    assert client.types()[-2:] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
    ]


def test_a_turn_that_ends_without_words_ends_its_response_with_nothing(client: Client) -> None:
    console = client.parts["console"]
    console.speech_started()
    console.speech_stopped()
    console.reply_ended()
    done = client.sent[-1]
    assert done["type"] == "response.done" and done["response"]["status"] == "cancelled"


def test_cancel_ends_the_reply_in_flight_or_says_there_is_none(client: Client) -> None:
    client.send({"type": "response.cancel"})
    assert client.last_error() == "response_cancel_not_active"
    client.agent.idle = False
    assert client.send({"type": "response.cancel"}) == []
    assert client.agent.cancels == 2
