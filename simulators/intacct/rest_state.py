"""What the REST API keeps beside the shared company: access tokens and the idempotency cache."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from dataclasses import dataclass, field

from simulators.intacct.faults import ConcurrencyLimiter
from simulators.intacct.projects import Project
from simulators.intacct.rest_options import RestOptions
from simulators.intacct.state import SimState


@dataclass
class AccessToken:
    """A minted token: whose, which entity, until when."""

    username: str
    entity: str | None
    expires_at: float


@dataclass
class Replay:
    """An Idempotency-Key's request and, once it finished, its answer."""

    body_hash: str
    created: float
    status: int = 0
    body: bytes = b""
    done: asyncio.Event = field(default_factory=asyncio.Event)


class RestState:
    """The REST side of one simulated company."""

    def __init__(self, company: SimState, options: RestOptions | None = None) -> None:
        self.company = company
        self.initial = options or RestOptions()
        self.options = self.initial
        self.tokens: dict[str, AccessToken] = {}
        self.replays: dict[tuple[str, str], Replay] = {}  # (username, key) -> the first request
        self.limiter = ConcurrencyLimiter()
        self.counters: dict[str, int] = {"tokens_minted": 0, "token_refusals": 0, "replays_answered": 0,
                                         "idempotency_conflicts": 0, "requests": 0}
        self.entities_seen: set[str] = set()  # X-IA-API-Param-Entity values received
        self._by_key: tuple[int, dict[int, Project]] | None = None

    def reset(self) -> None:
        """Forget tokens, keys and counters; options back to their start."""
        self.options = self.initial
        self.tokens.clear()
        self.replays.clear()
        self.counters = dict.fromkeys(self.counters, 0)

    def mint(self, username: str, entity: str | None) -> str:
        """A new JWT-looking access token."""
        now = time.time()
        claims = {"sub": username, "iat": int(now), "exp": int(now + self.options.token_ttl),
                  "jti": secrets.token_hex(8)}
        parts = [{"alg": "RS256", "typ": "JWT"}, claims]
        encoded = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode() for p in parts]
        token = ".".join([*encoded, secrets.token_urlsafe(32)])
        self.tokens[token] = AccessToken(username, entity, now + self.options.token_ttl)
        self.counters["tokens_minted"] += 1
        return token

    def check(self, token: str) -> AccessToken | None:
        """The token's grant if it is known and unexpired."""
        grant = self.tokens.get(token)
        if grant is None:
            return None
        if time.time() >= grant.expires_at:
            del self.tokens[token]
            return None
        return grant

    def revoke_all(self) -> int:
        """Revoke every token (revoking one revokes the user's whole pool)."""
        count = len(self.tokens)
        self.tokens.clear()
        return count

    def expire_all(self) -> int:
        """Make every token expired now."""
        for grant in self.tokens.values():
            grant.expires_at = 0.0
        return len(self.tokens)

    def by_key(self, key: str) -> Project | None:
        """The project whose record key (RECORDNO) is ``key``."""
        projects = self.company.projects
        if self._by_key is None or self._by_key[0] != projects.version:
            self._by_key = (projects.version, {p.recordno: p for p in projects})
        try:
            return self._by_key[1].get(int(key))
        except ValueError:
            return None
