"""Commands that submit requests and move them through their lifecycle."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import click

from dsar import deadlines, requests
from dsar.db.models import Request
from dsar.errors import InvalidInput
from dsar.identities import parse_identities
from dsar.lifecycle import TERMINAL as TERMINAL_STATES
from dsar.lifecycle import State
from dsar.records.glance import (
    collection_notes,
    columns_for,
    predicate_of,
    request_facts,
    summary_sentence,
)
from dsar.records.record import record_for
from dsar.settings import CHANNELS, KINDS, REGIME_NAMES
from interfaces.commands import exits
from interfaces.commands.context import CliState, pass_state
from interfaces.commands.output import (
    console,
    json_option,
    local_time,
    print_json,
    shown,
    styled,
    table,
)
from workflows.progress import task_table


def parse_received_at(_ctx: Any, _param: Any, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"--received-at {value!r} is not an ISO 8601 time",
            "write it as 2025-03-05T09:30:00+01:00 (or Z for UTC)",
        ) from None
    return moment


def parse_within(_ctx: Any, _param: Any, value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)\s*([dw])", value.strip())
    if not match:
        raise InvalidInput(f"--due-within {value!r} is not a duration", "write 7d or 2w")
    n = int(match.group(1))
    return timedelta(days=n * (7 if match.group(2) == "w" else 1))


def request_summary(app_tz: str, request: Request, now: datetime) -> dict[str, Any]:
    due = request.effective_due
    return {
        "id": request.id,
        "kind": request.kind,
        "regime": request.regime,
        "state": request.state,
        "channel": request.channel,
        "received_at": request.received_at,
        "due": request.due,
        "extended_due": request.extended_due,
        "days_left": deadlines.days_left(due, now, app_tz),
        "rule": f"{request.rule_id}@{request.rule_version}",
        "attention": request.attention_reason,
    }


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--email", "emails", multiple=True, metavar="ADDRESS",
              help="The subject's email address (repeatable).")
@click.option("--phone", "phones", multiple=True, metavar="NUMBER",
              help="The subject's phone number with country code, e.g. +4930123456.")
@click.option("--id", "ids", multiple=True, metavar="NAME=VALUE",
              help="A named identifier known to the data map, e.g. customer_id=42.")
@click.option("--regime", type=click.Choice(REGIME_NAMES),
              help="The law the request is made under [default: DSAR_DEFAULT_REGIME].")
@click.option("--channel", type=click.Choice(CHANNELS), default="cli", show_default=True,
              help="How the request arrived.")
@click.option("--received-at", callback=parse_received_at, metavar="TIME",
              help="When it arrived, ISO 8601 with a time zone [default: now].")
@click.option("--identity-verified", "identity_method", metavar="METHOD",
              help="The identity was already verified by METHOD (only the method is kept).")
@click.option("--wait", is_flag=True,
              help="Wait until the request is done (or needs a person), showing progress. With "
                   "the in-process broker, the work is done by this command. Exits 7 if the "
                   "request needs attention, 8 if it is still in progress after an hour.")
@json_option
@pass_state
def submit(state: CliState, kind: str, emails: tuple[str, ...], phones: tuple[str, ...],
           ids: tuple[str, ...], regime: str | None, channel: str,
           received_at: datetime | None, identity_method: str | None, wait: bool,
           as_json: bool) -> None:
    """Record a new access, export or erasure request.

    Prints the request id, its legal due date and the subject's receipt code. Give the receipt
    code to the requester: with it they can prove that a completion record is about them; dsar
    does not keep it. With --wait the exit code says how the request ended (see `dsar --help`).

    \b
    Example:
      dsar submit access --email jane@example.com --identity-verified email-link
    """
    identities = parse_identities(emails, phones, ids)
    app = state.app
    made = requests.submit(app, kind, identities, regime=regime, channel=channel,
                           received_at=received_at, submitted_by=state.actor,
                           identity_method=identity_method)
    r = made.request
    if wait:
        from interfaces.commands.fleet import wait_with_progress

        wait_with_progress(state, r.id)
        r = requests.load(app, r.id)
    summary = request_summary(app.settings.timezone, r, app.now())
    if as_json:
        print_json({**summary, "receipt_code": made.salt})
    else:
        console.print(styled("[bold]{}[/] {} request, {}", r.id, r.kind, r.state))
        console.print(f"due {r.due.isoformat()} ({summary['days_left']} days left, "
                      f"{r.timezone}), rule {summary['rule']}")
        console.print(f"receipt code for the requester: {made.salt}")
        if r.attention_reason:
            console.print(styled("[red]needs attention:[/] {}", r.attention_reason))
        pending = [j for j in _vendor_jobs(app, r.id) if j["state"] == "pending"]
        if wait and pending:
            console.print(styled("[yellow]waiting for {}:[/] {} erasure job(s) still running; "
                                 "`dsar worker` polls them and completes the request "
                                 "(`dsar show {}`)", ", ".join(sorted({j["vendor"]
                                                                      for j in pending})),
                                 len(pending), r.id))
    if wait and (code := exits.for_waited_state(r.state)) != exits.OK:
        raise SystemExit(code)


@click.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in State]),
              help="Only requests in this state (repeatable).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS),
              help="Only requests of this kind (repeatable).")
@click.option("--channel", "channels", multiple=True, type=click.Choice(CHANNELS),
              help="Only requests that arrived this way (repeatable).")
@click.option("--overdue", is_flag=True, help="Only open requests past their due date.")
@click.option("--due-within", callback=parse_within, metavar="7d|2w",
              help="Only open requests due within this many days or weeks.")
@json_option
@pass_state
def list_cmd(state: CliState, states: tuple[str, ...], kinds: tuple[str, ...],
             channels: tuple[str, ...], overdue: bool, due_within: timedelta | None,
             as_json: bool) -> None:
    """List requests, soonest due first.

    Days left count to the effective due date (the extended one if extended) and are shown
    for open requests only. On a narrow terminal the received date, regime and channel
    columns are left out first; --json always has every field.
    """
    app = state.app
    found = requests.list_requests(app, states=states, kinds=kinds, overdue=overdue,
                                   due_within=due_within)
    if channels:
        found = [r for r in found if r.channel in channels]
    now = app.now()
    tz = app.settings.timezone
    rows = [request_summary(tz, r, now) for r in found]
    if as_json:
        print_json(rows)
        return
    console.print(table(
        f"{len(rows)} request(s), due dates in {tz}",
        ["id", "kind", "regime", "state", "channel", "received", "due", "left", "attention"],
        [[r["id"], r["kind"], r["regime"], r["state"], r["channel"],
          deadlines.local_date(r["received_at"], tz).isoformat(),
          (r["extended_due"] or r["due"]).isoformat(), _left(r), r["attention"]]
         for r in rows],
        optional=("received", "regime", "channel"),
    ))


@click.command()
@click.argument("request_id")
@click.option("--reveal", is_flag=True,
              help="Show identities in full. The reveal is written to the audit trail.")
@json_option
@pass_state
def show(state: CliState, request_id: str, reveal: bool, as_json: bool) -> None:
    """Show one request: identities (masked), state, deadlines and its full timeline.

    A finished request starts with the sentence its completion record's page starts with,
    and shows how identity was verified, when the export was first downloaded and what each
    system's counts mean.
    """
    app = state.app
    request = requests.load(app, request_id)
    identities = requests.identities_of(app, request)
    if reveal:
        requests.record_reveal(app, request_id, state.actor)
        request = requests.load(app, request_id)
    tz = app.settings.timezone
    data = request_summary(tz, request, app.now())
    with app.db.session() as session:
        facts = request_facts(session, request.id)
        stored = record_for(session, request.id)
        predicate = predicate_of(stored.envelope) if stored is not None else None
    data.update({
        "identities": [i.value if reveal else i.masked() for i in identities],
        "submitted_by": request.submitted_by,
        "identity_method": request.identity_method,
        "identity_verified_at": request.identity_verified_at,
        "first_downloaded_at": facts.get("first_downloaded_at"),
        "downloads": facts.get("downloads", 0),
        "acknowledge_by": request.acknowledge_by,
        "extension_notice_by": request.extension_notice_by,
        "extension_reason": request.extension_reason,
        "closing_reason": request.closing_reason,
        "timezone": tz,
        "summary": summary_sentence(predicate) if predicate else None,
        "systems": _system_rows(predicate) if predicate else [],
        "pauses": [{"from": p.started_at, "to": p.ended_at, "reason": p.reason}
                   for p in request.pauses],
        "tasks": task_table(app, request.id),
        "vendor_jobs": _vendor_jobs(app, request.id),
        "timeline": [{"at": e.at, "actor": e.actor, "event": e.event, "from": e.from_state,
                      "to": e.to_state, "reason": e.reason} for e in request.events],
    })
    if as_json:
        print_json(data)
        return
    _print_show(request, data, tz)


def _vendor_jobs(app: Any, request_id: str) -> list[dict[str, Any]]:
    from workflows.vendor_jobs import waiting

    with app.db.session() as session:
        return waiting(session, request_id)


def _left(summary: dict[str, Any]) -> int | None:
    """Days left for an open request; none for a finished one (its clock has stopped)."""
    return None if summary["state"] in TERMINAL_STATES else summary["days_left"]


def _system_rows(predicate: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's per-collection outcome with the notes that explain its counts."""
    return [{"system": s["system"], **{k: c.get(k) for k in (
        "collection", "action", "found", "collected", "deleted", "masked", "retained",
        "remaining", "outcome")}, "notes": collection_notes(c)}
        for s in predicate.get("systems", []) for c in s.get("collections", [])]


