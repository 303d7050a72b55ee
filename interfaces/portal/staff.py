"""The portal's staff area, for the privacy team (``/staff``; users from ``dsar staff add``).

    GET|POST /staff/login                 sign in (rate-limited per address; locks after
                                          repeated failures, see interfaces.portal.staff_accounts)
    POST     /staff/logout                sign out
    GET      /staff                       the queue, soonest due first; filters as query
                                          parameters: state, kind, channel, due_within (days)
    GET      /staff/requests/{id}         a request: identities masked, deadlines, timeline,
                                          tasks, evidence, record, and the actions it allows
    POST     /staff/requests/{id}/{act}   reveal, confirm-identity, approve, extend, reject,
                                          retry, cancel

Every action calls the function the CLI's command calls (``dsar.requests``, ``workflows``), so
the lifecycle checks and the request's audit events are the same, with ``staff:<name>`` as the
actor. Sign-ins, sign-outs and reveals also go to the staff trail (``staff_events``). Every post
carries the portal's CSRF token; the session cookie is HttpOnly, SameSite=Strict and Secure on
https. The pages are in English, use no JavaScript and read on a phone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from dsar import deadlines, requests
from dsar.app import App
from dsar.db.models import EvidenceRow, Task
from dsar.errors import DsarError
from dsar.lifecycle import TERMINAL, TRANSITIONS, State
from dsar.locale import environment
from dsar.settings import CHANNELS, KINDS
from interfaces.portal import staff_accounts as accounts
from interfaces.portal.forms import BodyRefused, Form, read_form
from interfaces.portal.guards import CSRF_FIELD, client_address, csrf_ok, csrf_token, set_csrf

COOKIE = "dsar_staff"
SIGN_IN_LIMIT = "10/5minutes"
DONE = {"confirm-identity": "Identity confirmed.", "approve": "Approved: work has started.",
        "extend": "Deadline extended.", "reject": "Request rejected.",
        "retry": "Failed tasks restarted.", "cancel": "Request cancelled."}


def _render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    token = csrf_token(request)
    zone = ZoneInfo(cast(App, request.app.state.dsar).settings.timezone)

    def when(moment: datetime | None) -> str:
        """A time in the controller's zone, to the minute."""
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "—"

    body = environment("en").get_template(f"staff_{template}.html.j2").render(
        controller=request.app.state.controller, csrf_field=CSRF_FIELD, csrf=token, when=when,
        **values)
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    set_csrf(response, token, secure=_secure(request))
    return response


def _secure(request: Request) -> bool:
    return cast(App, request.app.state.dsar).settings.public_url.startswith("https://")


def _limiter(request: Request) -> MovingWindowRateLimiter:
    state = request.app.state
    if not hasattr(state, "staff_limiter"):
        storage = storage_from_string(state.dsar.settings.rate_limit_storage)
        state.staff_limiter = MovingWindowRateLimiter(storage)
    return cast(MovingWindowRateLimiter, state.staff_limiter)


async def _signed_in(request: Request) -> str | None:
    return await asyncio.to_thread(accounts.session_user, request.app.state.dsar,
                                   request.cookies.get(COOKIE))


async def _form(request: Request) -> Form | None:
    """The post's fields, or None when it cannot be read or fails the CSRF check."""
    try:
        form = await read_form(request)
    except BodyRefused:
        return None
    return form if csrf_ok(request, form.get(CSRF_FIELD)) else None


def _to_login() -> Response:
    return RedirectResponse("/staff/login", status_code=303)


async def login(request: Request) -> Response:
    if request.method == "GET":
        if await _signed_in(request):
            return RedirectResponse("/staff", status_code=303)
        return _render(request, "login", error=None, name="")
    form = await _form(request)
    if form is None:
        return _render(request, "login", 403, name="",
                       error="This form was open too long or not sent from this page. "
                             "Sign in again.")
    name = form.get("name")
    if not _limiter(request).hit(parse(SIGN_IN_LIMIT), "dsar-staff", client_address(request)):
        return _render(request, "login", 429, name=name,
                       error="Too many sign-in attempts from here. Wait a few minutes.")
    try:
        token = await asyncio.to_thread(accounts.sign_in, request.app.state.dsar, name,
                                        form.get("password"))
    except accounts.SignInRefused as refused:
        error = ("This account is locked after repeated failed sign-ins. Try again later, or "
                 "ask for `dsar staff passwd`." if refused.locked
                 else "Wrong name or password.")
        return _render(request, "login", 401, name=name, error=error)
    response = RedirectResponse("/staff", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request), path="/staff")
    return response


