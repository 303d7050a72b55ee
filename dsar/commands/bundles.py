"""Commands for export bundles and the data subjects' portal."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import click
import sqlalchemy as sa

from dsar.commands.context import CliState, pass_state
from dsar.commands.output import console, json_option, local_time, print_json, styled
from dsar.db.models import Bundle
from dsar.errors import InvalidInput, NotFound


@click.command()
@click.argument("request_id")
@click.option("--new-link", is_flag=True,
              help="Issue a fresh download link (for a requester who lost theirs). It works "
                   "until the link lifetime from now, and never after the bundle is deleted.")
@json_option
@pass_state
def bundle(state: CliState, request_id: str, new_link: bool, as_json: bool) -> None:
    """Show where a request's export bundle is, its digest, and until when it can be fetched."""
    from dsar.bundles.links import issue_link

    app = state.app
    with app.db.session() as session:
        row = session.scalars(sa.select(Bundle).where(Bundle.request_id == request_id)).first()
    if row is None:
        raise NotFound(f"request {request_id!r} has no bundle",
                       "bundles are made for completed access and export requests; "
                       f"see `dsar show {request_id}`")
    now = app.now()
    data = {"request_id": request_id, "bundle_id": row.id, "location": row.location,
            "sha256": row.sha256, "size": row.size, "created_at": row.created_at,
            "link_expires_at": row.link_expires_at, "delete_after": row.delete_after,
            "deleted_at": row.deleted_at, "link": None}
    if new_link:
        if row.deleted_at is not None or now >= row.link_expires_at:
            raise InvalidInput(f"the bundle of {request_id} has expired or been deleted",
                               "submit a new access or export request for the person")
        expires = min(now + timedelta(days=app.settings.link_ttl_days), row.link_expires_at)
        token = issue_link(row.id, expires, app.keys.link_key)
        data["link"] = f"{app.settings.public_url}/download/{token}"
        data["link_valid_until"] = expires
    if as_json:
        print_json(data)
        return
    tz = app.settings.timezone
    console.print(styled("[bold]{}[/] for {}: {}", row.id, request_id, row.location))
    console.print(f"sha256 {row.sha256}, {row.size:,} bytes, made {local_time(row.created_at, tz)}")
    if row.deleted_at:
        console.print(f"deleted {local_time(row.deleted_at, tz)}")
    else:
        console.print(f"downloadable until {local_time(row.link_expires_at, tz)}")
    if data["link"]:
        console.print(f"link (works repeatedly until {local_time(data['link_valid_until'], tz)}):")
        console.print(data["link"], soft_wrap=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port to listen on.")
@pass_state
def serve(state: CliState, host: str, port: int) -> None:
    """Serve the data subjects' portal: the request form and bundle downloads.

    For production put it behind a TLS-terminating proxy, or run the WSGI app
    `dsar.portal:make_portal(App.from_env())` in a WSGI server, and set DSAR_PUBLIC_URL to
    its public address so download links point there.
    """
    from wsgiref.simple_server import make_server

    from dsar.portal import make_portal

    app = state.app
    with make_server(host, port, make_portal(app)) as server:
        console.print(f"portal on http://{host}:{port}/ (links use {app.settings.public_url}); "
                      "Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
