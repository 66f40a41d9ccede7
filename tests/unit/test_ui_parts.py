"""The queue page's pure parts: signed sessions and CSRF tokens, the chart's geometry, the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from daemon.config.secret import Secret
from daemon.http.pages import chart, session
from daemon.http.pages.format import Clock, duration


def test_a_session_is_valid_until_it_expires_and_only_with_its_key() -> None:
    keys = session.Keys()
    key = keys.key(Secret("token-one-0123456789"))
    value = session.new_session(key, now=1_000_000.0)
    found = session.read_session(key, value, now=1_000_000.0 + 60)
    assert found is not None and found.signed_in
    assert session.read_session(key, value, now=1_000_000.0 + session.SESSION_SECONDS + 1) is None
    other = session.Keys().key(Secret("token-two-0123456789"))
    assert session.read_session(other, value, now=1_000_000.0) is None  # rotating the token signs out
    version, expires, nonce, mac = value.split(".")
    longer = f"{version}.{int(expires) + 10**6}.{nonce}.{mac}"
    assert session.read_session(key, longer, now=1_000_000.0) is None  # the expiry is signed too
    for junk in ("", "v1", "v1.x.y.z", "v2." + value[3:], value + ".x"):
        assert session.read_session(key, junk, now=1_000_000.0) is None


def test_the_key_follows_the_configured_token() -> None:
    keys = session.Keys()
    first = keys.key(Secret("token-one-0123456789"))
    assert keys.key(Secret("token-one-0123456789")) == first  # derived, so the same across replicas
    assert keys.key(Secret("token-two-0123456789")) != first
    assert session.Keys().key(Secret("token-one-0123456789")) == first
    assert keys.key(None) != first  # no token: a random key of this process


def test_csrf_tokens_are_bound_to_one_nonce() -> None:
    key = session.Keys().key(Secret("token-one-0123456789"))
    token = session.csrf_token(key, "nonce-a")
    assert session.csrf_ok(key, "nonce-a", token)
    assert not session.csrf_ok(key, "nonce-b", token)
    assert not session.csrf_ok(key, "nonce-a", None) and not session.csrf_ok(key, None, token)
    assert not session.token_matches("x", None)
    assert session.token_matches("token-one-0123456789", Secret("token-one-0123456789"))
    assert not session.token_matches("token-one-012345678", Secret("token-one-0123456789"))


def test_chart_has_24_hours_of_two_series_on_a_round_scale() -> None:
    now = datetime(2026, 11, 30, 14, 25, tzinfo=UTC)
    hour = now.replace(minute=0)
    counts = {(hour, "synced"): 37, (hour - timedelta(hours=23), "failed"): 4,
              (hour - timedelta(hours=24), "synced"): 99}
    built = chart.build(counts, now, lambda h: f"{h:%H}")
    assert len(built.bars) == 48 and len(built.hours) == 24
    assert built.totals == {"synced": 37, "failed": 4}  # the 25th hour back is outside the chart
    tallest = max(built.bars, key=lambda b: b.height)
    assert tallest.count == 37 and tallest.series == "synced" and tallest.x > built.bars[-3].x - 1
    assert [t.label for t in built.y_ticks] == ["0", "10", "20", "30", "40"]
    top = built.top + built.plot_height
    assert all(abs(b.y + b.height - top) < 0.2 for b in built.bars)  # every bar stands on the axis
    assert built.hours[0] == ("15–16", 0, 4) and built.hours[-1] == ("14–15", 37, 0)
    assert "37 synced, 4 failed" in built.summary


def test_nice_steps() -> None:
    assert [chart.nice_step(n) for n in (0, 1, 4, 7, 40, 41, 170, 9999)] == [1, 1, 1, 2, 10, 20, 50, 5000]


def test_times_read_in_the_configured_zone() -> None:
    at = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert Clock(ZoneInfo("Europe/Berlin")).when(at) == "1 Jul 2026 14:00 CEST"
    assert Clock(UTC).when(at) == "1 Jul 2026 12:00 UTC"
    clock = Clock(UTC, at)
    assert clock.ago(at - timedelta(minutes=5)) == "5 min ago" and clock.ago(at + timedelta(seconds=20)) == "in 20 s"
    assert duration(7200) == "2 h" and duration(5400) == "1.5 h" and duration(3 * 86400) == "3 days"


async def test_finished_hours_are_read_once() -> None:
    now = datetime(2026, 11, 30, 14, 25, tzinfo=UTC)
    hour = now.replace(minute=0)
    stored = {(hour - timedelta(hours=h), "synced"): 10 + h for h in range(30)}
    asked: list[datetime] = []

    async def fetch(since: datetime) -> dict[tuple[datetime, str], int]:
        asked.append(since)
        return {k: v for k, v in stored.items() if k[0] >= since}

    cache = chart.HourCache()
    first = await cache.counts(now, fetch)
    assert asked == [hour - timedelta(hours=23)] and len(first) == 24 and first[(hour, "synced")] == 10
    stored[(hour, "synced")] = 11  # the current hour moves on; finished hours do not
    second = await cache.counts(now + timedelta(minutes=5), fetch)
    assert asked[1] == hour and second == {**first, (hour, "synced"): 11}
    later = await cache.counts(now + timedelta(hours=1), fetch)  # a new hour: the one before is finished
    assert asked[2] == hour and (hour - timedelta(hours=23), "synced") not in later
    assert later[(hour, "synced")] == 11 and len(later) == 23  # nothing stored yet for the new hour
