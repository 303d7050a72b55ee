"""The download app over real HTTP (stdlib wsgiref server, urllib client)."""

from __future__ import annotations

import hashlib
import io
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from dsar.bundles import BundleMeta, Downloads, build_bundle, issue_link, make_app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def served(datamap, local_store, key, secret, now, sample_items) -> Iterator[tuple]:
    info = build_bundle(BundleMeta("req-web", timezone="Europe/Berlin",
                                   link_ttl=timedelta(days=7)),
                        datamap, lambda: sample_items(), local_store, key, now)
    clock = Clock(now)
    app = make_app(Downloads(local_store, key, secret, clock=clock))
    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    yield base, info, clock
    server.shutdown()
    server.server_close()


def fetch(url: str, method: str = "GET") -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_bundle_web_valid_link_works_repeatedly(served, secret) -> None:
    base, info, clock = served
    url = f"{base}/download/{issue_link(info.bundle_id, info.expires_at, secret)}"
    for _ in range(2):
        status, headers, body = fetch(url)
        assert status == 200
        assert headers["Content-Type"] == "application/zip"
        assert headers["Cache-Control"] == "no-store"
        assert int(headers["Content-Length"]) == len(body) == info.size
        disposition = headers["Content-Disposition"]
        assert disposition == 'attachment; filename="personal-data-2024-05-01.zip"'
        assert hashlib.sha256(body).hexdigest() == info.sha256
        assert zipfile.ZipFile(io.BytesIO(body)).testzip() is None
    clock.now = info.expires_at - timedelta(seconds=1)
    assert fetch(url)[0] == 200
    status, headers, body = fetch(url, "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == info.size


def test_bundle_web_expired_link_is_gone_with_a_clear_page(served, secret) -> None:
    base, info, clock = served
    url = f"{base}/download/{issue_link(info.bundle_id, info.expires_at, secret)}"
    clock.now = info.expires_at + timedelta(minutes=1)
    status, headers, body = fetch(url)
    page = body.decode()
    assert status == 410 and headers["Content-Type"].startswith("text/html")
    assert "This link has expired" in page
    assert "expired on 2024-05-08 14:00 CEST (UTC+02:00)" in page
    assert "ask the controller for a new link" in page.lower()


def test_bundle_web_token_longer_than_bundle_is_refused_after_bundle_expiry(served, secret):
    base, info, clock = served
    token = issue_link(info.bundle_id, info.expires_at + timedelta(days=9), secret)
    url = f"{base}/download/{token}"
    clock.now = info.expires_at + timedelta(days=1)
    assert fetch(url)[0] == 410


def test_bundle_web_forged_link_forbidden(served, secret) -> None:
    base, info, _ = served
    token = issue_link(info.bundle_id, info.expires_at, b"not-the-servers-secret-at-all!!")
    status, _, body = fetch(f"{base}/download/{token}")
    assert status == 403 and "Link not valid" in body.decode()
    assert fetch(f"{base}/download/garbage")[0] == 403


def test_bundle_web_other_paths_and_methods(served, secret) -> None:
    base, info, _ = served
    assert fetch(f"{base}/")[0] == 404
    assert fetch(f"{base}/download/../../etc/passwd")[0] == 404
    url = f"{base}/download/{issue_link(info.bundle_id, info.expires_at, secret)}"
    status, headers, _ = fetch(url, "POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_bundle_web_purged_bundle_is_gone(served, secret, local_store) -> None:
    base, info, _ = served
    for name in list(local_store.names()):
        local_store.delete(name)
    token = issue_link(info.bundle_id, info.expires_at, secret)
    status, _, body = fetch(f"{base}/download/{token}")
    assert status == 410 and "no longer available" in body.decode()


def test_bundle_web_tampered_bundle_is_not_served(served, secret, local_store) -> None:
    base, info, _ = served
    path = local_store.root / f"{info.bundle_id}.zip.dsar"
    data = bytearray(path.read_bytes())
    data[60] ^= 1
    path.write_bytes(bytes(data))
    token = issue_link(info.bundle_id, info.expires_at, secret)
    status, _, body = fetch(f"{base}/download/{token}")
    assert status == 500 and "could not be verified" in body.decode()
