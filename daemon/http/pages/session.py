"""Who may act on the queue page: a sign-in that trades the HTTP token for a session cookie, and the
CSRF token every form carries.

Stateless on purpose: the session cookie is signed with a key derived from `http.token`, so every
replica sharing the token accepts it, a restart keeps people signed in, and rotating the token
signs everybody out. Without a configured token (loopback only) there is nothing to sign in with;
the key is then random per process and only the CSRF tokens use it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from daemon.config.secret import Secret

SESSION_COOKIE = "sis_session"
VISITOR_COOKIE = "sis_visitor"  # the anonymous nonce that the sign-in form's CSRF token is bound to
SESSION_SECONDS = 12 * 3600
_VERSION = "v1"


@dataclass(frozen=True)
class Session:
    """A valid signed-in session (or the anonymous visitor) and the CSRF token bound to it."""

    nonce: str
    signed_in: bool
    expires: int


class Keys:
    """The signing key in force, derived again whenever the configured token changes (SIGHUP)."""

    def __init__(self) -> None:
        self._random = secrets.token_bytes(32)
        self._token: Secret | None = None
        self._key = self._random

    def key(self, token: Secret | None) -> bytes:
        if token is not self._token:
            self._token = token
            self._key = self._random if token is None else hmac.digest(
                token.reveal().encode(), b"st-intacct-sync ui session", "sha256")
        return self._key


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def token_matches(given: str, token: Secret | None) -> bool:
    """The sign-in form's token against the configured one, in constant time."""
    if token is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.reveal().encode())


def new_session(key: bytes, now: float | None = None) -> str:
    """A signed session cookie value, valid for SESSION_SECONDS."""
    expires = int((now or time.time()) + SESSION_SECONDS)
    nonce = secrets.token_urlsafe(16)
    body = f"{_VERSION}.{expires}.{nonce}"
    return f"{body}.{_mac(key, body)}"


def read_session(key: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session a cookie proves, or None when it is missing, forged, or expired."""
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
        return None
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(key, body), parts[3]):
        return None
    expires = int(parts[1])
    if expires <= (now or time.time()):
        return None
    return Session(parts[2], True, expires)


def new_visitor() -> str:
    """The anonymous visitor's nonce (its own cookie): what the sign-in form's CSRF token binds to."""
    return secrets.token_urlsafe(16)


def csrf_token(key: bytes, nonce: str) -> str:
    """The CSRF token of the forms shown to the holder of `nonce` (a session's or a visitor's)."""
    return _mac(key, f"csrf.{nonce}")


def csrf_ok(key: bytes, nonce: str | None, given: str | None) -> bool:
    if not nonce or not given:
        return False
    return hmac.compare_digest(csrf_token(key, nonce), given)
