"""``/api/v1``: authorised agents file requests, follow them and fetch the data.

    GET  /api/v1/openapi.json                            the contract (interfaces.portal.openapi)
    POST /api/v1/requests                                file a request (201, Location)
    GET  /api/v1/requests/{id}                           where it stands
    POST /api/v1/requests/{id}/download-links            a download link, once completed

Every call but the document needs ``Authorization: Bearer <token>`` (``dsar agents issue``);
an agent sees only the requests it filed. A request filed here is on the ``api`` channel, and
the person confirms it by email exactly as on the web form (the same transaction writes the
request, its verification and the email). Errors are ``application/problem+json`` (RFC 9457),
with ``errors`` naming each wrong field; bodies are JSON objects of at most 16 KiB.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

from dsar import requests
from dsar.app import App
from dsar.bundles import download_links
from dsar.db.models import Bundle, Request
from dsar.errors import DsarError
from dsar.mail import queue_message
from dsar.mail import verification as verify
from interfaces.portal import agents, intake, openapi
from interfaces.portal.forms import MAX_BODY, BodyRefused, Form, read_body
from interfaces.portal.places import regime_for

log = logging.getLogger("dsar.portal.api")
SUBMITTER = "agent:"


class NewRequest(BaseModel):
    """A request filed by an agent for the person it acts for."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["access", "export", "erasure"]
    email: str = Field(min_length=3, max_length=254, description="the person's email address",
                       json_schema_extra={"format": "email"})
    place: str = Field(max_length=8, description="where the person lives: picks the regime")
    name: str | None = Field(default=None, max_length=200)
    account: str | None = Field(default=None, max_length=200)
    language: Literal["en", "de", "fr"] = Field(
        default="en", description="the language of the emails to the person")


DOCUMENT = openapi.document(NewRequest.model_json_schema())


def problem(status: int, title: str, detail: str, errors: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status,
                            "detail": detail}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


UNAUTHORISED = ("Unauthorised", "Send Authorization: Bearer <token>, with a token the privacy "
                "team issued (dsar agents issue).")


async def openapi_document(request: HttpRequest) -> Response:
    return JSONResponse(DOCUMENT)


async def _agent(request: HttpRequest) -> str | Response:
    """The calling agent's name, or the response that refuses the call (401, 429)."""
    name = await asyncio.to_thread(agents.authenticate, request.app.state.dsar,
                                   request.headers.get("authorization"))
    if name is None:
        return problem(401, *UNAUTHORISED, headers={"WWW-Authenticate": 'Bearer realm="dsar"'})
    if not request.app.state.limits.address_ok(f"agent:{name}"):
        return problem(429, "Too many calls", "Wait a minute and try again.",
                       headers={"Retry-After": "60"})
    return name


async def file_request(request: HttpRequest) -> Response:
    agent = await _agent(request)
    if isinstance(agent, Response):
        return agent
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        return problem(415, "Unsupported media type", "Send the body as application/json.")
    try:
        raw = json.loads(await read_body(request, MAX_BODY))
        if not isinstance(raw, dict):
            raise ValueError
    except BodyRefused as refused:
        return problem(refused.status, "Body refused", refused.message)
    except ValueError:
        return problem(400, "Not a JSON object", "Send one JSON object (see the OpenAPI "
                       "document at /api/v1/openapi.json).")
    try:
        body = NewRequest.model_validate(raw)
    except ValidationError as err:
        return problem(422, "Invalid request", "Correct the fields named in errors.",
                       {".".join(map(str, e["loc"])) or "body": e["msg"] for e in err.errors()})
    form = Form({k: v for k, v in body.model_dump().items() if isinstance(v, str)})
    intake.check(form, request.app.state.dsar.settings)
    if form.errors:
        return problem(422, "Invalid request", "Correct the fields named in errors.",
                       dict(form.errors))
    try:
        made = await asyncio.to_thread(_file, request.app.state.dsar, form, agent,
                                       body.language)
    except requests.KeysReachNothing:
        return problem(503, "Cannot take requests yet", "The data map cannot find people by "
                       "email address yet; nothing was recorded.")
    log.info("api intake by an agent: %s", made["request_id"])
    return JSONResponse(made, 201, headers={"Location": f"/api/v1/requests/{made['request_id']}"})


def _file(app: App, form: Form, agent: str, lang: str) -> dict[str, Any]:
    def verify_by_email(session: Session, request: Request, salt: str) -> None:
        verify.start(session, app, request, salt)
        queue_message(session, app, request, "verification", lang)

    made = requests.submit(app, form.get("kind"), intake.identities_of(form, app.settings),
                           channel="api", submitted_by=SUBMITTER + agent,
                           regime=regime_for(form.get("place"), app.settings),
                           then=verify_by_email)
    return _view(app, requests.load(app, made.request.id))


def _view(app: App, request: Request) -> dict[str, Any]:
    with app.db.session() as session:
        bundle = session.scalar(sa.select(Bundle.id).where(Bundle.request_id == request.id,
                                                           Bundle.deleted_at.is_(None)))
    return {"request_id": request.id, "kind": request.kind, "regime": request.regime,
            "state": request.state, "received_at": _time(request.received_at),
            "due": request.effective_due.isoformat(),
            "completed_at": _time(request.completed_at),
            "download_available": request.state == "completed" and bundle is not None}


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


def _own(app: App, request_id: str, agent: str) -> Request | None:
    with app.db.session() as session:
        return session.scalar(sa.select(Request).where(
            Request.id == request_id, Request.submitted_by == SUBMITTER + agent))


NOT_YOURS = ("Not found", "No request with this id was filed with your token.")


async def _agents_request(request: HttpRequest) -> tuple[str, Request] | Response:
    """The calling agent and the request named in the path, if that agent filed it; else the
    answer to send (401/403 for the token, 404 for a request that is not the agent's)."""
    agent = await _agent(request)
    if isinstance(agent, Response):
        return agent
    found = await asyncio.to_thread(_own, request.app.state.dsar,
                                    request.path_params["request_id"], agent)
    return problem(404, *NOT_YOURS) if found is None else (agent, found)


async def get_request(request: HttpRequest) -> Response:
    own = await _agents_request(request)
    if isinstance(own, Response):
        return own
    return JSONResponse(await asyncio.to_thread(_view, request.app.state.dsar, own[1]))


async def issue_link(request: HttpRequest) -> Response:
    own = await _agents_request(request)
    if isinstance(own, Response):
        return own
    agent, found = own
    app: App = request.app.state.dsar

    def issue() -> download_links.IssuedLink:
        with app.db.session() as session:
            bundle = download_links.bundle_of(session, found.id)
            return download_links.issue(session, app, bundle, f"api ({agent})"[:32])

    if found.state != "completed":
        return problem(409, "Not ready", f"The request is {found.state}; a download exists "
                       "once an access or export request is completed.")
    try:
        link = await asyncio.to_thread(issue)
    except DsarError as err:
        return problem(409, "Nothing to download", err.one_line())
    return JSONResponse({"url": link.url, "expires_at": _time(link.expires_at)}, 201)