def _print_show(request: Request, data: dict[str, Any], tz: str) -> None:
    console.print(styled("[bold]{}[/]  {} ({}), [bold]{}[/]", request.id, request.kind,
                         request.regime, request.state))
    if data["summary"]:
        console.print(data["summary"])
    console.print("identities: " + (", ".join(data["identities"]) or
                                     "deleted after the retention period "
                                     "(DSAR_IDENTITY_RETENTION_DAYS)"))
    console.print(f"received {local_time(request.received_at, tz)} via {request.channel}, "
                  f"by {request.submitted_by}")
    if request.identity_verified_at is not None:
        console.print(f"identity verified {local_time(request.identity_verified_at, tz)} "
                      f"by {request.identity_method}")
    else:
        console.print("identity not verified yet")
    if data["first_downloaded_at"] is not None:
        console.print(f"export first downloaded {local_time(data['first_downloaded_at'], tz)}"
                      f" ({data['downloads']} download(s))")
    left = "" if _left(data) is None else f" · {data['days_left']} days left"
    extended = f" · extended to {request.extended_due}" if request.extended_due else ""
    console.print(f"due {request.due}{extended}{left}")
    console.print(f"extension notice by {shown(request.extension_notice_by)} · acknowledge by "
                  f"{shown(request.acknowledge_by)}")
    console.print(f"rule {data['rule']}, dates in {tz}")
    if request.attention_reason:
        console.print(styled("[red]needs attention:[/] {}", request.attention_reason))
    if request.closing_reason:
        console.print(f"reason: {request.closing_reason}")
    if data["systems"]:
        columns = columns_for(request.kind)
        console.print(table("outcome per system", ["system", "collection", *columns, "outcome",
                                                   "notes"], [
            [x["system"], x["collection"], *(x[c] for c in columns), x["outcome"],
             "; ".join(x["notes"]) or None] for x in data["systems"]]))
    if data["tasks"]:
        console.print(table("tasks", ["system", "action", "state", "attempts", "error"], [
            [t["system"], t["action"], t["state"], t["attempts"],
             f"{t['error_code']}: {t['error']}" if t["error_code"] else None]
            for t in data["tasks"]]))
    pending = [j for j in data["vendor_jobs"] if j["state"] == "pending"]
    if pending:
        vendors = ", ".join(sorted({j["vendor"] for j in pending}))
        console.print(styled("[yellow]waiting for {}:[/] {} erasure job(s) still running; the "
                             "request completes when the vendor reports them finished",
                             vendors, len(pending)))
    if data["vendor_jobs"]:
        console.print(table("vendor jobs", ["system", "job", "state", "vendor status",
                                            "submitted", "next poll"], [
            [j["system"], j["job"], j["state"], j["vendor_status"],
             local_time(j["submitted_at"], tz),
             local_time(j["next_poll_at"], tz) if j["next_poll_at"] else None]
            for j in data["vendor_jobs"]], optional=("next poll",)))
    console.print(table("timeline", ["when", "who", "event", "from", "to", "why"], [
        [local_time(e["at"], tz), e["actor"], e["event"], e["from"], e["to"], e["reason"]]
        for e in data["timeline"]], optional=("from", "to", "who")))


