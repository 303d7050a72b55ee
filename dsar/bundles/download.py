"""Turning a download token into the decrypted bundle bytes.

:func:`open_download` validates the token (forged -> :class:`LinkInvalid`, expired ->
:class:`LinkExpired` saying when and what to do), finds the bundle's record and streams the zip,
decrypting it as it goes. A bundle whose record is not complete yet raises
:class:`BundleNotReady` (a :class:`~dsar.bundles.errors.BundleMissing` that will come back),
so callers tell "still being prepared" from "deleted" by class, not by wording. Downloads do not
consume the link: it works until it expires.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from dsar.bundles.aead import decrypt_stream
from dsar.bundles.errors import BundleMissing, LinkExpired
from dsar.bundles.links import verify_link
from dsar.bundles.sidecar import read_sidecar
from dsar.bundles.store import BundleStore


class BundleNotReady(BundleMissing):
    """The link is valid and the bundle is being written: ask again in a few minutes.

    A subclass of :class:`BundleMissing` (nothing to download now), with ``code`` so pages and
    APIs can tell it from a bundle that is gone for good."""

    code = "bundle_not_ready"


@dataclass
class Download:
    """An open download: the zip's bytes (plaintext), its size and a file name to offer."""

    bundle_id: str
    filename: str
    size: int | None
    chunks: Iterator[bytes]
    sources: tuple[Iterator[bytes], ...] = ()

    def close(self) -> None:
        """Stop early (client went away): close the decryptor and the store's stream."""
        for source in self.sources:
            close = getattr(source, "close", None)
            if close is not None:
                close()


def open_download(
    token: str,
    *,
    store: BundleStore,
    key: bytes | None,
    secret: bytes,
    now: datetime,
    display_tz: tzinfo | None = None,
    available_until: datetime | None = None,
) -> Download:
    """The bundle a token names, ready to stream.

    ``available_until``: the end of the bundle's life as the state database knows it (its
    retention), when the caller has read it; it replaces the first link's expiry kept beside
    the bundle, so a link issued later (``dsar bundle ID --new-link``) works to its own end.

    The first chunk is decrypted before this returns, so a wrong key or a damaged header is
    an error here rather than halfway through a response. Damage further in raises
    :class:`~dsar.bundles.errors.BundleCorrupted` while iterating.
    """
    bundle_id = verify_link(token, secret, now, display_tz)
    record = read_sidecar(store, bundle_id)
    until = available_until or record.expires_at
    if now >= until:
        raise LinkExpired(until.astimezone(display_tz or now.tzinfo))
    if not record.complete:
        raise BundleNotReady("your bundle is still being prepared", "try again in a few minutes")
    raw = store.open_stream(record.blob)
    if record.encrypted:
        if key is None:
            raise ValueError("this bundle is encrypted; the download service needs the key")
        chunks: Iterator[bytes] = decrypt_stream(raw, key)
    else:
        chunks = raw
    try:
        first = next(chunks, b"")
    except BaseException:
        _close_all(chunks, raw)
        raise
    return Download(bundle_id, record.filename, record.size, itertools.chain([first], chunks),
                    sources=(chunks, raw))


def _close_all(*streams: Iterator[bytes]) -> None:
    for stream in streams:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


class Downloads:
    """A resolver for :func:`dsar.bundles.web.make_app`: token -> :class:`Download`."""

    def __init__(
        self,
        store: BundleStore,
        key: bytes | None,
        secret: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        display_tz: tzinfo | None = None,
    ) -> None:
        self.store, self.key, self.secret = store, key, secret
        self.clock, self.display_tz = clock, display_tz

    def __call__(self, token: str) -> Download:
        return open_download(
            token, store=self.store, key=self.key, secret=self.secret, now=self.clock(),
            display_tz=self.display_tz,
        )
