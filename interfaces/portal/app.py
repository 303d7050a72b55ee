"""The portal as a Starlette application: every route and middleware composed in one place.

``make_portal(app)`` is an ASGI application; ``dsar serve`` runs it under uvicorn. Routes:

    GET  /                      the request form
    POST /requests              file it (then 303 to /requests/sent: a reload never files twice)
    GET  /requests/sent         "check your email"
    GET|POST /verify/{id}/{t}   the emailed link: a button (mail scanners only GET), then done
    GET|POST /verify            the one-time code instead of the link
    GET|POST /status            a request's status, by request id and receipt code
    GET  /download/{token}      what the download is, its size, until when
    GET  /download/{token}/file the ZIP (HEAD too)
    GET|POST /records/check     check a completion record against the receipt code
    GET  /records/{id}.json     a closed request's record bundle (no personal data in it)
    GET  /healthz               "ok" when the state database answers
    /api/v1/…                   the API for authorised agents (interfaces.portal.api)
    /.well-known/data-rights.json, /drp/v1/…   the Data Rights Protocol (interfaces.portal.drp)

Every post carries a CSRF token and is rate-limited per client address; wrong methods get 405.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from dsar.app import App
from dsar.datamap.current import controller_name
from dsar.errors import DsarError
from dsar.intake import KeysReachNothing
from dsar.locale import N_, long_date
from dsar.mail import verification as verify
from dsar.settings import KINDS
from interfaces.portal import api, downloads, drp, intake, records, staff, status
from interfaces.portal.forms import MAX_BODY, BodyRefused, Form, read_form
from interfaces.portal.guards import (
    CSRF_FIELD,
    HONEYPOT_FIELD,
    RateLimits,
    client_address,
    csrf_ok,
)
from interfaces.portal.pages import SecurityHeaders, language, page, problem
from interfaces.portal.places import PLACES

log = logging.getLogger("dsar.portal")
EXPIRY_SWEEP_SECONDS = 60
CONFIRM_WRONG = N_("This confirmation link or code is not valid, or has expired.")


async def _guarded_form(request: Request, limit: int = MAX_BODY) -> Form | Response:
    """The post's form, or the response that refuses it (size, encoding, CSRF, rate)."""
    limits: RateLimits = request.app.state.limits
    if not limits.address_ok(client_address(request)):
        return problem(request, 429, N_("Too many attempts"),
                       N_("You have sent this form many times in a short while."),
                       N_("Please wait a few minutes and try again."), {"Retry-After": "60"})
    try:
        form = await read_form(request, limit)
    except BodyRefused as refused:
        return problem(request, refused.status, N_("We could not read the form"),
                       refused.message, N_("Please fill in the form on our page again."))
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return problem(request, 403, N_("Please send the form again"),
                       N_("This form was not sent from our page, or it was open for too long."),
                       N_("Go back to our page, reload it and send the form again."))
    return form


async def form_page(request: Request) -> Response:
    return page(request, "form", form=Form(), kinds=KINDS, places=PLACES)


async def file_request(request: Request) -> Response:
    form = await _guarded_form(request)
    if isinstance(form, Response):
        return form
    if form.get(HONEYPOT_FIELD):  # a bot: it sees the usual answer, nothing is filed
        return RedirectResponse("/requests/sent", status_code=303)
    intake.check(form, request.app.state.dsar.settings)
    if form.errors:
        return page(request, "form", 400, form=form, kinds=KINDS, places=PLACES)
    try:
        outcome = await asyncio.to_thread(intake.file, request.app.state.dsar, form,
                                          request.app.state.limits, language(request))
    except KeysReachNothing:  # the data map looks nobody up by email: the same for everyone
        log.warning("portal intake refused: the data map looks nobody up by email")
        return problem(request, 503, N_("We cannot take requests on this page yet"),
                       N_("Our records cannot be searched by email address yet, so a request "
                          "made here would not find your data. Nothing was recorded."),
                       N_("Please write to us directly; we will answer your request from "
                          "there."))
    log.info("portal intake: %s", outcome.value)
    return RedirectResponse("/requests/sent", status_code=303)