async def logout(request: Request) -> Response:
    user = await _signed_in(request)
    form = await _form(request)
    if user is not None and form is not None:
        await asyncio.to_thread(accounts.sign_out, request.app.state.dsar,
                                request.cookies[COOKIE], user)
    response = _to_login()
    response.delete_cookie(COOKIE, path="/staff")
    return response


def _filters(request: Request) -> tuple[dict[str, str], list[str]]:
    """The queue's filters from the query string, and what is wrong with them."""
    given = {k: request.query_params.get(k, "").strip()
             for k in ("state", "kind", "channel", "due_within")}
    errors = []
    choices = {"state": [s.value for s in State], "kind": KINDS, "channel": CHANNELS}
    for key, allowed in choices.items():
        if given[key] and given[key] not in allowed:
            errors.append(f"Unknown {key} {given[key]!r}: choose one from the list.")
            given[key] = ""
    if given["due_within"] and not (given["due_within"].isdigit()
                                    and int(given["due_within"]) <= 3650):
        errors.append("Due within is a number of days (0 to 3650).")
        given["due_within"] = ""
    return given, errors


async def queue(request: Request) -> Response:
    user = await _signed_in(request)
    if user is None:
        return _to_login()
    app: App = request.app.state.dsar
    given, errors = _filters(request)
    within = timedelta(days=int(given["due_within"])) if given["due_within"] else None
    found = await asyncio.to_thread(
        requests.list_requests, app, states=[given["state"]] if given["state"] else [],
        kinds=[given["kind"]] if given["kind"] else [], due_within=within)
    if given["channel"]:
        found = [r for r in found if r.channel == given["channel"]]
    now, tz = app.now(), app.settings.timezone
    rows = [{"id": r.id, "kind": r.kind, "state": r.state, "channel": r.channel,
             "received": deadlines.local_date(r.received_at, tz).isoformat(),
             "due": r.effective_due.isoformat(),
             "left": None if State(r.state) in TERMINAL
             else deadlines.days_left(r.effective_due, now, tz),
             "attention": r.attention_reason} for r in found]
    return _render(request, "queue", 400 if errors else 200, user=user, rows=rows,
                   filters=given, errors=errors, states=[s.value for s in State], kinds=KINDS,
                   channels=CHANNELS, tz=tz)


async def dashboard(request: Request) -> Response:
    """The reviewer's dashboard, the page ``dsar report --html`` writes, for the whole history."""
    user = await _signed_in(request)
    if user is None:
        return _to_login()
    app: App = request.app.state.dsar

    def build() -> str:
        from dsar.records import reviewer_report as reports
        from dsar.records.html import render_dashboard_html

        tz = app.settings.timezone
        today = deadlines.local_date(app.now(), tz)
        with app.db.session() as session:
            data = reports.build_dashboard(session, today=today, start=None, end=None, tz=tz)
        return render_dashboard_html(data)

    return HTMLResponse(await asyncio.to_thread(build))


def _details(app: App, request_id: str, reveal: bool) -> dict[str, Any]:
    request = requests.load(app, request_id)
    identities = requests.identities_of(app, request)
    with app.db.session() as session:
        tasks = list(session.scalars(sa.select(Task).where(Task.request_id == request_id)
                                     .order_by(Task.id)))
        evidence = list(session.scalars(sa.select(EvidenceRow)
                                        .where(EvidenceRow.request_id == request_id)
                                        .order_by(EvidenceRow.id)))
        from dsar.records.record import record_for

        has_record = record_for(session, request_id) is not None
    state = State(request.state)
    return {
        "r": request, "tz": app.settings.timezone, "has_record": has_record, "tasks": tasks,
        "evidence": [(e, {k: v for k, v in e.body.items() if isinstance(v, int | float | str)
                          and not isinstance(v, bool)}) for e in evidence],
        "identities": [(i.name, i.value if reveal else i.masked()) for i in identities],
        "revealed": reveal,
        "left": None if state in TERMINAL else deadlines.days_left(
            request.effective_due, app.now(), app.settings.timezone),
        "can": {
            "confirm-identity": State.VERIFIED in TRANSITIONS[state]
            and request.identity_verified_at is None,
            "approve": state == State.AWAITING_APPROVAL,
            "extend": state not in TERMINAL and request.extended_due is None,
            "reject": State.REJECTED in TRANSITIONS[state],
            "retry": state == State.NEEDS_ATTENTION,
            "cancel": State.CANCELLED in TRANSITIONS[state],
        },
        "grounds": requests.REJECTION_GROUNDS,
    }


