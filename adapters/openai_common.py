"""What the Responses and Chat Completions adapters share: the endpoint and key rules, thinking
suppression, streaming with cancellation, and turning provider failures into short errors.

Each adapter supplies only its request and how to read its replies and stream events.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from adapters.errors import SetupError
from domain.messages import ChatMessage
from domain.tools import ToolCall, ToolSpec, parse_call
from ports.language_model import Cancellation, LanguageModelError

if TYPE_CHECKING:
    from openai import OpenAI

OFFICIAL_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-5.4-mini"
# Sent to servers that need no key (a local llama.cpp or vLLM): the client insists on one.
PLACEHOLDER_KEY = "not-needed"
# A hung provider must fail before the conversation's watchdog (30 s by default) gives up on the
# turn in silence: every wait for a byte (the reply's first, or the next streamed chunk) is
# bounded by the timeout, and one retry is allowed, only before any text and only for a failed
# connection or a "try again" status (a server that timed out once is not asked again).
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_RETRIES = 1
CONNECT_TIMEOUT_S = 3.0
RETRY_PAUSE_S = 0.25
_RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Background work (history compaction) and a reply asked for whole may wait this long.
BACKGROUND_TIMEOUT_S = 120.0
# Enough for any provider's minimum (the Responses API refuses fewer than 16 output tokens).
WARM_UP_TOKENS = 16
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*.\-]+")


def longest_wait_s(timeout_s: float, max_retries: int = DEFAULT_MAX_RETRIES) -> float:
    """The longest a reply can wait for a byte before `LanguageModelError`: each attempt may
    spend the connect timeout and then `timeout_s`, with a pause before a retry."""
    attempt = min(timeout_s, CONNECT_TIMEOUT_S) + timeout_s
    return round((1 + max_retries) * attempt + max_retries * RETRY_PAUSE_S, 2)


def is_loopback(base_url: str) -> bool:
    return is_loopback_host(urlsplit(base_url).hostname or "")


def is_loopback_host(host: str) -> bool:
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
    - `timeout_s` bounds every wait for a byte: the reply's first, and the gap between two
      streamed chunks (a stream that stalls mid-reply raises `LanguageModelError`).
      `max_retries` more attempts are made, only before any text, after a failed connection
      or a 408/429/5xx status; never after a timeout. `longest_wait_s` is the worst case.
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
        warm_up_prompt: Sequence[ChatMessage] = (ChatMessage("user", "Hi"),),
        tools: Sequence[ToolSpec] = (),
    ) -> None:
        """`warm_up_prompt`: what `warm_up` asks. A server that caches prompts (llama.cpp) is
        best warmed with the first reply's own system prompt, which it then need not read.
        `tools`: offered with every request of the conversation (not background work); a call
        comes back in the reply's canonical form (domain/tools.py)."""
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
        self._warm_up_prompt = list(warm_up_prompt)
        self._tools = tuple(tools)
        self._sampling = {
            name: value
            for name, value in (("temperature", temperature), ("top_p", top_p))
            if value is not None
        }
        # A proxy from the environment (HTTP_PROXY) must not carry requests to a local server.
        local = is_loopback(self.base_url)
        self.timeout_s = timeout_s
        self._max_retries = max_retries
        self._client: OpenAI = openai.OpenAI(
            api_key=self._api_key,
            base_url=self.base_url,
            timeout=openai.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S)),
            max_retries=0,  # retried here, where a timeout is told apart from a failed connection
            http_client=openai.DefaultHttpxClient(trust_env=False) if local else None,
        )

    @property
    def prompt_budget(self) -> int | None:
        """Unknown: a provider's models and their contexts are its own."""
        return None

    @property
    def background_yields(self) -> bool:
        """A remote provider serves a summary beside a reply; a server on this machine (one
        llama.cpp slot, say) may not, so a summary gives way to the reply there."""
        return not is_loopback(self.base_url)

    def count_tokens(self, text: str) -> int | None:
        return None

    def stream(
        self,
        messages: Sequence[ChatMessage],
        cancel: Cancellation,
        *,
        background: bool = False,
        max_output_tokens: int | None = None,
        offer_tools: bool = True,
    ) -> Iterator[str]:
        """`max_output_tokens`, when given, caps this reply instead of the configured cap."""
        tools = self._tools if offer_tools and not background else ()
        if not self._stream:
            reply = self._whole(messages, background=background, tools=tools)
            if not cancel.is_set():
                yield reply
            return
        with self._provider_failures():
            events = self._send(
                messages,
                stream=True,
                max_output_tokens=max_output_tokens or self._max_output_tokens,
                timeout_s=self._background_timeout_s if background else None,
                background=background,
                tools=tools,
            )
            read = self._event_reader()
            try:
                for event in events:
                    if cancel.is_set():
                        return
                    delta, finished = read(event)
                    if delta:
                        yield delta
                    if finished:
                        return
            finally:
                # Closing the response tells the server to stop generating.
                events.close()
        raise LanguageModelError(f"the reply from {self._host} stopped before it was complete")

    def _whole(
        self, messages: Sequence[ChatMessage], *, background: bool, tools: Sequence[ToolSpec]
    ) -> str:
        with self._provider_failures():
            reply = self._send(
                messages,
                stream=False,
                max_output_tokens=self._max_output_tokens,
                timeout_s=self._background_timeout_s,
                background=background,
                tools=tools,
            )
            return self._read_reply(reply)

    @property
    def _background_timeout_s(self) -> float:
        """No watchdog waits for a whole reply or for background work."""
        return max(self.timeout_s, BACKGROUND_TIMEOUT_S)

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Nothing: a provider's own prompt cache needs no help, and a request made only to read
        a prompt would be billed."""
        return None

    def warm_up(self) -> None:
        """One tiny request, so the first reply does not pay the connection and server warm-up
        (~0.7 s on a fresh llama.cpp server). It costs tokens on a paid provider."""
        with self._provider_failures():
            self._send(
                self._warm_up_prompt, stream=False, max_output_tokens=WARM_UP_TOKENS,
                tools=self._tools,
            )  # fmt: skip

    def _send(
        self,
        messages: Sequence[ChatMessage],
        *,
        stream: bool,
        max_output_tokens: int | None,
        timeout_s: float | None = None,
        background: bool = False,
        tools: Sequence[ToolSpec] = (),
    ) -> Any:
        """`_create` with the retry policy: before any text, after a failed connection or a
        "try again" status, at most `max_retries` times; a timeout is final. `background`:
        not part of the conversation (history compaction)."""
        import openai

        options = self._routing(background)
        if timeout_s is not None:
            options["timeout"] = timeout_s
        for retries_left in range(self._max_retries, -1, -1):
            try:
                return self._create(
                    messages, stream=stream, max_output_tokens=max_output_tokens,
                    tools=tools, **options,
                )  # fmt: skip
            except openai.APITimeoutError:
                raise
            except openai.APIStatusError as error:
                if not retries_left or error.status_code not in _RETRIED_STATUSES:
                    raise
            except openai.APIConnectionError:
                if not retries_left:
                    raise
            time.sleep(RETRY_PAUSE_S)
        raise AssertionError("unreachable")

    @abstractmethod
    def _create(
        self,
        messages: Sequence[ChatMessage],
        *,
        stream: bool,
        max_output_tokens: int | None,
        tools: Sequence[ToolSpec],
        **options: Any,
    ) -> Any:
        """Send the request: a stream of events when `stream`, else the whole reply, with
        `tools` offered. `options` go to the client as they are (a per-request `timeout`)."""

    @abstractmethod
    def _read_event(self, event: Any) -> tuple[str, bool]:
        """The text delta an event carries, and whether it ends the reply. Raises
        `LanguageModelError` on an error event."""

    def _event_reader(self) -> Callable[[Any], tuple[str, bool]]:
        """`_read_event` for one stream; an API whose tool calls come in pieces across events
        gathers them here, and hands the call on, written, at its end."""
        return self._read_event

    def _tool_names(self) -> list[str]:
        return [tool.name for tool in self._tools]

    @abstractmethod
    def _read_reply(self, reply: Any) -> str:
        """The text of a whole (non-streamed) reply."""

    def _routing(self, background: bool) -> dict[str, Any]:
        """Client options that steer a request inside the server; none by default."""
        return {}

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
            raise ProviderTimeout(
                f"{self._host} did not answer in time (nothing for {self.timeout_s:g} s)"
            ) from None
        except openai.APIConnectionError as error:
            reason = _connection_failure(error)
            raise ProviderUnreachable(
                f"cannot reach {self._host}, or it hung up ({reason})", reason=reason
            ) from None
        except openai.APIStatusError as error:
            detail = self._redact(_error_message(error.body))[:160]
            status = f"{self._host} answered HTTP {error.status_code}"
            raise LanguageModelError(f"{status}: {detail}" if detail else status) from None
        except openai.OpenAIError as error:
            raise LanguageModelError(
                f"{self._host} failed: {self._redact(str(error))[:160]}"
            ) from None


class ProviderTimeout(LanguageModelError):
    """The provider sent nothing for `timeout_s`: before the reply, or between two chunks."""


class ProviderUnreachable(LanguageModelError):
    """No connection (refused, unknown host, reset), or the server hung up mid-reply.
    `reason` is the cause in a few words ("connection refused")."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _connection_failure(error: BaseException) -> str:
    """What went wrong with the connection, in a few words, from the transport's exception."""
    cause: BaseException | None = error
    texts: list[str] = []
    while cause is not None and len(texts) < 8:
        texts.append(str(cause).lower())
        cause = cause.__cause__ or cause.__context__
    text = " ".join(texts)
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("certificate", "TLS certificate rejected"),
        ("reset", "connection reset"),
        ("disconnected", "the server hung up"),
        ("incomplete", "the server hung up"),
        ("unreachable", "network unreachable"),
    ):
        if needle in text:
            return reason
    return "connection failed"


def _error_message(body: object) -> str:
    """The human part of an error body: the client hands over {"message": ...} or plain text."""
    if isinstance(body, dict):
        body = body.get("message")
    return body.strip() if isinstance(body, str) else ""


def with_call_ids(
    messages: Sequence[ChatMessage], names: Sequence[str]
) -> Iterator[tuple[ChatMessage, ToolCall | None, str]]:
    """Each message, the call it holds (an assistant's message in the canonical form), and the
    id the APIs pair a call and its result by: numbered in order, so the same history gets the
    same ids every time (a server's prompt cache stays valid)."""
    calls = 0
    for message in messages:
        call = parse_call(message.content) if message.role == "assistant" and names else None
        calls += call is not None
        yield message, call, f"call_{calls}"


def written_call(name: str, arguments: str) -> str:
    """A call the API returned natively (its arguments a JSON string), in the canonical form;
    arguments that are no JSON object stay as written, for the model's next turn to see."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        parsed = arguments
    return ToolCall(name, parsed if isinstance(parsed, dict) else {"arguments": parsed}).written
