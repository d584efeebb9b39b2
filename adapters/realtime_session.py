"""One Realtime connection: the client's events drive a conversation of its own, and what that
conversation hears, says and plays goes back as server events. The subset of OpenAI's Realtime
API (GA event names) that a voice conversation uses; a bad event is answered with an `error`
event and the session goes on.

The conversation is the local agent's, unchanged: its audio is the client's (`SessionAudio`),
its console is this session (transcripts and replies become events), its voice can be switched
off (`output_modalities: ["text"]`). With turn detection on (the default) the server ends turns
as locally, with barge-in; off, the client commits what it said and asks for the response.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import attrs

from adapters.realtime_audio import WIRE_RATE, SessionAudio
from ports.agent import AgentFactory
from ports.speech_to_text import SpeechToText
from ports.text_to_speech import TextToSpeech

log = logging.getLogger(__name__)

Event = dict[str, Any]
PCM_FORMAT = {"type": "audio/pcm", "rate": WIRE_RATE}
SERVER_VAD = {"type": "server_vad"}
# A commit of less audio than this is refused, as OpenAI's server does.
MIN_COMMIT_MS = 100


class BadEvent(ValueError):
    """A client event that cannot be carried out: answered with an `error` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SwitchableVoice:
    """The shared voice, or none while the client asked for text only."""

    def __init__(self, voice: TextToSpeech) -> None:
        self._voice = voice
        self.on = True

    def warm_up(self) -> None:
        """The shared voice warmed up when the server started."""

    def synthesize(self, text: str, language: str | None) -> Iterator[bytes]:
        return self._voice.synthesize(text, language) if self.on else iter(())


@attrs.define
class _Response:
    id: str
    item_id: str
    transcript: str = ""