async def sent(request: Request) -> Response:
    return page(request, "sent", hours=request.app.state.dsar.settings.verify_hours)


async def verify_link(request: Request) -> Response:
    request_id, token = request.path_params["request_id"], request.path_params["token"]
    if request.method == "GET":
        return page(request, "verify", request_id=request_id, token=token)
    form = await _guarded_form(request)
    if isinstance(form, Response):
        return form
    return await _confirm(request, request_id, token=token)


async def verify_code(request: Request) -> Response:
    if request.method == "GET":
        return page(request, "verify_code", form=Form())
    form = await _guarded_form(request)
    if isinstance(form, Response):
        return form
    if not form.get("request"):
        form.fail("request", N_("Please enter the request number from our message (dsr_…)."))
    if not form.get("code"):
        form.fail("code", N_("Please enter the six-digit code from our message."))
    if form.errors:
        return page(request, "verify_code", 400, form=form)
    return await _confirm(request, form.get("request"), code=form.get("code"), form=form)


async def _confirm(request: Request, request_id: str, *, token: str | None = None,
                   code: str | None = None, form: Form | None = None) -> Response:
    app: App = request.app.state.dsar
    try:
        done = await asyncio.to_thread(verify.confirm, app, request_id, token=token, code=code)
    except DsarError:  # whatever was wrong: one answer
        if form is not None:
            form.fail("code", CONFIRM_WRONG)
            return page(request, "verify_code", 400, form=form)
        return problem(request, 400, N_("This link does not work"), CONFIRM_WRONG,
                       N_("Use the newest message we sent you, or make the request again."))
    await asyncio.to_thread(intake.after_verification, app, request_id)
    due = f"{long_date(done.request.effective_due, language(request))} ({done.request.timezone})"
    return page(request, "verified", request_id=done.request.id, receipt=done.receipt, due=due)


async def status_page(request: Request) -> Response:
    if request.method == "GET":
        return page(request, "status", form=Form(), found=None)
    form = await _guarded_form(request)
    if isinstance(form, Response):
        return form
    try:
        found = await asyncio.to_thread(status.look_up, request.app.state.dsar,
                                        form.get("request"), form.get("receipt"),
                                        language(request))
    except DsarError:
        form.fail("receipt", status.WRONG_WORDS)
        return page(request, "status", 400, form=form, found=None)
    return page(request, "status", form=Form(), found=found)


async def record_check(request: Request) -> Response:
    if request.method == "GET":
        return page(request, "record_check", form=Form(), outcome=None)
    form = await _guarded_form(request, records.MAX_RECORD)
    if isinstance(form, Response):
        return form
    if not form.get("record"):
        form.fail("record", records.NOT_A_RECORD)
    if not form.get("receipt"):
        form.fail("receipt", N_("Please enter the receipt code we showed you (43 letters and "
                                "digits)."))
    outcome = None
    if not form.errors:
        given = intake.identities_given(form, request.app.state.dsar.settings)
        try:
            outcome = await asyncio.to_thread(records.check, request.app.state.dsar,
                                              form.get("record"), form.get("receipt"), given)
        except DsarError:
            form.fail("record", records.NOT_A_RECORD)
    log.info("record check: %s", "ok" if outcome and outcome.verifies and outcome.about_you
             else "not confirmed")
    return page(request, "record_check", 400 if form.errors else 200, form=form,
                outcome=outcome)


