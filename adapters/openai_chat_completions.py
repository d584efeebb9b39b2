"""`LanguageModel` over `/v1/chat/completions` (OpenAI, vLLM, llama.cpp's server, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.openai_common import OpenAICompatibleModel
from domain.messages import ChatMessage


class ChatCompletionsLanguageModel(OpenAICompatibleModel):
    """Constructor arguments: see `OpenAICompatibleModel`. A configured reasoning effort goes
    out as `reasoning_effort`."""

    def _create(
        self, messages: Sequence[ChatMessage], *, stream: bool, max_output_tokens: int | None
    ) -> Any:
        options = self._common_options()
        if self._reasoning_effort is not None:
            options["reasoning_effort"] = self._reasoning_effort
        if max_output_tokens is not None:
            options["max_completion_tokens"] = max_output_tokens
        return self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
            stream=stream,
            **options,
        )

    def _read_event(self, event: Any) -> tuple[str, bool]:
        # The last chunk may carry only usage, with no choices.
        if not event.choices:
            return "", False
        choice = event.choices[0]
        return choice.delta.content or "", choice.finish_reason is not None

    def _read_reply(self, reply: Any) -> str:
        return str(reply.choices[0].message.content or "")
