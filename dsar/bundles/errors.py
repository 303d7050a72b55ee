"""Errors of the bundle package. Each says what is wrong and what the person can do."""

from __future__ import annotations

from datetime import datetime

from dsar.errors import DsarError, InvalidInput, NotFound


class BundleCorrupted(DsarError):
    """Stored bundle bytes failed authentication: tampered with, truncated or the wrong key."""

    exit_code = 6


class LinkInvalid(InvalidInput):
    """A download token that we did not issue (forged, mangled or signed with another secret)."""


class LinkExpired(DsarError):
    """A genuine download token whose expiry has passed."""

    def __init__(self, expired_at: datetime) -> None:
        when = format_when(expired_at)
        super().__init__(
            f"This download link expired on {when}",
            "ask the controller for a new link; your request does not need to be made again",
        )
        self.expired_at = expired_at
        self.bundle_id: str | None = None
        """Set by link verification: the bundle a genuine expired link named."""


class BundleMissing(NotFound):
    """The link is valid but the bundle is gone (purged or never stored)."""


def format_when(moment: datetime) -> str:
    """``2024-05-01 14:03 CEST (UTC+02:00)``: a time a person can read, with its zone."""
    if moment.tzinfo is None:
        raise ValueError("times shown to people must be timezone-aware")
    offset = moment.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    name = moment.tzname() or offset
    if name in {"UTC", "UTC+00:00"}:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"{moment.strftime('%Y-%m-%d %H:%M')} {name} ({offset})"


__all__ = ["BundleCorrupted", "BundleMissing", "LinkExpired", "LinkInvalid", "format_when"]
