"""Typed reading of one section of the configuration file, with errors that name the key path.

Every check that is about a single key (unknown keys, types, ranges, `${NAME}`, `*_file`) lives
here, so that `daemon.config` only says which keys exist and how they fit together.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import timedelta
from typing import Final

from daemon.config.durations import parse_duration
from daemon.config.secret import (
    InterpolationError,
    Secret,
    SecretFileError,
    has_reference,
    interpolate,
    read_secret_file,
    secret_file_path,
)


class ConfigError(Exception):
    """An invalid configuration; its text is one line: `<file>: <key.path>: <problem>`."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}: " if key else f"{source}: "
        # One line whatever the problem text holds, because operators grep for it in the journal.
        super().__init__(re.sub(r"\s*[\r\n]+\s*", " ", f"{where}{problem}"))


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()
_INTEGER = re.compile(r"[+-]?\d+")
_WHOLE_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def describe(value: object) -> str:
    """A short, YAML-flavoured description of a value for error messages (never used for secrets)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:56] + "...'"


class Section:
    """One mapping of the file: refuses unknown keys at once, then hands out typed values.

    `lenient` reads the file for a command that needs neither API (status, migrate, retry): a secret
    that cannot be read (its variable unset, its file unreadable by an admin shell) is left unset and
    a `${NAME}` of another key that is unset stays as written. `notes` collects the warnings of the
    whole file (old spellings), shared by every section read from it.
    """

    def __init__(
        self,
        source: str,
        env: Mapping[str, str],
        path: str,
        data: object,
        keys: Iterable[str],
        secrets: Iterable[str] = (),
        inline: list[str] | None = None,
        *,
        lenient: bool = False,
        notes: list[str] | None = None,
    ) -> None:
        self.source, self.env, self.path = source, env, path
        self.lenient = lenient
        self.notes: list[str] = [] if notes is None else notes
        self.secrets = frozenset(secrets)
        # Optional keys left unset because their whole value is a `${NAME}` whose variable is not set:
        # key -> NAME, so that a rule needing the value after all can say which variable to set.
        self.unset: dict[str, str] = {}
        # Key paths of secrets written into the file itself (shared by every section of one file).
        self.inline: list[str] = [] if inline is None else inline
        allowed = [*keys, *self.secrets, *(f"{key}_file" for key in self.secrets)]
        if data is None:  # a section whose keys are all commented out
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(source, path or None, f"expected a mapping of keys, got {describe(data)}")
        for key in data:
            if key not in allowed:
                raise self.error(str(key), "unknown key" + _suggestion(str(key), allowed))
        self.data: dict[str, object] = data

    def key(self, key: str) -> str:
        """The dotted path of `key` in the file."""
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> ConfigError:
        """A ConfigError about `key` of this section."""
        return ConfigError(self.source, self.key(key), problem)

    def warn(self, key: str, problem: str) -> None:
        """Note a warning about `key` (an old spelling): one line, like an error's."""
        self.notes.append(str(ConfigError(self.source, self.key(key), problem)))

    def old_spelling(self, old: str, new: str) -> bool:
        """Whether the file uses the 0.1 key `old` (renamed `new`); both at once is an error."""
        if self.given(old) and self.given(new):
            raise self.error(old, f"is the old spelling of {self.key(new)}: keep only {new}")
        return self.given(old)

    def shape(self, key: str, schema: dict[str, object]) -> None:
        """Declare the JSON Schema of a key this reader checks by hand (the schema generator records it)."""

    def given(self, key: str) -> bool:
        """Whether the file sets `key` to something other than null."""
        return self.data.get(key) is not None

    def section(self, key: str, keys: Iterable[str], secrets: Iterable[str] = ()) -> Section:
        """The sub-section `key` (an absent or empty one reads as empty)."""
        return type(self)(self.source, self.env, self.key(key), self.data.get(key), keys, secrets, self.inline,
                          lenient=self.lenient, notes=self.notes)

    def _text(self, key: str, raw: str) -> str:
        try:
            return interpolate(raw, self.env)
        except InterpolationError as exc:
            if self.lenient:
                return raw
            raise self.error(key, str(exc)) from None

    def _unset_reference(self, key: str, raw: str) -> bool:
        """Whether `raw` is one whole `${NAME}` whose variable is not set (noted in `unset`).

        An optional key written as a reference is absent when its variable is: the shipped file names
        `${ST_INTACCT_SYNC_TOKEN}`, and a loopback-only daemon started without it (a systemd unit has
        no such variable) must run. Text around the reference means a value was meant: that stays an
        error.
        """
        match = _WHOLE_REFERENCE.fullmatch(raw.strip())
        if match is None or match[1] in self.env:
            return False
        self.unset[key] = match[1]
        return True

    def unset_hint(self, key: str) -> str:
        """`; environment variable NAME is not set` when `key` was left unset that way, else ``."""
        name = self.unset.get(key)
        return f"; environment variable {name} is not set" if name else ""

    def _absent(self, key: str, default: object) -> bool:
        """Whether `key` takes its default; null stands for the default only where null is a value."""
        raw = self.data.get(key)
        if raw is None and (isinstance(default, _Required) or (key in self.data and default is None)):
            if isinstance(default, _Required):
                raise self.error(key, "required")
            return True
        return key not in self.data

    def string(self, key: str, default: str | None | _Required = REQUIRED, *,
               ignored: bool = False) -> str | None:
        """A string value, `${NAME}` references resolved.

        `ignored`: a key the rest of the file makes irrelevant (the XML login with `api: rest`), so a
        `${NAME}` of an unset variable reads as absent instead of failing the file.
        """
        if self._absent(key, default):
            assert not isinstance(default, _Required)
            return default
        raw = self.data[key]
        if not isinstance(raw, str):
            raise self.error(key, f"expected a string, got {describe(raw)}{_quote_hint(raw)}")
        if ignored and self._unset_reference(key, raw):
            return None
        text = self._text(key, raw)
        if not text:
            raise self.error(key, "must not be empty")
        return text

    def required_string(self, key: str) -> str:
        """A string that must be given and non-empty."""
        value = self.string(key)
        assert value is not None  # REQUIRED raised otherwise
        return value

    def integer(self, key: str, default: int | _Required, low: int, high: int | None = None) -> int:
        """An integer within [low, high]; from `${NAME}` a decimal string is accepted too."""
        if self._absent(key, default):
            assert isinstance(default, int)
            return default
        raw = value = self.data[key]
        if isinstance(raw, str) and has_reference(raw):
            text = self._text(key, raw).strip()
            value = int(text) if _INTEGER.fullmatch(text) else text
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {describe(value)}")
        if high is None and value < low:
            raise self.error(key, f"must be at least {low}, got {value}")
        if high is not None and not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A YAML boolean (`true`/`false`); from `${NAME}` the text true/false is accepted too."""
        if key not in self.data:
            return default
        raw = self.data[key]
        value: object = raw
        if isinstance(raw, str) and has_reference(raw):
            text = self._text(key, raw).strip().lower()
            value = {"true": True, "false": False}.get(text, text)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {describe(value)}")
        return value

    def duration(self, key: str, default: timedelta) -> timedelta:
        """A positive duration: seconds as a number, or text like `0.5s`, `15s`, `10m`, `1h30m`."""
        if key not in self.data:
            return default
        raw = self.data[key]
        value = self._text(key, raw) if isinstance(raw, str) else raw
        try:
            delta = parse_duration(value)
        except ValueError as exc:
            raise self.error(key, f"expected {exc}, got {describe(value)}") from None
        if delta <= timedelta(0):
            raise self.error(key, f"must be a positive duration, got {describe(value)}")
        return delta

    def choice(self, key: str, default: str, choices: Collection[str]) -> str:
        """One of `choices`."""
        value = self.string(key, default)
        assert value is not None
        if value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {describe(value)}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A non-empty list of non-empty strings (a single string counts as a list of one)."""
        raw = self.data.get(key)
        if raw is None:
            raise self.error(key, "required")
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            raise self.error(key, f"expected a list of strings, got {describe(raw)}")
        values = []
        for index, item in enumerate(items):
            if not isinstance(item, str) or not (text := self._text(key, item).strip()):
                raise self.error(f"{key}[{index}]", f"expected a non-empty string, got {describe(item)}")
            values.append(text)
        return tuple(values)

    def secret(self, key: str, *, required: bool) -> Secret | None:
        """A secret from `key` or from the file named by `key_file`; empty counts as unset."""
        file_key = f"{key}_file"
        if self.given(key) and self.given(file_key):
            raise self.error(key, f"is given twice: set {key} or {file_key}, not both")
        if self.given(file_key):
            value = self._secret_from_file(file_key)
        elif self.given(key):
            raw = self.data[key]
            if not isinstance(raw, str):
                # Never echo the value: it is a secret, even when its type is wrong.
                raise self.error(key, f"expected a string, got {_kind(raw)}{_quote_hint(raw)}")
            try:
                value = interpolate(raw, self.env)
            except InterpolationError as exc:
                if not (self.lenient or (not required and self._unset_reference(key, raw))):
                    raise self.error(key, str(exc)) from None
                value = ""
            if value and not has_reference(raw):
                self.inline.append(self.key(key))
        else:
            value = ""
        if self.lenient:
            return Secret(value) if value else None
        if not value and required:
            problem = "required" if not (self.given(key) or self.given(file_key)) else "must not be empty"
            raise self.error(file_key if self.given(file_key) else key, problem)
        return Secret(value) if value else None

    def _secret_from_file(self, file_key: str) -> str:
        raw = self.data[file_key]
        if not isinstance(raw, str):
            raise self.error(file_key, f"expected a file path, got {describe(raw)}")
        try:
            return read_secret_file(secret_file_path(self._text(file_key, raw), self.env))
        except SecretFileError as exc:
            if self.lenient:
                return ""
            raise self.error(file_key, str(exc)) from None


def _kind(value: object) -> str:
    """What a value is, without the value: for secrets of the wrong type."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return describe(value) if isinstance(value, list | dict) else type(value).__name__


def _quote_hint(value: object) -> str:
    # YAML reads 0123, 1e5, yes, 2024-01-01 as non-strings: quoting is the fix for a scalar.
    return " (quote it)" if not isinstance(value, list | dict) else ""


def _suggestion(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
