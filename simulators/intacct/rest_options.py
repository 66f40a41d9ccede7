"""The REST simulator's options: its credentials, and one switch per behaviour Sage leaves undocumented.

Every field whose comment starts with "unknown:" is a behaviour the reference could not confirm;
tests run the client against each plausible answer. All of them change at run time through
``PUT /_sim/rest/options``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

CHOICES: Mapping[str, tuple[object, ...]] = {
    "duplicate_status": (409, 422, 400),
    "error_envelope": ("nested", "top"),
    "invalid_token_answer": (401, 400),
    "replay_after_cache": ("conflict", "execute"),
    "concurrent_replay": ("conflict", "rate_limit", "wait"),
    "retry_after_header": ("x-ia", "standard", "both"),
    "key_order": ("numeric", "text"),
    "clear_reference": ("any", "id_null", "key_null", "null"),
    "batch_failure": ("207", "first_status"),
}
_FLAGS = ("idempotency_supported", "shared_concurrency", "location_required", "projects_permission")
_OPTIONAL_STR = ("client_id", "client_secret", "username")


@dataclass(frozen=True)
class RestOptions:
    """How the simulated REST API behaves."""

    client_id: str | None = None  # enforced client id; None accepts any non-empty value
    client_secret: str | None = None
    username: str | None = None  # enforced Web Services user, "user@company"
    token_ttl: float = 21600.0  # expires_in of a minted token (Sage's examples show six hours)
    batch_limit: int = 500  # "at most 500 records in a batch request"
    max_query_size: int = 4000  # "4000 maximum"
    idempotency_cache_s: float = 48 * 3600.0  # replays answered from the cache this long
    idempotency_retention_s: float = 60 * 86400.0  # keys remembered this long
    duplicate_status: int = 409  # unknown: status of a create whose id exists (409, 422 or 400)
    error_envelope: str = "nested"  # unknown per operation: ia::error under ia::result, or at the top
    invalid_token_answer: int = 401  # seen both: 401 GW-0040 "Expired token", 400 REST-1206
    idempotency_supported: bool = True  # unknown: idempotenceSupported for projects/project
    replay_after_cache: str = "conflict"  # unknown: an identical body after the cache expired: 409 or run again
    concurrent_replay: str = "conflict"  # unknown: a replay while the original runs: 409, 429, or wait for it
    retry_after_header: str = "x-ia"  # unknown: whether 429 carries a standard Retry-After
    max_in_list: int | None = None  # unknown: longest $in list (None: no limit)
    key_order: str = "numeric"  # unknown: whether orderBy key sorts numerically or as text
    clear_reference: str = "any"  # unknown: how a reference is cleared ({"id": null}, {"key": null}, null)
    batch_failure: str = "207"  # unknown: a partly failed batch answers 207 by position, or one status
    shared_concurrency: bool = True  # unknown: whether XML and REST share the company's request slots
    location_required: bool = False  # unknown: whether a multi-entity company requires location on create
    projects_permission: bool = True  # False: the user lacks the Projects permissions (403; body unknown)

    def changed(self, changes: Mapping[str, object]) -> RestOptions:
        """A copy with ``changes``; raises ValueError naming the first bad key or value."""
        known = {f.name for f in fields(self)}
        values: dict[str, object] = {}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown REST option {key!r}")
            values[key] = _coerce(key, value)
        return replace(self, **values)  # type: ignore[arg-type]

    def public(self) -> dict[str, object]:
        """The options without credential values."""
        out = asdict(self)
        for key in _OPTIONAL_STR:
            out[key] = out[key] is not None
        return out


def _coerce(key: str, value: object) -> object:
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise ValueError(f"REST option {key!r} must be one of {', '.join(map(str, CHOICES[key]))}")
        return value
    if key in _FLAGS:
        if not isinstance(value, bool):
            raise ValueError(f"REST option {key!r} must be true or false")
        return value
    if key in _OPTIONAL_STR or (key == "max_in_list" and value is None):
        if value is not None and not isinstance(value, str | int):
            raise ValueError(f"REST option {key!r} must be a string or null")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"REST option {key!r} must be a positive number")
    return int(value) if key in ("batch_limit", "max_query_size", "max_in_list") else float(value)
