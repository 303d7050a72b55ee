"""Signed, expiring download tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dsar.bundles import LinkExpired, LinkInvalid, issue_link, verify_link

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=7)


def test_bundle_link_round_trip_and_reuse() -> None:
    token = issue_link("b123", EXPIRES, SECRET)
    assert all(c.isalnum() or c in "-_." for c in token)
    assert verify_link(token, SECRET, NOW) == "b123"
    assert verify_link(token, SECRET, EXPIRES - timedelta(seconds=1)) == "b123"


def test_bundle_link_expired_says_when_and_what_to_do() -> None:
    token = issue_link("b123", EXPIRES, SECRET)
    paris = ZoneInfo("Europe/Paris")
    with pytest.raises(LinkExpired) as caught:
        verify_link(token, SECRET, EXPIRES, display_tz=paris)
    message = caught.value.one_line()
    assert "expired on 2024-05-08 14:00 CEST (UTC+02:00)" in message
    assert "ask" in message and "new link" in message
    assert caught.value.expired_at == EXPIRES


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "...",
        lambda t: "é.é",
        lambda t: "not base64!.###",
        lambda t: base64.urlsafe_b64encode(b"9999999999:b123").decode().rstrip("=")
        + "." + t.split(".")[1],
    ],
)
def test_bundle_link_forged_refused(mangle) -> None:
    token = issue_link("b123", EXPIRES, SECRET)
    with pytest.raises(LinkInvalid, match="not valid"):
        verify_link(mangle(token), SECRET, NOW)


def test_bundle_link_other_secret_refused_even_when_expired() -> None:
    token = issue_link("b123", EXPIRES, b"another-secret-another-secret!!")
    with pytest.raises(LinkInvalid):
        verify_link(token, SECRET, NOW)
    with pytest.raises(LinkInvalid):
        verify_link(token, SECRET, EXPIRES + timedelta(days=1))


def test_bundle_link_contract_errors() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_link("b1", datetime(2024, 1, 1), SECRET)
    with pytest.raises(ValueError, match="at least 16"):
        issue_link("b1", EXPIRES, b"short")
    with pytest.raises(ValueError, match="bundle id"):
        issue_link("../x", EXPIRES, SECRET)
