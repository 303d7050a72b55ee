"""``dsar notify``: the privacy team sends a message to the person who asked."""

from __future__ import annotations

import click

from dsar.mail.queue import KINDS
from interfaces.commands.context import CliState, pass_state
from interfaces.commands.output import console


@click.command()
@click.argument("request_id")
@click.argument("kind", type=click.Choice(list(KINDS)))
@pass_state
def notify(state: CliState, request_id: str, kind: str) -> None:
    """Queue message KIND to the person who made REQUEST_ID, by email.

    It goes out through the outbox like any other work (the fleet's `send_message` actor; set
    DSAR_SMTP_URL), once per request and kind, and is an audit event without its content.
    Kinds: verification, already_open, acknowledgement, extension, completion (access and
    export: a fresh download link), erasure_confirmation (what was kept and why), refusal.
    """
    from dsar import requests
    from dsar.db.models import MessageRow
    from dsar.mail import queue_message
    from dsar.mail.send import check_sendable

    app = state.app
    request = requests.load(app, request_id)
    check_sendable(app, request, kind)
    with app.db.session() as session:
        stored = requests.get(session, request_id)
        row: MessageRow = queue_message(session, app, stored, kind)
        sent_at = row.sent_at
    if sent_at is not None:
        console.print(f"the {kind} message for {request_id} was already sent; not sent again")
    else:
        console.print(f"{kind} message for {request_id} queued")