async def record_file(request: Request) -> Response:
    """A closed request's record bundle (it holds no personal data), to keep or to check."""
    request_id = request.path_params["request_id"]
    try:
        text = await asyncio.to_thread(records.record_json, request.app.state.dsar, request_id)
    except DsarError:
        return await not_found(request, HTTPException(404))
    return Response(text, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="record-{request_id}.json"'})


async def healthz(request: Request) -> Response:
    app: App = request.app.state.dsar

    def ping() -> None:
        with app.db.session() as session:
            session.execute(sa.text("SELECT 1"))

    try:
        await asyncio.to_thread(ping)
    except Exception:
        return PlainTextResponse("state database unreachable\n", status_code=503)
    return PlainTextResponse("ok\n")


async def not_found(request: Request, exc: Exception) -> Response:
    return problem(request, 404, N_("Page not found"), N_("There is nothing at this address."),
                   N_("Start from our request form."))


async def not_allowed(request: Request, exc: Exception) -> Response:
    allowed = getattr(exc, "headers", None) or {}
    return problem(request, 405, N_("Not allowed"), N_("This page cannot be used this way."),
                   N_("Use the links and buttons on our pages."), dict(allowed))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(("/api/", "/drp/")):
        return api.problem(exc.status_code, "Not found" if exc.status_code == 404 else
                           "Not allowed" if exc.status_code == 405 else "Error",
                           "See /api/v1/openapi.json for the API's operations.",
                           headers=dict(getattr(exc, "headers", None) or {}))
    if exc.status_code == 405:
        return await not_allowed(request, exc)
    if exc.status_code == 404:
        return await not_found(request, exc)
    return problem(request, exc.status_code, N_("Something went wrong"), str(exc.detail))


def make_portal(app: App, *, sweep_expired: bool = True) -> Starlette:
    """The portal for ``app``'s settings (see the module docstring)."""
    routes = [
        Route("/", form_page, methods=["GET"]),
        Route("/requests", file_request, methods=["POST"]),
        Route("/requests/sent", sent, methods=["GET"]),
        Route("/verify", verify_code, methods=["GET", "POST"]),
        Route("/verify/{request_id}/{token}", verify_link, methods=["GET", "POST"]),
        Route("/status", status_page, methods=["GET", "POST"]),
        Route("/download/{token}", downloads.landing, methods=["GET"]),
        Route("/download/{token}/file", downloads.file, methods=["GET"]),
        Route("/records/check", record_check, methods=["GET", "POST"]),
        Route("/records/{request_id:str}.json", record_file, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/api/v1/openapi.json", api.openapi_document, methods=["GET"]),
        Route("/api/v1/requests", api.file_request, methods=["POST"]),
        Route("/api/v1/requests/{request_id}", api.get_request, methods=["GET"]),
        Route("/api/v1/requests/{request_id}/download-links", api.issue_link, methods=["POST"]),
        Route("/.well-known/data-rights.json", drp.discovery, methods=["GET"]),
        Route("/drp/v1/data-rights-request", drp.exercise, methods=["POST"]),
        Route("/drp/v1/data-rights-request/{request_id}", drp.status, methods=["GET"]),
        Route("/drp/v1/data-rights-request/{request_id}", drp.revoke, methods=["DELETE"]),
        *staff.ROUTES,  # the privacy team's area under /staff (interfaces.portal.staff)
    ]

    @contextlib.asynccontextmanager
    async def lifespan(portal: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_sweep(app)) if sweep_expired else None
        yield
        if task is not None:
            task.cancel()

    portal = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                       exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    portal.state.dsar = app
    portal.state.controller = controller_name(app)
    portal.state.limits = RateLimits(app.settings)
    portal.state.downloads = downloads.Resolver(app)
    return portal


async def _sweep(app: App) -> None:
    """Close unverified requests whose link expired, every minute, while the portal runs."""
    while True:
        try:
            closed = await asyncio.to_thread(verify.expire_unverified, app)
            if closed:
                log.info("closed %d unverified request(s)", len(closed))
        except Exception:
            log.exception("the sweep of unverified requests failed")
        await asyncio.sleep(EXPIRY_SWEEP_SECONDS)
