"""The Data Rights Protocol's PIP side (DRP 0.9 shapes), for authorised agents.

    GET    /.well-known/data-rights.json            discovery: version, api_base, actions
    POST   /drp/v1/data-rights-request              exercise: file a request (status schema)
    GET    /drp/v1/data-rights-request/{id}         status
    DELETE /drp/v1/data-rights-request/{id}         revoke (cancels the request, with reason)

Agents authenticate with the same bearer tokens as ``/api/v1`` (``dsar agents issue``), which
stand in for DRP's pair-wise tokens, and sign the bodies of exercise and revoke as the protocol's
section 3.07 says (:mod:`interfaces.portal.drp_signing`): base64 of a libsodium Ed25519 signed
message, sent as ``text/plain``, verified with the key the privacy team registered for the
agent (``dsar agents key``), with the ``agent-id``, ``business-id`` (``DSAR_DRP_BUSINESS_ID``),
``issued-at`` and ``expires-at`` claims checked. Unsigned or badly signed requests are refused
with DRP's error shape (section 3.06: ``code``, ``message``, ``fatal``). The ``POST
/v1/agent/{id}`` key exchange is NOT implemented: the privacy team issues tokens.

Actions: ``access`` (an access request) and ``deletion`` (erasure); the person's claims are the
top-level schema.org/Person ``email`` and ``name``. The person still confirms by email before
any work starts; meanwhile the status is ``in_progress`` with reason
``need_user_verification``. A request of another agent answers 403, as the protocol says.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

from dsar import requests
from dsar.app import App
from dsar.db.models import Request
from dsar.errors import DsarError
from interfaces.portal import agents, intake
from interfaces.portal.api import SUBMITTER, _file
from interfaces.portal.drp_signing import SignatureRefused, check_claims, open_signed
from interfaces.portal.forms import MAX_BODY, BodyRefused, Form, read_body

VERSION = "0.9"
ACTIONS = {"access": "access", "deletion": "erasure"}
REVOKED = "revoked by the authorised agent"


async def discovery(request: HttpRequest) -> Response:
    base = request.app.state.dsar.settings.public_url
    return JSONResponse({"version": VERSION, "api_base": f"{base}/drp",
                         "actions": list(ACTIONS), "user_relationships": []})


def status_of(app: App, request: Request) -> dict[str, Any]:
    """A request in DRP's Exercise Status schema (section 3.03)."""
    state = request.state
    body: dict[str, Any] = {"request_id": request.id,
                            "received_at": request.received_at.isoformat(timespec="seconds"),
                            "expected_by": request.effective_due.isoformat()}
    if state == "awaiting_identity":
        body.update(status="in_progress", reason="need_user_verification",
                    user_verification_url=f"{app.settings.public_url}/verify")
    elif state == "completed":
        body["status"] = "fulfilled"
    elif state == "rejected":
        body.update(status="denied", reason="other",
                    processing_details=request.closing_reason or "")
    elif state == "cancelled":
        reason = request.closing_reason or ""
        if reason.startswith(REVOKED):
            body["status"] = "revoked"
        elif "not confirmed within" in reason:
            body.update(status="denied", reason="insuf_verification",
                        processing_details=reason)
        else:
            body.update(status="denied", reason="other", processing_details=reason)
    else:
        body["status"] = "in_progress"
    return body


def error(status: int, message: str, fatal: bool = False,
          errors: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    """DRP's error shape (section 3.06); ``errors`` names fields, as /api/v1 does."""
    body: dict[str, Any] = {"code": str(status), "message": message}
    if fatal:
        body["fatal"] = True
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status, headers=headers)


async def _agent(request: HttpRequest) -> str | Response:
    """The calling agent's name, or the refusal (401 without a valid token, 429)."""
    app: App = request.app.state.dsar
    name = await asyncio.to_thread(agents.authenticate, app,
                                   request.headers.get("authorization"))
    if name is None:
        return error(401, "Send Authorization: Bearer <token>, with a token the privacy team "
                          "issued.", headers={"WWW-Authenticate": 'Bearer realm="dsar"'})
    if not request.app.state.limits.address_ok(f"agent:{name}"):
        return error(429, "Too many calls: wait a minute and try again.",
                     headers={"Retry-After": "60"})
    return name


