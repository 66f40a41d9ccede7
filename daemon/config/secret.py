"""Values that come from outside the configuration file: `${NAME}` references and `*_file` credentials.

Named `secret` (not `secrets`) so that running a file from this folder can never shadow the standard
library's `secrets` module.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from pathlib import Path

# A credential is a short line; refusing big files keeps a wrong path (a log, a disk image) from
# being read into memory and sent to an API as a password.
MAX_SECRET_FILE_BYTES = 64 * 1024
MASK = "***"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Secret:
    """A secret string that never shows itself in repr, str, f-strings or logs."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The secret value itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        # Constant time, because tokens are compared against what clients send.
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would carry the value silently into caches and queues: refuse it.
        raise TypeError("Secret cannot be pickled")


class InterpolationError(ValueError):
    """A `${NAME}` reference that cannot be resolved; the message never contains the text around it."""


class SecretFileError(ValueError):
    """A `*_file` credential that cannot be read; the message names the path, never the content."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """`text` with every `${NAME}` replaced from `env`; `$${` stands for a literal `${`."""
    if "$" not in text:
        return text
    out: list[str] = []
    i = 0
    while (j := text.find("$", i)) >= 0:
        out.append(text[i:j])
        if text.startswith("$${", j):
            out.append("${")
            i = j + 3
        elif text.startswith("${", j):
            end = text.find("}", j + 2)
            name = text[j + 2 : end] if end >= 0 else ""
            if not _NAME.fullmatch(name):
                # The text may be a secret: describe the problem without quoting it.
                raise InterpolationError("has a '${' that is not a ${NAME} reference (write $${ for a literal ${)")
            if name not in env:
                raise InterpolationError(f"environment variable {name} is not set")
            out.append(env[name])
            i = end + 1
        else:
            out.append("$")
            i = j + 1
    out.append(text[i:])
    return "".join(out)


def has_reference(text: str) -> bool:
    """Whether `text` takes (part of) its value from the environment."""
    return "${" in text.replace("$${", "")


def secret_file_path(text: str, env: Mapping[str, str]) -> Path:
    """Where a `*_file` value points: relative paths live in systemd's `$CREDENTIALS_DIRECTORY` when set."""
    path = Path(text)
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials and not path.is_absolute():
        return Path(credentials) / path
    return path


def read_secret_file(path: Path) -> str:
    """The secret stored in `path`, without its trailing newline."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise SecretFileError(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}") from None
    except ValueError:  # a NUL in the path
        raise SecretFileError("the path contains a NUL character") from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise SecretFileError(f"{path} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB: not a credential")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{path} is not UTF-8 text") from None
    return text.rstrip("\r\n")
