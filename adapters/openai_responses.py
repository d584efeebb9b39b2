"""`LanguageModel` over `/v1/responses` (OpenAI, llama.cpp's server, HF router, ...).

The whole history goes out on every turn: llama.cpp rejects `previous_response_id`, and
nothing is stored at the provider (`store=False`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.openai_common import OpenAICompatibleModel
from domain.messages import ChatMessage
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
        **options: Any,
    ) -> Any:
        options.update(self._common_options())
        if self._reasoning_effort is not None:
            options["reasoning"] = {"effort": self._reasoning_effort}
        if max_output_tokens is not None:
            options["max_output_tokens"] = max_output_tokens
        return self._client.responses.create(
            model=self.model,
            # llama.cpp wants the explicit "type": "message" on every input item.
            input=[
                {"type": "message", "role": m.role, "content": m.content}  # type: ignore[misc]
                for m in messages
            ],
            stream=stream,
            store=False,
            **options,
        )

    def _read_event(self, event: Any) -> tuple[str, bool]:
        if event.type == "response.output_text.delta":
            return event.delta, False
        if event.type in _FAILED:
            raise LanguageModelError(f"{self._host} failed mid-reply: {_event_error(event)}")
        return "", event.type in _FINISHED

    def _read_reply(self, reply: Any) -> str:
        return str(reply.output_text)


def _event_error(event: Any) -> str:
    error = getattr(getattr(event, "response", None), "error", None) or event
    return str(getattr(error, "message", "") or "unknown error")[:160]
