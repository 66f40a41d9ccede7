"""Logging: structlog configured once, JSON lines off a tty, every secret redacted.

Standard-library loggers (asyncpg, aiohttp, transitions) go through the same `ProcessorFormatter`, so
journald sees one format. Redaction runs where the text is final: after the exception is formatted
(so `exc_info=exc` keeps its traceback) and again on the rendered line, where it looks for each
configured secret in every form a renderer writes it (JSON escapes `"` and `\\`, repr() doubles
`\\`, HTML escapes `&<>"'`). Tracebacks are plain text without local variables: structlog's rich
tracebacks would print every frame's locals (session ids, tokens, the expected `Bearer` header).
"""

from __future__ import annotations

import html
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words; config refuses none of them anyway


_ESCAPES: tuple[Callable[[str], str], ...] = (
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    lambda s: repr(s)[1:-1],
)


def _written_forms(secret: str) -> set[str]:
    """`secret` as renderers may write it: raw, HTML-escaped, and JSON- or repr()-escaped up to twice (a
    repr inside a JSON line, a JSON document inside a JSON string)."""
    once = {escape(secret) for escape in _ESCAPES}
    twice = {escape(form) for form in once for escape in _ESCAPES}
    return {secret, html.escape(secret, quote=True), *once, *twice}


class Redactor:
    """Masks the configured secret values in text (in every written form) and in JSON-able documents."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = ()
        self._forms: tuple[str, ...] = ()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so that a secret containing another is masked whole.
        kept = {s for s in secrets if s and len(s) >= _MIN_SECRET}
        self.secrets = tuple(sorted(kept, key=len, reverse=True))
        self._forms = tuple(sorted(set().union(*map(_written_forms, kept)), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """`text` with every written form of every secret replaced by `***`."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def walk(self, value: Any) -> Any:
        """`value` with every string in it (values of dicts, items of lists and tuples) redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.walk(v) for v in value)
        return value


class _RedactEvent:
    """Masks the strings of an event whose exception is already formatted (just before the renderer)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if key != "exc_info":  # the console renderer formats it itself; the rendered line is redacted
                event[key] = self.redactor.walk(value)
        return event


class _RedactRendered:
    """The last step: masks secrets in the rendered line (tracebacks and objects' reprs included)."""

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


# Added to every event, structlog's and the standard library's alike.
SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def formatter(redactor: Redactor, *, json_lines: bool, colors: bool = False,
              exception_formatter: Callable[[TextIO, Any], None] = structlog.dev.plain_traceback,
              ) -> structlog.stdlib.ProcessorFormatter:
    """The one way a handler renders events: JSON lines or console text, redacted after formatting."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=exception_formatter)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json_lines else _identity,
            _RedactEvent(redactor),
            renderer,
            _RedactRendered(redactor),
        ],
    )


# syslog priorities (sd-daemon(3)): journald reads a leading <N> on each line of a service's output
# (SyslogLevelPrefix=, on by default) as the line's PRIORITY, so `journalctl -p warning` finds it.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def journal_stream(stream: TextIO) -> bool:
    """Whether `stream` is connected to journald: systemd sets $JOURNAL_STREAM to its device:inode."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


class _JournalPriority(logging.Formatter):
    """Every line of a formatted record prefixed with its syslog priority, for journald."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 2 if record.levelno > logging.ERROR else 6)
        text = self.inner.format(record)
        # A console traceback spans lines; journald makes each line an entry, so each carries the priority.
        return "\n".join(f"<{priority}>{line}" for line in text.split("\n"))


def configure(
    *, level: str = "info", fmt: str = "auto", redactor: Redactor | None = None, stream: TextIO | None = None,
    journal: bool | None = None,
) -> Redactor:
    """Configure structlog and the standard library once for the process; returns the redactor.

    `journal`: prefix each line with its priority for journald (None: when $JOURNAL_STREAM says the
    stream is the journal, as under systemd).
    """
    redactor = redactor or Redactor()
    stream = stream or sys.stdout
    json_lines = fmt == "json" or (fmt == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    rendered = formatter(redactor, json_lines=json_lines, colors=stream.isatty())
    handler.setFormatter(_JournalPriority(rendered) if (journal_stream(stream) if journal is None else journal)
                         else rendered)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter at info level is noise in the journal; warnings still come through.
    for noisy in ("asyncio", "aiohttp.access", "transitions"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
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
