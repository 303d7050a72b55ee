"""Access and export bundles: staged data in, an encrypted zip and an expiring link out.

Public API::

    build_bundle(meta, datamap, items_factory, store, key, now) -> BundleInfo
    open_store(url, **opts) -> BundleStore
    issue_link(bundle_id, expires_at, secret) -> token
    verify_link(token, secret, now) -> bundle_id
    open_download(token, store=, key=, secret=, now=) -> Download
    make_app(resolver) -> WSGI app            (dsar.bundles.web)
    purge_expired(store, now) -> [bundle_id]
    delete_bundle(store, bundle_id); purge_orphans(store, known, now, grace) -> [bundle_id]

See docs/bundle.md for the bundle's layout and the design choices.
"""

from dsar.bundles.build import build_bundle
from dsar.bundles.download import Download, Downloads, open_download
from dsar.bundles.errors import BundleCorrupted, BundleMissing, LinkExpired, LinkInvalid
from dsar.bundles.items import (
    BundleInfo,
    BundleMeta,
    CollectedItem,
    ItemsFactory,
    RowsBatch,
    StagedObject,
)
from dsar.bundles.links import issue_link, verify_link
from dsar.bundles.retention import delete_bundle, purge_expired, purge_orphans
from dsar.bundles.store import BundleStore, LocalBundleStore, open_store
from dsar.bundles.web import make_app

__all__ = [
    "BundleCorrupted",
    "BundleInfo",
    "BundleMeta",
    "BundleMissing",
    "BundleStore",
    "CollectedItem",
    "Download",
    "Downloads",
    "ItemsFactory",
    "LinkExpired",
    "LinkInvalid",
    "LocalBundleStore",
    "RowsBatch",
    "StagedObject",
    "build_bundle",
    "delete_bundle",
    "issue_link",
    "make_app",
    "open_download",
    "open_store",
    "purge_expired",
    "purge_orphans",
    "verify_link",
]