def _transition_command(name: str, func: Any, help_text: str, *, reason: bool,
                        reason_required: bool = True, extra: list[Any] | None = None) -> Any:
    @click.command(name, help=help_text)
    @click.argument("request_id")
    @json_option
    @pass_state
    def command(state: CliState, request_id: str, as_json: bool, **kwargs: Any) -> None:
        app = state.app
        request = func(app, request_id, actor=state.actor, **kwargs)
        summary = request_summary(app.settings.timezone, request, app.now())
        if as_json:
            print_json(summary)
        else:
            due = request.extended_due or request.due
            left = "" if _left(summary) is None else f" ({summary['days_left']} days left)"
            console.print(f"{request.id} is {request.state}; due {due}{left}")

    if reason:
        # no explicit default: with one, click (8.3+) no longer enforces required=True
        command = click.option("--reason", required=reason_required,
                               help="Why; written to the audit trail.")(command)
    for option in extra or []:
        command = option(command)
    return command


confirm_identity = _transition_command(
    "confirm-identity", lambda app, rid, actor, method: requests.confirm_identity(
        app, rid, method, actor),
    "Record that the subject's identity was verified. Only the method is kept, never documents "
    "(EDPB Guidelines 01/2022 §79). Under UK GDPR the clock starts now.",
    reason=False, extra=[click.option("--method", required=True,
                                      help="How it was verified, e.g. email-link, account-login.")],
)
approve = _transition_command(
    "approve", lambda app, rid, actor: requests.approve(app, rid, actor),
    "Approve a request waiting for approval, so that work starts.", reason=False)
