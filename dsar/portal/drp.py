"""The Data Rights Protocol's PIP side (DRP 0.9 shapes), for authorised agents.

    GET    /.well-known/data-rights.json            discovery: version, api_base, actions
    POST   /drp/v1/data-rights-request              exercise: file a request (status schema)
    GET    /drp/v1/data-rights-request/{id}         status
    DELETE /drp/v1/data-rights-request/{id}         revoke (cancels the request, with reason)

Agents authenticate with the same bearer tokens as ``/api/v1`` (``dsar agents issue``), which
stand in for DRP's pair-wise tokens; DRP's libsodium signatures on request bodies (its section
3.07) and the ``POST /v1/agent/{id}`` key exchange are NOT implemented: the bodies are plain
JSON. Actions: ``access`` (an access request) and ``deletion`` (erasure). The person still
confirms by email before any work starts; meanwhile the status is ``in_progress`` with reason
``need_user_verification``. A request of another agent answers 403, as the protocol says.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response

from dsar import requests
from dsar.app import App
from dsar.db.models import Request
from dsar.errors import DsarError
from dsar.portal import intake
from dsar.portal.api import SUBMITTER, _agent, _file, problem
from dsar.portal.forms import MAX_BODY, BodyRefused, Form, read_body

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


async def _json_body(request: HttpRequest) -> dict[str, Any] | Response:
    try:
        raw = json.loads(await read_body(request, MAX_BODY) or b"{}")
    except BodyRefused as refused:
        return problem(refused.status, "Body refused", refused.message)
    except ValueError:
        return problem(400, "Not JSON", "Send a JSON object.")
    if not isinstance(raw, dict):
        return problem(400, "Not a JSON object", "Send a JSON object.")
    return raw


async def exercise(request: HttpRequest) -> Response:
    agent = await _agent(request)
    if isinstance(agent, Response):
        return agent
    raw = await _json_body(request)
    if isinstance(raw, Response):
        return raw
    errors: dict[str, str] = {}
    exercised = raw.get("exercise")
    if not (isinstance(exercised, list) and len(exercised) == 1 and exercised[0] in ACTIONS):
        errors["exercise"] = f"give exactly one of: {', '.join(ACTIONS)}"
    regime = raw.get("regime", "ccpa")
    if regime not in ("ccpa", None):
        errors["regime"] = "only ccpa, or none (a voluntary request), is supported"
    identity = raw.get("identity")
    email = identity.get("email") if isinstance(identity, dict) else None
    if not isinstance(email, str):
        errors["identity.email"] = "the person's email address is needed"
    if errors:
        return problem(422, "Invalid request", "Correct the fields named in errors.", errors)
    name = identity.get("name") if isinstance(identity, dict) else None
    form = Form({"kind": ACTIONS[exercised[0]], "email": email or "", "place": "US-CA",
                 **({"name": name} if isinstance(name, str) and name else {})})
    intake.check(form, request.app.state.dsar.settings)
    if form.errors:
        return problem(422, "Invalid request", "Correct the fields named in errors.",
                       {f"identity.{k}" if k in ("email", "name") else k: v
                        for k, v in form.errors.items()})
    try:
        made = await asyncio.to_thread(_file, request.app.state.dsar, form, agent, "en")
    except requests.KeysReachNothing:
        return problem(503, "Cannot take requests yet", "Nothing was recorded.")
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
        return problem(404, "Not found", "No request with this id.")
    if found.submitted_by != SUBMITTER + agent:
        return problem(403, "Forbidden", "This request is managed by another agent.")
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
    raw = await _json_body(request)
    if isinstance(raw, Response):
        return raw
    given = raw.get("reason")
    reason = REVOKED + (f": {given.strip()[:500]}" if isinstance(given, str) and given.strip()
                        else "")
    try:
        closed = await asyncio.to_thread(requests.cancel, app, found.id, reason,
                                         SUBMITTER + agent)
    except DsarError as err:
        return problem(409, "Cannot revoke", err.one_line())
    return JSONResponse(status_of(app, closed))