async def _request_page(request: Request, user: str, request_id: str, *, status: int = 200,
                        reveal: bool = False, error: str | None = None,
                        done: str | None = None) -> Response:
    try:
        details = await asyncio.to_thread(_details, request.app.state.dsar, request_id, reveal)
    except DsarError:
        return _render(request, "problem", 404, user=user, title="No such request",
                       text=f"There is no request {request_id}.")
    return _render(request, "request", status, user=user, error=error, done=done, **details)


async def request_page(request: Request) -> Response:
    user = await _signed_in(request)
    if user is None:
        return _to_login()
    done = DONE.get(request.query_params.get("done", ""))
    return await _request_page(request, user, request.path_params["request_id"], done=done)


def _retry(app: App, request_id: str, actor: str) -> object:
    """What ``dsar retry ID`` does: refuse if the data map changed, then restart failed tasks."""
    from workflows.retry import refuse_if_the_map_changed
    from workflows.runner import retry

    refuse_if_the_map_changed(app, request_id)
    return retry(app, request_id, actor)


def _action(name: str, form: Form) -> Callable[[App, str, str], object] | None:
    """The call behind action ``name``, taking (app, request id, actor); None if unknown."""
    calls: dict[str, Callable[[App, str, str], object]] = {
        "confirm-identity": lambda a, i, who: requests.confirm_identity(
            a, i, form.get("method"), who),
        "approve": requests.approve,
        "extend": lambda a, i, who: requests.extend(a, i, form.get("reason"), who),
        "reject": lambda a, i, who: requests.reject(a, i, form.get("reason"), who,
                                                    form.get("ground") or "other"),
        "retry": _retry,
        "cancel": lambda a, i, who: requests.cancel(a, i, form.get("reason"), who),
    }
    return calls.get(name)


async def act(request: Request) -> Response:
    user = await _signed_in(request)
    if user is None:
        return _to_login()
    request_id, name = request.path_params["request_id"], request.path_params["action"]
    form = await _form(request)
    if form is None:
        return await _request_page(request, user, request_id, status=403,
                                   error="This form was open too long or not sent from this "
                                         "page. Reload the page and try again.")
    app: App = request.app.state.dsar
    if name == "reveal":
        try:
            await asyncio.to_thread(requests.record_reveal, app, request_id, f"staff:{user}")
        except DsarError:
            return await _request_page(request, user, request_id)  # its 404
        await asyncio.to_thread(accounts.record_reveal, app, request_id, user)
        return await _request_page(request, user, request_id, reveal=True)
    call = _action(name, form)
    if call is None:
        return _render(request, "problem", 404, user=user, title="No such action",
                       text=f"There is no action {name!r}.")
    try:
        await asyncio.to_thread(call, app, request_id, f"staff:{user}")
    except DsarError as refused:
        return await _request_page(request, user, request_id, status=409,
                                   error=refused.one_line())
    return RedirectResponse(f"/staff/requests/{request_id}?done={name}", status_code=303)


ROUTES = [
    Route("/staff", queue, methods=["GET"]),
    Route("/staff/dashboard", dashboard, methods=["GET"]),
    Route("/staff/login", login, methods=["GET", "POST"]),
    Route("/staff/logout", logout, methods=["POST"]),
    Route("/staff/requests/{request_id}", request_page, methods=["GET"]),
    Route("/staff/requests/{request_id}/{action}", act, methods=["POST"]),
]
