"""`LanguageModel` over `/v1/chat/completions` (OpenAI, vLLM, llama.cpp's server, ...)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from adapters.openai_common import OpenAICompatibleModel, with_call_ids, written_call
from domain.messages import ChatMessage
from domain.tools import ToolSpec

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
        tools: Sequence[ToolSpec],
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
        if tools:
            options["tools"] = [tool.function for tool in tools]
        return self._client.chat.completions.create(
            model=self.model,
            messages=self._wire(messages),
            stream=stream,
            **options,
        )

    def _wire(self, messages: Sequence[ChatMessage]) -> Any:
        """The API's messages: a call the model made as the assistant's `tool_calls`, its
        result as a `tool` message answering it."""
        wired: list[dict[str, Any]] = []
        for message, call, call_id in with_call_ids(messages, self._tool_names()):
            if call is not None:
                wired.append(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": call_id,
                                "type": "function",
                                "function": {
                                    "name": call.name,
                                    "arguments": json.dumps(call.arguments),
                                },
                            }
                        ],
                    }
                )
            elif message.role == "tool":
                wired.append({"role": "tool", "tool_call_id": call_id, "content": message.content})
            else:
                wired.append({"role": message.role, "content": message.content})
        return wired

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        if not self._pinned_slots:
            return
        with self._provider_failures():
            # With the tools, as the reply will be asked: the template writes them in its prompt.
            self._send(messages, stream=False, max_output_tokens=1, tools=self._tools)

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

    def _event_reader(self) -> Callable[[Any], tuple[str, bool]]:
        name, arguments = "", ""  # the first call's pieces, as they stream

        def read(event: Any) -> tuple[str, bool]:
            nonlocal name, arguments
            text, finished = self._read_event(event)
            for piece in (event.choices[0].delta.tool_calls or []) if event.choices else []:
                if piece.index == 0 and piece.function is not None:
                    name += piece.function.name or ""
                    arguments += piece.function.arguments or ""
            if finished and name:
                text += written_call(name, arguments)
            return text, finished

        return read

    def _read_reply(self, reply: Any) -> str:
        message = reply.choices[0].message
        calls = message.tool_calls or []
        if calls:
            return written_call(calls[0].function.name, calls[0].function.arguments)
        return str(message.content or "")
