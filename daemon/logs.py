"""Logging: structlog configured once, JSON lines off a tty, every secret redacted.

Standard-library loggers (asyncpg, aiohttp, transitions) go through the same `ProcessorFormatter`, so
journald sees one format. The redaction processor replaces any configured secret value wherever it
appears in an event (message, values, exception text) with `***`: a secret that slips into an
exception message from a library still never reaches the log.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words; config refuses none of them anyway


class Redactor:
    """A structlog processor that masks secret values anywhere in the event dict."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a secret containing another is masked whole.
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._walk(v) for v in value)
        if isinstance(value, BaseException):
            return self.redact(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if not self.secrets:
            return event
        for key, value in list(event.items()):
            event[key] = self._walk(value)
        return event


class _RedactRendered:
    """The last line of defence: masks secrets in the rendered line (tracebacks included)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, _logger: Any, _name: str, event: Any) -> Any:
        if isinstance(event, str):
            return self.redactor.redact(event)
        return event


class RedactingWriter(io.TextIOBase):
    """A text stream that passes each whole line through the redactor (what a command prints)."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor
        self._pending = ""

    def write(self, text: str) -> int:
        # Whole lines only, so that a secret printed in pieces (print writes text, then "\n") is still seen.
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self._stream.write(self._redactor.redact(line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:  # a progress line without its newline yet
            self._stream.write(self._redactor.redact(self._pending))
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def configure(
    *, level: str = "info", fmt: str = "auto", redactor: Redactor | None = None, stream: TextIO | None = None
) -> Redactor:
    """Configure structlog and the standard library once for the process; returns the redactor."""
    redactor = redactor or Redactor()
    stream = stream or sys.stdout
    json_lines = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redactor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json_lines else _identity,
            renderer,
            _RedactRendered(redactor),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter at info level is noise in the journal; warnings still come through.
    for noisy in ("asyncio", "aiohttp.access", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return redactor


def _identity(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event


def set_level(level: str) -> None:
    """Change the level at run time (a reload)."""
    logging.getLogger().setLevel(level.upper())


def get(name: str = "st_intacct_sync") -> Any:
    """A structlog logger."""
    return structlog.get_logger(name)
