"""`LanguageModel` over `/v1/chat/completions` (OpenAI, vLLM, llama.cpp's server, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.openai_common import OpenAICompatibleModel
from domain.messages import ChatMessage

# llama.cpp's server slots, each with its own prompt cache (adapters/llama_server.py runs two).
CONVERSATION_SLOT = 0
BACKGROUND_SLOT = 1


class ChatCompletionsLanguageModel(OpenAICompatibleModel):
    """Constructor arguments: see `OpenAICompatibleModel`, plus two sampling settings that
    llama.cpp's and vLLM's servers accept beside the OpenAI ones, sent when given: `top_k` and
    `repeat_penalty` (1 = none; llama.cpp applies it even when decoding greedily). A
    configured reasoning effort goes out as `reasoning_effort`.

    `pinned_slots`, for llama.cpp's own server: the conversation's requests (replies, warm-up,
    `prime`) all go to one slot and background work to another, so the conversation's prompt
    stays in one slot's cache and each reply reads only what is new since the last request.
    Then `prime` reads a prompt ahead (asking for one token, the least a server generates), and
    a streamed request asks for the server's progress while it reads its prompt: a long prompt
    on a busy machine is not taken for a server that hung, and a request closed meanwhile is
    noticed at the next batch, not after the whole prompt."""

    def __init__(
        self,
        *,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        pinned_slots: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._pinned_slots = pinned_slots
        self._server_sampling = {
            name: value
            for name, value in (("top_k", top_k), ("repeat_penalty", repeat_penalty))
            if value is not None
        }

    def _create(
        self,
        messages: Sequence[ChatMessage],
        *,
        stream: bool,
        max_output_tokens: int | None,
        **options: Any,
    ) -> Any:
        common = self._common_options()
        extra_body = {**options.pop("extra_body", {}), **common.pop("extra_body", {})}
        options.update(common)
        if extra_body or self._server_sampling:
            options["extra_body"] = {**extra_body, **self._server_sampling}
        if self._reasoning_effort is not None:
            options["reasoning_effort"] = self._reasoning_effort
        if max_output_tokens is not None:
            options["max_completion_tokens"] = max_output_tokens
        if self._pinned_slots and stream:
            options["extra_body"] = {**options.get("extra_body", {}), "return_progress": True}
        return self._client.chat.completions.create(
            model=self.model,
            messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
            stream=stream,
            **options,
        )

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        if not self._pinned_slots:
            return
        with self._provider_failures():
            self._send(messages, stream=False, max_output_tokens=1)

    def _routing(self, background: bool) -> dict[str, Any]:
        if not self._pinned_slots:
            return {}
        return {"extra_body": {"id_slot": BACKGROUND_SLOT if background else CONVERSATION_SLOT}}

    def _read_event(self, event: Any) -> tuple[str, bool]:
        # The last chunk may carry only usage, with no choices.
        if not event.choices:
            return "", False
        choice = event.choices[0]
        return choice.delta.content or "", choice.finish_reason is not None

    def _read_reply(self, reply: Any) -> str:
        return str(reply.choices[0].message.content or "")