extend = _transition_command(
    "extend", lambda app, rid, actor, reason: requests.extend(app, rid, reason, actor),
    "Take the regime's extension (once, with a reason, before the first period ends). Tell the "
    "subject, with the reason, by the extension notice date.", reason=True)
pause = _transition_command(
    "pause", lambda app, rid, actor, reason: requests.pause(app, rid, reason, actor),
    "Wait for clarification from the subject. The clock stops where the regime allows.",
    reason=True)
resume = _transition_command(
    "resume", lambda app, rid, actor, reason: requests.resume(app, rid, actor, reason),
    "The subject answered: end the pause and carry on.", reason=True, reason_required=False)
cancel = _transition_command(
    "cancel", lambda app, rid, actor, reason: requests.cancel(app, rid, reason, actor),
    "Cancel a request (for example, withdrawn by the subject).", reason=True)
reject = _transition_command(
    "reject", lambda app, rid, actor, reason, ground: requests.reject(
        app, rid, reason, actor, ground),
    "Refuse a request, with the reason the subject will be given (Art. 12(4)).", reason=True,
    extra=[click.option("--ground", type=click.Choice(list(requests.REJECTION_GROUNDS)),
                        default="other", show_default=True,
                        help="The legal ground of the refusal.")],
)

COMMANDS = [submit, list_cmd, show, confirm_identity, approve, extend, pause, resume, cancel,
            reject]
