"""The data subjects' web portal: a form to make a request, and the download of their bundle.

A WSGI application (``make_portal(app)``), served by ``dsar serve`` with the standard library's
server or by any WSGI server in production. The form creates a request on the ``web`` channel,
waiting for identity verification by the privacy team (nothing is collected for a person who
has only typed an address), and shows the requester their request id, due date and receipt
code. ``/download/<token>`` serves a bundle while its signed link is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from dsar import requests
from dsar.app import App
from dsar.bundles.download import Downloads
from dsar.bundles.web import make_app as make_download_app
from dsar.errors import DsarError
from dsar.identities import parse_identities
from dsar.settings import KINDS

MAX_BODY = 16 * 1024
StartResponse = Callable[..., Any]
_templates = Environment(loader=PackageLoader("dsar", "templates"),
                         autoescape=select_autoescape(["html", "j2"]))


def make_portal(app: App) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The portal for ``app``'s settings: ``GET /``, ``POST /requests``, ``GET /download/…``."""
    from workflows.assembly import bundle_store

    downloads = make_download_app(Downloads(
        bundle_store(app), app.keys.bundle_key, app.keys.link_key, clock=app.now,
        display_tz=ZoneInfo(app.settings.timezone)))
    controller = _controller_name(app)

    def page(start: StartResponse, status: str, template: str, **values: Any) -> list[bytes]:
        body = _templates.get_template(template).render(controller=controller, kinds=KINDS,
                                                         **values).encode()
        start(status, [("Content-Type", "text/html; charset=utf-8"),
                       ("Content-Length", str(len(body))),
                       ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
                       ("X-Frame-Options", "DENY"), ("Cache-Control", "no-store")])
        return [body]

    def portal(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/download/"):
            return downloads(environ, start)
        if path == "/" and method in ("GET", "HEAD"):
            return page(start, "200 OK", "portal_form.html.j2", form={}, error=None)
        if path == "/requests" and method == "POST":
            return submit(environ, start)
        return page(start, "404 Not Found", "portal_form.html.j2", form={},
                    error="There is no such page here.")

    def submit(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            return page(start, "413 Content Too Large", "portal_form.html.j2", form={},
                        error="The form was too large.")
        raw = environ["wsgi.input"].read(length).decode("utf-8", "replace")
        fields = {k: v[0].strip() for k, v in parse_qs(raw).items() if v}
        kind = fields.get("kind", "")
        try:
            if kind not in KINDS:
                raise DsarError("Please choose what you would like us to do.")
            identities = parse_identities([fields.get("email", "")],
                                          [fields["phone"]] if fields.get("phone") else [])
            made = requests.submit(app, kind, identities, channel="web",
                                   submitted_by="web portal")
        except DsarError as err:
            return page(start, "400 Bad Request", "portal_form.html.j2", form=fields,
                        error=err.one_line())
        request = made.request
        due = request.extended_due or request.due
        return page(start, "201 Created", "portal_done.html.j2", request_id=request.id,
                    kind=request.kind, due=due.strftime("%d %B %Y"),
                    receipt=made.salt)

    return portal


def _controller_name(app: App) -> str:
    try:
        from workflows.runner import load_map

        datamap, _ = load_map(app)
        if datamap.controller is not None:
            return datamap.controller.name
    except DsarError:
        pass
    return "us"

