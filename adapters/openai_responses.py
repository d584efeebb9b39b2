"""`LanguageModel` over `/v1/responses` (OpenAI, llama.cpp's server, HF router, ...).

The whole history goes out on every turn: llama.cpp rejects `previous_response_id`, and
nothing is stored at the provider (`store=False`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from adapters.openai_common import OpenAICompatibleModel, with_call_ids, written_call
from domain.messages import ChatMessage
from domain.tools import ToolSpec
from ports.language_model import LanguageModelError

# Events that end a reply normally; "incomplete" is a reply cut at `max_output_tokens`.
_FINISHED = {"response.completed", "response.incomplete"}
_FAILED = {"response.failed", "error"}


class ResponsesLanguageModel(OpenAICompatibleModel):
    """Constructor arguments: see `OpenAICompatibleModel`. A configured reasoning effort goes
    out as `reasoning={"effort": ...}`."""

    def _create(
        self,
        messages: Sequence[ChatMessage],
        *,
        stream: bool,
        max_output_tokens: int | None,
        tools: Sequence[ToolSpec],
        **options: Any,
    ) -> Any:
        options.update(self._common_options())
        if tools:
            options["tools"] = [
                {"type": "function", "name": t.name, "description": t.description,
                 "parameters": t.parameters}
                for t in tools
            ]  # fmt: skip
        if self._reasoning_effort is not None:
            options["reasoning"] = {"effort": self._reasoning_effort}
        if max_output_tokens is not None:
            options["max_output_tokens"] = max_output_tokens
        return self._client.responses.create(
            model=self.model,
            input=self._wire(messages),
            stream=stream,
            store=False,
            **options,
        )

    def _wire(self, messages: Sequence[ChatMessage]) -> Any:
        """The API's input items (llama.cpp wants the explicit "type": "message" on each): a
        call the model made as a `function_call` item, its result as `function_call_output`."""
        wired: list[dict[str, Any]] = []
        for message, call, call_id in with_call_ids(messages, self._tool_names()):
            if call is not None:
                wired.append({"type": "function_call", "call_id": call_id, "name": call.name,
                              "arguments": json.dumps(call.arguments)})  # fmt: skip
            elif message.role == "tool":
                wired.append({"type": "function_call_output", "call_id": call_id,
                              "output": message.content})  # fmt: skip
            else:
                wired.append({"type": "message", "role": message.role, "content": message.content})
        return wired

    def _read_event(self, event: Any) -> tuple[str, bool]:
        if event.type == "response.output_text.delta":
            return event.delta, False
        if event.type == "response.output_item.done" and event.item.type == "function_call":
            return written_call(event.item.name, event.item.arguments), False
        if event.type in _FAILED:
            raise LanguageModelError(f"{self._host} failed mid-reply: {_event_error(event)}")
        return "", event.type in _FINISHED

    def _read_reply(self, reply: Any) -> str:
        calls = [item for item in reply.output if item.type == "function_call"]
        if calls:
            return written_call(calls[0].name, calls[0].arguments)
        return str(reply.output_text)


def _event_error(event: Any) -> str:
    error = getattr(getattr(event, "response", None), "error", None) or event
    return str(getattr(error, "message", "") or "unknown error")[:160]
