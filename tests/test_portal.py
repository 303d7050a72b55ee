"""The data subjects' portal over real HTTP: the form, a request made from it, bad input."""

from __future__ import annotations

import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from dsar import requests
from dsar.app import App
from dsar.portal import make_portal

DEMO_MAP = Path(__file__).resolve().parent.parent / "dsar" / "demo" / "datamap.yaml"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[str, App]]:
    shutil.copyfile(DEMO_MAP, tmp_path / "datamap.yaml")
    app = App.from_env({"DSAR_DATA_DIR": str(tmp_path), "DSAR_TIMEZONE": "Europe/Berlin"})
    server = make_server("127.0.0.1", 0, make_portal(app), handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    server.server_close()


def post(url: str, fields: dict[str, str]) -> tuple[int, str]:
    data = urllib.parse.urlencode(fields).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data)) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_the_form_names_the_controller_and_the_three_rights(portal: tuple[str, App]) -> None:
    url, _app = portal
    with urllib.request.urlopen(url + "/") as response:
        page = response.read().decode()
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Northwind Outfitters GmbH" in page
    for kind in ("access", "export", "erasure"):
        assert f'value="{kind}"' in page


def test_a_request_from_the_form_waits_for_identity_on_the_web_channel(
        portal: tuple[str, App]) -> None:
    url, app = portal
    status, page = post(url + "/requests", {"kind": "erasure", "email": "Jane@Example.org "})
    assert status == 201
    [made] = requests.list_requests(app)
    assert (made.kind, made.channel, made.state) == ("erasure", "web", "awaiting_identity")
    assert made.id in page
    assert made.due.strftime("%d %B %Y") in page
    loaded = requests.load(app, made.id)
    assert [i.value for i in requests.identities_of(app, loaded)] == ["jane@example.org"]


@pytest.mark.parametrize("fields, problem", [
    ({"kind": "access", "email": "not-an-address"}, "not a valid email address"),
    ({"kind": "delete-everything", "email": "jane@example.org"}, "choose what you would like"),
    ({"kind": "access", "email": "jane@example.org", "phone": "030 1234"}, "country code"),
])
def test_bad_input_is_explained_and_changes_nothing(portal: tuple[str, App],
                                                    fields: dict[str, str], problem: str) -> None:
    url, app = portal
    status, page = post(url + "/requests", fields)
    assert status == 400
    assert problem in page
    assert 'role="alert"' in page
    assert requests.list_requests(app) == []


def test_a_forged_download_link_is_refused(portal: tuple[str, App]) -> None:
    url, _app = portal
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url + "/download/bm90LWEtdG9rZW4.Zm9yZ2Vk")
    assert err.value.code == 403