async def _signed(request: HttpRequest, agent: str, required: bool = True
                  ) -> dict[str, Any] | Response:
    """The verified claims of a signed body, or the refusal (section 3.07's checks)."""
    app: App = request.app.state.dsar
    business = app.settings.drp_business_id
    if business is None:
        return error(503, "This business takes no DRP requests yet (DSAR_DRP_BUSINESS_ID is "
                          "not set).")
    key = await asyncio.to_thread(agents.verify_key_of, app, agent)
    if key is None:
        return error(403, "No verify key is registered for this agent: ask the privacy team "
                          "to run dsar agents key.")
    try:
        body = await read_body(request, MAX_BODY)
    except BodyRefused as refused:
        return error(refused.status, refused.message)
    try:
        return check_claims(open_signed(body, key), agent, business, app.now(), required)
    except SignatureRefused as refused:
        return error(refused.status, refused.message)


def _exercised(claims: dict[str, Any]) -> str | None:
    """The one action exercised: a string (DRP 0.9.x) or a one-item list (earlier drafts)."""
    given = claims.get("exercise")
    if isinstance(given, list) and len(given) == 1:
        given = given[0]
    return given if isinstance(given, str) and given in ACTIONS else None


async def exercise(request: HttpRequest) -> Response:
    agent = await _agent(request)
    if isinstance(agent, Response):
        return agent
    raw = await _signed(request, agent)
    if isinstance(raw, Response):
        return raw
    errors: dict[str, str] = {}
    action = _exercised(raw)
    if action is None:
        errors["exercise"] = f"give exactly one of: {', '.join(ACTIONS)}"
    regime = raw.get("regime", "ccpa")
    if regime not in ("ccpa", None):
        errors["regime"] = "only ccpa, or none (a voluntary request), is supported"
    identity = raw.get("identity") if isinstance(raw.get("identity"), dict) else raw
    email, name = identity.get("email"), identity.get("name")
    if not isinstance(email, str):
        errors["email"] = "the person's email address is needed"
    if errors or action is None:
        return error(422, "Correct the fields named in errors.", errors=errors)
    form = Form({"kind": ACTIONS[action], "email": email or "", "place": "US-CA",
                 **({"name": name} if isinstance(name, str) and name else {})})
    intake.check(form, request.app.state.dsar.settings)
    if form.errors:
        return error(422, "Correct the fields named in errors.", errors=dict(form.errors))
    try:
        made = await asyncio.to_thread(_file, request.app.state.dsar, form, agent, "en")
    except requests.KeysReachNothing:
        return error(503, "Cannot take requests yet; nothing was recorded.")
    app: App = request.app.state.dsar
    return JSONResponse(status_of(app, await asyncio.to_thread(requests.load, app,
                                                               made["request_id"])))


async def _owned(request: HttpRequest) -> tuple[App, str, Request] | Response:
    agent = await _agent(request)
    if isinstance(agent, Response):
        return agent
    app: App = request.app.state.dsar
    try:
        found = await asyncio.to_thread(requests.load, app, request.path_params["request_id"])
    except DsarError:
        return error(404, "No request with this id.")
    if found.submitted_by != SUBMITTER + agent:
        return error(403, "This request is managed by another agent.")
    return app, agent, found


async def status(request: HttpRequest) -> Response:
    owned = await _owned(request)
    if isinstance(owned, Response):
        return owned
    app, _, found = owned
    return JSONResponse(status_of(app, found))


async def revoke(request: HttpRequest) -> Response:
    owned = await _owned(request)
    if isinstance(owned, Response):
        return owned
    app, agent, found = owned
    raw = await _signed(request, agent, required=False)
    if isinstance(raw, Response):
        return raw
    given = raw.get("reason")
    reason = REVOKED + (f": {given.strip()[:500]}" if isinstance(given, str) and given.strip()
                        else "")
    try:
        closed = await asyncio.to_thread(requests.cancel, app, found.id, reason,
                                         SUBMITTER + agent)
    except DsarError as err:
        return error(409, f"Cannot revoke: {err.one_line()}")
    return JSONResponse(status_of(app, closed))
