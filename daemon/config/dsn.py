"""PostgreSQL URLs: the passwords they may carry, and the one masked form every message shows.

A password may sit in the user info (`postgresql://user:pw@host/db`, where libpq tolerates a raw `@` in
it) or in the query (`?password=pw`, `?sslpassword=pw`). Both are found here, and nowhere else, so that a
log line, an error and `check-config` all print the same masked DSN.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

from daemon.config.secret import MASK

_PASSWORD_PARAMS = frozenset({"password", "sslpassword"})
# scheme://userinfo@hosts/rest: the user info runs to the LAST `@` that is followed by a host list, so a
# raw `@` inside the password stays in the user info (over-masking is safe, a leaked half is not).
_WITH_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>.*)@"
                            r"(?P<hosts>[A-Za-z0-9.:\[\],%_-]*)(?P<tail>[/?].*)?", re.S)
_PARAM = re.compile(r"(?P<name>[^&=]+)=(?P<value>[^&]*)")


def _query(dsn: str) -> str:
    tail = dsn.split("://", 1)[-1]
    match = _WITH_USERINFO.fullmatch(dsn)
    if match:
        tail = match["tail"] or ""
    return tail.partition("?")[2]


def dsn_passwords(dsn: str) -> tuple[str, ...]:
    """Every password written into `dsn`, as written and percent-decoded (for the redactor)."""
    raw: list[str] = []
    match = _WITH_USERINFO.fullmatch(dsn)
    if match and ":" in match["userinfo"]:
        raw.append(match["userinfo"].partition(":")[2])
    raw += [m["value"] for m in _PARAM.finditer(_query(dsn)) if unquote_plus(m["name"]).lower() in _PASSWORD_PARAMS]
    decoded = [unquote(p) for p in raw] + [unquote_plus(p) for p in raw]
    return tuple(dict.fromkeys(p for p in [*raw, *decoded] if p))


def mask_dsn(dsn: str) -> str:
    """`dsn` with each password replaced by `***`: what every message that names a DSN shows."""
    if "://" not in dsn:
        return dsn  # "embedded", or nothing a password could hide in
    match = _WITH_USERINFO.fullmatch(dsn)
    if match:
        user, colon, _password = match["userinfo"].partition(":")
        head = f"{match['scheme']}{user}{':' + MASK if colon else ''}@{match['hosts']}"
        tail = match["tail"] or ""
    else:
        head, tail = "", dsn
    path, question, query = tail.partition("?")
    if question:
        query = _PARAM.sub(lambda m: f"{m['name']}={MASK}" if unquote_plus(m["name"]).lower() in _PASSWORD_PARAMS
                           else m.group(0), query)
    return f"{head}{path}{question}{query}"
