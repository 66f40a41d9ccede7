"""Findings 5 and 6: what the log writes is redacted after formatting, in every renderer, and tracebacks
are kept but never show local variables.

Before: with `rich` installed, structlog's console renderer printed every frame's locals (the Intacct
session id, the ServiceTitan token, the expected `Bearer` header); a secret holding `"` or `\\` escaped
redaction in JSON lines, because the check ran before the renderer escaped it; and `exc_info=exc` lost
its traceback, because the redactor turned the exception into a string before it was formatted.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from daemon import logs

QUOTED = 'pa"ss-s3cret-91'  # a password with a double quote: JSON writes it as pa\"ss...
SLASHED = "pa\\ss-s3cret-77"  # with a backslash: JSON and repr() double it
LOCAL = "LOCALTOKEN-s3cret-5d"  # a value no one configured as a secret: only "no locals" keeps it out


class _Stream(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


def _configure(fmt: str) -> io.StringIO:
    stream = _Stream()
    logs.configure(level="info", fmt=fmt, redactor=logs.Redactor([QUOTED, SLASHED]), stream=stream)
    return stream


class _Holder:
    """An object whose repr carries a secret (a library's request object, say)."""

    def __repr__(self) -> str:
        return f"Holder(auth={QUOTED!r}, key={SLASHED!r})"


def _fail_with_a_secret_in_a_local() -> None:
    header = f"Bearer {LOCAL}"  # noqa: F841 - the local a locals-printing renderer would show
    raise ValueError(f"refused: password {QUOTED} / {SLASHED}")


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_tracebacks_have_no_locals_and_no_secrets(fmt: str, restore_logging: None) -> None:
    stream = _configure(fmt)
    log = logs.get("test")
    try:
        _fail_with_a_secret_in_a_local()
    except ValueError as exc:
        log.exception("failed_inside")  # sys.exc_info()
        log.error("failed_given", exc_info=exc)  # the exception object itself
    try:
        _fail_with_a_secret_in_a_local()
    except ValueError:
        logging.getLogger("aiohttp.server").exception("library_failed")  # a standard-library logger
    out = stream.getvalue()
    assert out.count("Traceback (most recent call last)") == 3, out
    assert out.count("_fail_with_a_secret_in_a_local") >= 3, out  # the frames are there
    assert LOCAL not in out, out
    for secret in (QUOTED, SLASHED, json.dumps(QUOTED)[1:-1], json.dumps(SLASHED)[1:-1], "s3cret-91", "s3cret-77"):
        assert secret not in out, (secret, out)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_secrets_are_redacted_as_written(fmt: str, restore_logging: None) -> None:
    stream = _configure(fmt)
    log = logs.get("test")
    log.info("plain", detail=f"password {QUOTED} and {SLASHED}")
    log.info("nested", request={"headers": [f"Authorization: {QUOTED}"]}, holder=_Holder())
    logging.getLogger("asyncpg").warning("connect failed for %s with %r", QUOTED, SLASHED)
    out = stream.getvalue()
    assert out.count("\n") == 3, out
    for secret in (QUOTED, SLASHED, "s3cret-91", "s3cret-77"):
        assert secret not in out, (secret, out)
    assert out.count(logs.MASK) >= 7, out
    if fmt == "json":
        for line in out.splitlines():
            json.loads(line)  # still valid JSON after redaction
