"""What the Responses and Chat Completions adapters share: the endpoint and key rules, thinking
suppression, streaming with cancellation, and turning provider failures into short errors.

Each adapter supplies only its request and how to read its replies and stream events.
"""

from __future__ import annotations

import ipaddress
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from adapters.errors import SetupError
from domain.messages import ChatMessage
from ports.language_model import Cancellation, LanguageModelError

if TYPE_CHECKING:
    from openai import OpenAI

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-5.4-mini"
# Sent to servers that need no key (a local llama.cpp or vLLM): the client insists on one.
PLACEHOLDER_KEY = "not-needed"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_RETRIES = 2
# Enough for any provider's minimum (the Responses API refuses fewer than 16 output tokens).
WARM_UP_TOKENS = 16
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*.\-]+")


def is_loopback(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_official(base_url: str) -> bool:
    return urlsplit(base_url).hostname == "api.openai.com"


def resolve_api_key(api_key: str | None, base_url: str) -> str:
    """The configured key, else OPENAI_API_KEY; a placeholder where none is needed (a loopback
    server, or one that takes any key). The official URL without a key fails here, at
    start-up, before any request."""
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if is_official(base_url):
        raise SetupError(
            "No OpenAI API key: set OPENAI_API_KEY or pass --responses_api_api_key, "
            "or point --responses_api_base_url at a local server"
        )
    return PLACEHOLDER_KEY


class OpenAICompatibleModel(ABC):
    """`LanguageModel` over an OpenAI-compatible HTTP API through the `openai` client.

    - `api_key` falls back to OPENAI_API_KEY; a loopback `base_url` needs none.
    - `reasoning_effort`, when set, is always sent. Otherwise `disable_thinking` asks
      non-OpenAI servers to render their chat template with `enable_thinking=False`.
    - `stream=False` waits for the whole reply and yields it as one delta.
    - `max_output_tokens` caps a reply (None: the provider's default).
    - `temperature` and `top_p` are sent when given (None: the provider's default).
    - The client's retries stay on (`max_retries`); `timeout_s` bounds each wait, including
      the gap between two streamed events.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        stream: bool = True,
        disable_thinking: bool = True,
        reasoning_effort: str | None = None,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise SetupError("The openai client is missing: run `pip install openai`") from None
        self.base_url = base_url or OFFICIAL_BASE_URL
        self._api_key = resolve_api_key(api_key, self.base_url)
        self.model = model
        self._stream = stream
        self._reasoning_effort = reasoning_effort
        self._disable_template_thinking = (
            disable_thinking and reasoning_effort is None and not is_official(self.base_url)
        )
        self._max_output_tokens = max_output_tokens
        self._sampling = {
            name: value
            for name, value in (("temperature", temperature), ("top_p", top_p))
            if value is not None
        }
        # A proxy from the environment (HTTP_PROXY) must not carry requests to a local server.
        local = is_loopback(self.base_url)
        self._client: OpenAI = openai.OpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=openai.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            max_retries=max_retries,
            http_client=openai.DefaultHttpxClient(trust_env=False) if local else None,
        )

    def stream(self, messages: Sequence[ChatMessage], cancel: Cancellation) -> Iterator[str]:
        if not self._stream:
            reply = self.complete(messages)
            if not cancel.is_set():
                yield reply
            return
        with self._provider_failures():
            events = self._create(messages, stream=True, max_output_tokens=self._max_output_tokens)
            try:
                for event in events:
                    if cancel.is_set():
                        return
                    delta, finished = self._read_event(event)
                    if delta:
                        yield delta
                    if finished:
                        return
            finally:
                # Closing the response tells the server to stop generating.
                events.close()
        raise LanguageModelError(f"the reply from {self._host} stopped before it was complete")

    def complete(self, messages: Sequence[ChatMessage]) -> str:
        with self._provider_failures():
            reply = self._create(messages, stream=False, max_output_tokens=self._max_output_tokens)
            return self._read_reply(reply)

    def warm_up(self) -> None:
        """One tiny request, so the first reply does not pay the connection and server warm-up
        (~0.7 s on a fresh llama.cpp server). It costs tokens on a paid provider."""
        with self._provider_failures():
            self._create(
                [ChatMessage("user", "Hi")], stream=False, max_output_tokens=WARM_UP_TOKENS
            )

    @abstractmethod
    def _create(
        self, messages: Sequence[ChatMessage], *, stream: bool, max_output_tokens: int | None
    ) -> Any:
        """Send the request: a stream of events when `stream`, else the whole reply."""

    @abstractmethod
    def _read_event(self, event: Any) -> tuple[str, bool]:
        """The text delta an event carries, and whether it ends the reply. Raises
        `LanguageModelError` on an error event."""

    @abstractmethod
    def _read_reply(self, reply: Any) -> str:
        """The text of a whole (non-streamed) reply."""

    def _common_options(self) -> dict[str, Any]:
        """Sampling settings when given (a local server's own default temperature is not 0),
        and `extra_body` for servers whose chat template can turn thinking off."""
        options: dict[str, Any] = dict(self._sampling)
        if self._disable_template_thinking:
            options["extra_body"] = {"chat_template_kwargs": {"enable_thinking": False}}
        return options

    @property
    def _host(self) -> str:
        return urlsplit(self.base_url).hostname or self.base_url

    def _redact(self, text: str) -> str:
        text = text.replace(self._api_key, "[key]") if self._api_key else text
        return _KEY_LIKE.sub("[key]", text)

    @contextmanager
    def _provider_failures(self) -> Iterator[None]:
        """Every provider failure leaves as one `LanguageModelError` with a short message that
        names the host and never the key."""
        import openai

        try:
            yield
        except LanguageModelError as error:
            raise LanguageModelError(self._redact(str(error))) from None
        except openai.APITimeoutError:
            raise LanguageModelError(f"{self._host} did not answer in time") from None
        except openai.APIConnectionError:
            raise LanguageModelError(f"cannot reach {self._host}, or it hung up") from None
        except openai.APIStatusError as error:
            detail = self._redact(_error_message(error.body))[:160]
            status = f"{self._host} answered HTTP {error.status_code}"
            raise LanguageModelError(f"{status}: {detail}" if detail else status) from None
        except openai.OpenAIError as error:
            raise LanguageModelError(
                f"{self._host} failed: {self._redact(str(error))[:160]}"
            ) from None


def _error_message(body: object) -> str:
    """The human part of an error body: the client hands over {"message": ...} or plain text."""
    if isinstance(body, dict):
        body = body.get("message")
    return body.strip() if isinstance(body, str) else ""
