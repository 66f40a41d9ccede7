"""Text rules for everything the daemon sends to Intacct.

Control characters (NUL included) are removed because Intacct cannot store them and XML 1.0 cannot
carry most of them; everything else (`&`, `<`, quotes, emoji, right-to-left text) is kept exactly
and left to the XML library to escape.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping

_ZWJ = "\u200d"


def _is_removed(ch: str) -> bool:
    cat = unicodedata.category(ch)
    # Cc: C0/C1 controls (NUL, tab, newlines, DEL...); Cs: lone surrogates, which cannot be encoded
    # at all; U+FFFE/U+FFFF are not characters in XML 1.0.
    return cat in ("Cc", "Cs") or ch in ("\ufffe", "\uffff")


def clean_text(text: str) -> str:
    """`text` without control characters and without characters XML 1.0 cannot carry."""
    if text.isprintable():  # fast path: the common case has nothing to remove
        return text
    return "".join(ch for ch in text if not _is_removed(ch))


def _continues_grapheme(text: str, i: int) -> bool:
    """Whether position `i` is inside a user-perceived character rather than at its start."""
    ch = text[i]
    if unicodedata.category(ch) in ("Mn", "Mc", "Me"):
        return True
    code = ord(ch)
    if ch == _ZWJ or text[i - 1] == _ZWJ:
        return True
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:  # variation selectors
        return True
    if 0x1F3FB <= code <= 0x1F3FF:  # emoji skin-tone modifiers
        return True
    return 0xE0020 <= code <= 0xE007F  # tag characters (flag sequences)


def truncate(text: str, max_length: int) -> str:
    """`text` cut to at most `max_length` characters, never inside a character.

    A cut that would split a base character from its combining marks, an emoji from its modifier
    or a ZWJ sequence moves back to the start of that character.
    """
    if len(text) <= max_length:
        return text
    cut = max_length
    while cut > 0 and _continues_grapheme(text, cut):
        cut -= 1
    return text[:cut]


def clean_name(raw: str | None, max_length: int) -> str:
    """A NAME as Intacct gets it: cleaned, trimmed and cut (may be empty)."""
    if not raw:
        return ""
    return truncate(clean_text(raw).strip(), max_length).rstrip()


def render(template: str, values: Mapping[str, object]) -> str:
    """`template` with its placeholders filled; a missing value renders as empty text."""
    parts: list[str] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal)
        if field is not None:
            value = values.get(field)
            parts.append("" if value is None else str(value))
    return clean_text("".join(parts)).strip()


def placeholders(template: str) -> set[str]:
    """The placeholder names a template uses (ValueError for bad syntax)."""
    return {field for _lit, field, _spec, _conv in string.Formatter().parse(template) if field is not None}


def literal_prefix(template: str) -> str:
    """The text of `template` before its first placeholder."""
    for literal, _field, _spec, _conv in string.Formatter().parse(template):
        return literal
    return ""