class Session:
    """Not a thread of its own: `handle` runs on the connection's thread, the console methods
    on the conversation's, `_played` on the session audio's clock thread."""

    def __init__(
        self,
        send: Callable[[Event], None],
        agents: AgentFactory,
        voice: TextToSpeech,
        stt: SpeechToText,
        model: str,
    ) -> None:
        self._send_event = send
        self._stt = stt
        self._lock = threading.Lock()  # ids, the response in flight, the user's item
        self._ids = itertools.count(1)
        self._id = self._new_id("sess")
        self._model = model
        self._audio = SessionAudio(self._played)
        self._voice = SwitchableVoice(voice)
        self._agent = agents(self._audio, self, self._voice)
        self._instructions: str | None = None
        self._turn_detection: Event | None = dict(SERVER_VAD)
        self._pending: list[str] = []  # the user's words not answered yet (text, or committed)
        self._typed = 0  # typed turns whose words the conversation will echo to `user`
        self._response: _Response | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="session-in-order")
        self._user_item: str | None = None
        self._live = ""

    def start(self) -> None:
        self._agent.start()
        self._send("session.created", session=self._session())

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        self._agent.stop()

    # -- client events ----------------------------------------------------------------------

    def handle(self, event: Any) -> None:
        """One client event, already parsed from JSON."""
        client_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise BadEvent("invalid_event", 'an event is a JSON object with a "type"')
            handler = self._HANDLERS.get(event["type"])
            if handler is None:
                raise BadEvent("unknown_event", f"unknown event type {event['type']!r}")
            handler(self, event)
        except BadEvent as error:
            self.error(error.code, str(error), client_id)

    def error(self, code: str, message: str, client_event_id: str | None = None) -> None:
        self._send("error", error={
            "type": "invalid_request_error", "code": code, "message": message,
            "param": None, "event_id": client_event_id,
        })  # fmt: skip

    def _session_update(self, event: Event) -> None:
        session = event.get("session")
        if not isinstance(session, dict):
            raise BadEvent("invalid_value", 'session.update needs a "session" object')
        if session.get("type", "realtime") != "realtime":
            raise BadEvent("invalid_value", 'only "realtime" sessions are served')
        instructions = session.get("instructions", self._instructions)
        if instructions is not None and not isinstance(instructions, str):
            raise BadEvent("invalid_value", "instructions are a string")
        modalities = session.get("output_modalities", ["audio" if self._voice.on else "text"])
        if modalities not in (["audio"], ["text"]):
            raise BadEvent("invalid_value", 'output_modalities is ["audio"] or ["text"]')
        audio = session.get("audio") or {}
        heard = audio.get("input") or {}
        said = audio.get("output") or {}
        for part in (heard, said):
            _check_format(part.get("format"))
        detection = heard.get("turn_detection", self._turn_detection)
        if detection is not None and (
            not isinstance(detection, dict)
            or detection.get("type") not in ("server_vad", "semantic_vad")
        ):
            raise BadEvent("invalid_value", 'turn_detection is null or {"type": "server_vad"}')
        # Valid as a whole: applied.
        if instructions != self._instructions and instructions is not None:
            self._agent.instruct(instructions)
        self._instructions = instructions
        self._voice.on = modalities == ["audio"]
        if (detection is None) != (self._turn_detection is None):
            self._audio.hear(detection is not None)
        self._turn_detection = None if detection is None else dict(SERVER_VAD)
        self._send("session.updated", session=self._session())

    def _append(self, event: Event) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise BadEvent("invalid_value", 'input_audio_buffer.append needs base64 "audio"')
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise BadEvent("invalid_value", "the audio is not valid base64") from None
        if len(pcm) % 2:
            raise BadEvent("invalid_value", "pcm16 audio has 2 bytes a sample: got an odd count")
        self._audio.append(pcm)

    def _commit(self, event: Event) -> None:
        if self._turn_detection is not None:
            raise BadEvent(
                "invalid_value",
                "turn detection is on: the server commits when the user stops; turn it off "
                "(session.update, turn_detection null) to commit yourself",
            )
        held = self._audio.take_held()
        if len(held) < MIN_COMMIT_MS * 32:  # 16 kHz pcm16: 32 bytes a millisecond
            raise BadEvent("input_audio_buffer_commit_empty", "less than 100 ms of audio")
        item_id = self._new_id("item")
        self._send("input_audio_buffer.committed", item_id=item_id, previous_item_id=None)

        def transcribe() -> None:
            text = self._stt.transcribe(held).text.strip()
            self._send(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id, content_index=0, transcript=text,
            )  # fmt: skip
            if text:
                with self._lock:
                    self._pending.append(text)

        self._in_order(transcribe, event)

    def _clear(self, event: Event) -> None:
        self._audio.clear()
        self._send("input_audio_buffer.cleared")

    def _create_item(self, event: Event) -> None:
        item = event.get("item")
        content = item.get("content") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or item.get("role") != "user"
            or not isinstance(content, list)
        ):
            raise BadEvent("invalid_value", "only the user's messages can be added")
        texts = [
            part["text"] for part in content
            if isinstance(part, dict) and part.get("type") == "input_text"
            and isinstance(part.get("text"), str)
        ]  # fmt: skip
        text = " ".join(t.strip() for t in texts if t.strip())
        if not text:
            raise BadEvent("invalid_value", "the message has no input_text")
        with self._lock:
            self._pending.append(text)
        added = {**item, "id": item.get("id") or self._new_id("item"), "type": "message",
                 "status": "completed"}  # fmt: skip
        self._send("conversation.item.added", previous_item_id=None, item=added)

    def _create_response(self, event: Event) -> None:
        self._in_order(self._answer, event)  # after the words committed before it

    def _answer(self) -> None:
        if not self._agent.idle:
            raise BadEvent(
                "conversation_already_has_active_response",
                "a response is in progress: wait for response.done or send response.cancel",
            )
        with self._lock:
            text = " ".join(self._pending)
            self._pending.clear()
            if text:
                self._typed += 1
        if not text:
            raise BadEvent("invalid_value", "nothing to answer: add the user's words first")
        self._responding()
        self._agent.typed(text)

    def _cancel(self, event: Event) -> None:
        if not self._agent.cancel_reply():
            raise BadEvent("response_cancel_not_active", "no response to cancel")

    def _truncate(self, event: Event) -> None:
        # The history already keeps only what was sent to the client before it spoke over the
        # reply (the session plays at the pace the client hears): acknowledged as done.
        self._send(
            "conversation.item.truncated", item_id=event.get("item_id"),
            content_index=event.get("content_index", 0), audio_end_ms=event.get("audio_end_ms"),
        )  # fmt: skip

    def _in_order(self, work: Callable[[], None], event: Event) -> None:
        """`work` on the session's own worker, in the order the events came, so a slow
        transcription never holds back the client's next events (a cancel)."""

        def run() -> None:
            try:
                work()
            except BadEvent as error:
                self.error(error.code, str(error), event.get("event_id"))
            except Exception as error:  # a model that failed: this request's error, no more
                log.warning("session %s: %s failed: %s", self._id, event["type"], error)
                self.error(
                    "server_error", f"{event['type']} failed: {error}", event.get("event_id")
                )

        self._worker.submit(run)

    _HANDLERS: ClassVar[dict[str, Callable[[Session, Event], None]]] = {
        "session.update": _session_update,
        "input_audio_buffer.append": _append,
        "input_audio_buffer.commit": _commit,
        "input_audio_buffer.clear": _clear,
        "conversation.item.create": _create_item,
        "response.create": _create_response,
        "response.cancel": _cancel,
        "conversation.item.truncate": _truncate,
    }

    # -- the conversation's console ---------------------------------------------------------

    def live(self, text: str) -> None:
        with self._lock:
            item_id, said = self._user_item, self._live
            if item_id is None or not text.startswith(said) or text == said:
                return  # a hypothesis that took back words: the completed transcript corrects it
            self._live = text
        self._send(
            "conversation.item.input_audio_transcription.delta",
            item_id=item_id, content_index=0, delta=text[len(said):],
        )  # fmt: skip

    def user(self, text: str) -> None:
        with self._lock:
            if self._typed:  # the client's own words, already added as an item
                self._typed -= 1
                return
            item_id = self._user_item or self._new_id("item")
            self._user_item, self._live = None, ""
        self._send(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id, content_index=0, transcript=text,
        )  # fmt: skip

    def assistant(self, text: str) -> None:
        response = self._responding()
        with self._lock:
            delta = f" {text}" if response.transcript else text
            response.transcript += delta
        kind = "response.output_audio_transcript.delta" if self._voice.on else (
            "response.output_text.delta")  # fmt: skip
        self._send(kind, response_id=response.id, item_id=response.item_id, output_index=0,
                   content_index=0, delta=delta)  # fmt: skip

    def reply_ended(self, cut_short: bool = False) -> None:
        with self._lock:
            response, self._response = self._response, None
        if response is None:
            return
        content = "output_audio" if self._voice.on else "output_text"
        text_key = "transcript" if self._voice.on else "text"
        self._send("response.done", response={
            "id": response.id, "object": "realtime.response",
            "status": "cancelled" if cut_short or not response.transcript else "completed",
            "output": [{
                "id": response.item_id, "type": "message", "role": "assistant",
                "status": "incomplete" if cut_short else "completed",
                "content": [{"type": content, text_key: response.transcript}],
            }],
        })  # fmt: skip

    def notice(self, text: str) -> None:
        log.info("session %s: %s", self._id, text)

    def speech_started(self) -> None:
        with self._lock:
            self._user_item, self._live = self._new_id("item"), ""
            item_id = self._user_item
        self._send("input_audio_buffer.speech_started", audio_start_ms=self._audio.now_ms,
                   item_id=item_id)  # fmt: skip

    def speech_stopped(self, turn_ended: bool = True) -> None:
        with self._lock:
            item_id = self._user_item or self._new_id("item")
            self._user_item = item_id if turn_ended else None
        self._send("input_audio_buffer.speech_stopped", audio_end_ms=self._audio.now_ms,
                   item_id=item_id)  # fmt: skip
        if turn_ended:
            self._send("input_audio_buffer.committed", item_id=item_id, previous_item_id=None)
            self._responding()  # the answer is on its way

    # -- plumbing ---------------------------------------------------------------------------

    def _played(self, pcm24: bytes) -> None:
        """Reply audio, as the client should hear it now."""
        response = self._responding()
        self._send("response.output_audio.delta", response_id=response.id,
                   item_id=response.item_id, output_index=0, content_index=0,
                   delta=base64.b64encode(pcm24).decode("ascii"))  # fmt: skip

    def _responding(self) -> _Response:
        """The response in flight, announced when it is the first of its kind."""
        with self._lock:
            response = self._response
            if response is None:
                response = self._response = _Response(self._new_id("resp"), self._new_id("item"))
                created = True
            else:
                created = False
        if created:
            self._send("response.created", response={
                "id": response.id, "object": "realtime.response", "status": "in_progress",
                "output": [],
            })  # fmt: skip
        return response

    def _session(self) -> Event:
        return {
            "type": "realtime", "object": "realtime.session", "id": self._id,
            "model": self._model, "instructions": self._instructions or "",
            "output_modalities": ["audio" if self._voice.on else "text"],
            "audio": {
                "input": {"format": PCM_FORMAT, "turn_detection": self._turn_detection},
                "output": {"format": PCM_FORMAT},
            },
        }  # fmt: skip

    def _new_id(self, kind: str) -> str:
        return f"{kind}_{next(self._ids)}"

    def _send(self, kind: str, **fields: Any) -> None:
        self._send_event({"type": kind, "event_id": self._new_id("event"), **fields})


def _check_format(audio_format: Any) -> None:
    """pcm16 mono at 24 kHz, as GA (`audio/pcm`, rate 24000) or beta (`pcm16`) names it."""
    if audio_format is None or audio_format == "pcm16":
        return
    if (
        isinstance(audio_format, dict)
        and audio_format.get("type") == "audio/pcm"
        and audio_format.get("rate", WIRE_RATE) == WIRE_RATE
    ):
        return
    raise BadEvent(
        "invalid_value",
        f"unsupported audio format {audio_format!r}: pcm16 mono at 24 kHz "
        '({"type": "audio/pcm", "rate": 24000})',
    )
