"""The README's HTTP section states the rules (who may call what, from where, with which content type),
and its examples follow them."""

from __future__ import annotations

import re

from daemon.config.sections import MIN_TOKEN_LENGTH
from daemon.http import guard, server
from tests.acceptance.harness import REPO

README = (REPO / "README.md").read_text()
SECTION = README[README.index("## HTTP endpoints"):README.index("\n## ", README.index("## HTTP endpoints") + 3)]


def test_the_rules_are_stated_with_the_daemon_s_numbers() -> None:
    for phrase in ("Who may call what, from where", "`GET /livez`, `/readyz`, `/metrics`",
                   "`Authorization: Bearer <http.token>`", f"at least {MIN_TOKEN_LENGTH} characters",
                   "`Content-Type: application/json`", "415", "`Host`", "`http.allowed_hosts`", "421",
                   "DNS rebinding", "CORS", f"within {guard.BODY_TIMEOUT_S:g} s (408)",
                   f"within {server.HEAD_TIMEOUT_S:g} s of connecting",
                   f"an idle connection closes after {server.KEEPALIVE_S:g} s",
                   f"beyond {server.MAX_CONNECTIONS} connections", "The socket in use decides"):
        assert phrase in SECTION, phrase
    assert set(guard.OPEN_PATHS) == {"/livez", "/readyz", "/metrics"}


def test_every_post_example_sends_json() -> None:
    logical = re.sub(r"\\\n\s*", " ", README)  # continuation lines joined, as the shell reads them
    posts = re.findall(r"curl[^\n]*-X POST localhost:8080/v1/[^\n]*", logical)
    assert posts
    for example in posts:
        assert "Content-Type: application/json" in example, example
