"""structlog for everything: pretty on a terminal, JSON otherwise, secrets never shown.

The application and the adapters log through the standard `logging` module (or structlog); both
end up in one renderer on stderr, so stdout stays the conversation (USER/ASSISTANT lines).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***"
CHATTY_LIBRARIES = (
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "openai",
    "faster_whisper",
    "websockets",
)


class SecretRedactor:
    """Replaces every occurrence of a secret (an API key) in any logged value."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s for s in secrets if s]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        if not self._secrets:
            return event
        return {k: self.scrub(v) if isinstance(v, str) else v for k, v in event.items()}


def configure_logging(
    level: str = "info",
    log_format: str = "auto",
    secrets: Sequence[str] = (),
    stream: TextIO | None = None,
) -> Iterator[None]:
    """A dependency-injector Resource: configures logging, restores nothing on shutdown but
    flushes the handler."""
    stream = stream or sys.stderr
    pretty = log_format == "pretty" or (log_format == "auto" and stream.isatty())
    redactor = SecretRedactor(secrets)
    shared: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        structlog.processors.format_exc_info,  # to text first, so the redactor sees it
        redactor,
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if pretty
        else structlog.processors.JSONRenderer()
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for chatty in CHATTY_LIBRARIES:  # a line per HTTP request or decoded file drowns the turns
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        handler.flush()
