"""Commands for export bundles and the data subjects' portal."""

from __future__ import annotations

import copy
import logging
from datetime import datetime

import click

from interfaces.commands.context import CliState, pass_state
from interfaces.commands.output import console, json_option, local_time, print_json, styled


@click.command()
@click.argument("request_id")
@click.option("--new-link", is_flag=True,
              help="Issue a fresh download link (for a requester who lost theirs, or whose link "
                   "expired). It works for the link lifetime from now, never after the bundle "
                   "is deleted; it is recorded on the request.")
@click.option("--revoke", is_flag=True,
              help="Withdraw every link issued so far for this bundle (a link sent to the wrong "
                   "address). Combine with --new-link to replace them.")
@json_option
@pass_state
def bundle(state: CliState, request_id: str, new_link: bool, revoke: bool,
           as_json: bool) -> None:
    """Show where a request's export bundle is, its digest, and until when it can be fetched."""
    from dsar.bundles import download_links

    app = state.app
    data: dict[str, object] = {"link": None}
    with app.db.session() as session:
        row = download_links.bundle_of(session, request_id)
        if revoke:
            data["links_revoked"] = download_links.revoke(session, app, row, state.actor)
        if new_link:
            issued = download_links.issue(session, app, row, "command line")
            data["link"], data["link_valid_until"] = issued.url, issued.expires_at
    data = {"request_id": request_id, "bundle_id": row.id, "location": row.location,
            "sha256": row.sha256, "size": row.size, "created_at": row.created_at,
            "link_expires_at": row.link_expires_at, "delete_after": row.delete_after,
            "deleted_at": row.deleted_at, **data}
    if as_json:
        print_json(data)
        return
    tz = app.settings.timezone
    console.print(styled("[bold]{}[/] for {}: {}", row.id, request_id, row.location))
    console.print(f"sha256 {row.sha256}, {row.size:,} bytes, made {local_time(row.created_at, tz)}")
    if row.deleted_at:
        console.print(f"deleted {local_time(row.deleted_at, tz)}")
    else:
        console.print(f"kept until {local_time(row.delete_after, tz)}; a new link can be issued "
                      "until then")
    if revoke:
        console.print(f"{data['links_revoked']} link(s) withdrawn")
    if data["link"]:
        until = data["link_valid_until"]
        assert isinstance(until, datetime)
        console.print(f"link (works repeatedly until {local_time(until, tz)}):")
        console.print(data["link"], soft_wrap=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True,
              help="Processes to run (share rate limits with DSAR_RATE_LIMIT_STORAGE=redis://…).")
@click.option("--proxy-headers/--no-proxy-headers", default=False, show_default=True,
              help="Trust X-Forwarded-For/-Proto from the proxy in front (behind a TLS proxy).")
@pass_state
def serve(state: CliState, host: str, port: int, workers: int, proxy_headers: bool) -> None:
    """Serve the data subjects' portal under uvicorn: the request form, verification,
    status and bundle downloads, to many clients at once.

    For production put it behind a TLS-terminating proxy (see the README), with
    --proxy-headers, and set DSAR_PUBLIC_URL to its public https:// address so the links in
    messages point there. Download and verification tokens never appear in the access log.
    """
    import uvicorn

    from interfaces.portal.guards import RedactTokens

    app = state.app
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    console.print(f"portal on http://{host}:{port}/ (links use {app.settings.public_url}); "
                  "Ctrl-C to stop")
    if workers > 1:
        uvicorn.run("interfaces.portal.serving:from_env", factory=True, host=host, port=port,
                    workers=workers, proxy_headers=proxy_headers, server_header=False,
                    log_config=log_config())
        return
    from interfaces.portal import make_portal

    uvicorn.run(make_portal(app), host=host, port=port, proxy_headers=proxy_headers,
                server_header=False, log_config=log_config())


def log_config() -> dict[str, object]:
    """uvicorn's logging set-up with the token filter on its access log (for every worker)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {
        "()": "interfaces.portal.guards.RedactTokens"}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    return config
