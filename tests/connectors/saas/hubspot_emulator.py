"""A HubSpot CRM API emulator following https://developers.hubspot.com/docs/api/crm for what
dsar uses.

Endpoints: ``GET/POST /crm/v3/objects/contacts`` (list paged by ``limit``/``after``, create),
``GET /crm/v3/objects/contacts/{id}`` (``idProperty=email`` looks up by email,
case-insensitively), ``POST /crm/v3/objects/contacts/search`` (``EQ`` filters on ``email`` or
``phone``), ``GET /crm/v4/objects/contacts/{id}/associations/{type}`` (paged by
``limit``/``after``; ``paging.next.after``), ``POST /crm/v3/objects/contacts/gdpr-delete``
(``{"objectId"}``, with ``idProperty: email`` an address; 204; the address is blocklisted at
once, also when no contact had it, and the contact and its associations are gone for good
``delete_after`` seconds later on the emulator's ``clock``: a test moves the clock rather than
sleeping). Search pages in the body (``limit``, ``after``; ``paging.next.after``).
Objects are ``{"id", "properties", "createdAt", "updatedAt", "archived"}``; errors
``{"status": "error", "message", "correlationId", "category"}``. Auth: ``Bearer`` token.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req

CATEGORIES = {401: "INVALID_AUTHENTICATION", 404: "OBJECT_NOT_FOUND", 429: "RATE_LIMITS",
              400: "VALIDATION_ERROR", 500: "INTERNAL_ERROR"}


class HubSpotEmulator(Emulator):
    def __init__(self, token: str = "pat-eu1-dsar") -> None:
        super().__init__()
        self.token = token
        self.contacts: dict[str, dict[str, Any]] = {}
        self.associations: dict[tuple[str, str], list[str]] = {}
        self.blocklist: set[str] = set()
        self.clock: Callable[[], float] = time.time
        self.delete_after = 0.0
        self.deleting: dict[str, float] = {}  # contact id -> when the GDPR delete is done
        self._ids = itertools.count(101)
        r = self.route
        r("GET", "/crm/v3/objects/contacts", self.list_contacts)
        r("POST", "/crm/v3/objects/contacts", self.create_contact)
        r("POST", "/crm/v3/objects/contacts/search", self.search)
        r("POST", "/crm/v3/objects/contacts/gdpr-delete", self.gdpr_delete)
        r("GET", "/crm/v3/objects/contacts/{id}", self.get_contact)
        r("GET", "/crm/v4/objects/contacts/{id}/associations/{kind}", self.list_associations)

    def handle(self, req: Req) -> Answer:
        with self.lock:
            self._apply_deletes()
            return super().handle(req)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (it starts at the real time)."""
        now = self.clock()
        self.clock = lambda: now + seconds

    def _apply_deletes(self) -> None:
        for cid, due in list(self.deleting.items()):
            if due <= self.clock():
                del self.deleting[cid]
                self.contacts.pop(cid, None)
                for key in [k for k in self.associations if k[0] == cid]:
                    del self.associations[key]

    def authorized(self, req: Req) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def error(self, status: int, message: str) -> Answer:
        return status, {"status": "error", "message": message,
                        "correlationId": "00000000-0000-0000-0000-000000000000",
                        "category": CATEGORIES.get(status, "ERROR")}, {}

    # -- seeding -----------------------------------------------------------------------------

    def add_contact(self, email: str, phone: str | None = None, *, deals: int = 2,
                    tickets: int = 1, notes: int = 3) -> str:
        with self.lock:
            cid = str(next(self._ids))
            self.contacts[cid] = {
                "id": cid, "archived": False, "createdAt": "2026-01-02T10:00:00.000Z",
                "updatedAt": "2026-03-04T10:00:00.000Z",
                "properties": {"email": email.lower(), "firstname": "Jenny", "lastname": "Rosen",
                               "phone": phone, "company": "Example GmbH", "hs_object_id": cid,
                               "createdate": "2026-01-02T10:00:00.000Z"}}
            for kind, n in (("deals", deals), ("tickets", tickets), ("notes", notes)):
                self.associations[(cid, kind)] = [str(next(self._ids)) for _ in range(n)]
            return cid

    # -- endpoints ---------------------------------------------------------------------------

    def _view(self, contact: dict[str, Any], req: Req) -> dict[str, Any]:
        wanted = req.query.get("properties")
        if not wanted:
            return contact
        props = {k: v for k, v in contact["properties"].items()
                 if k in wanted.split(",") or k == "hs_object_id"}
        return {**contact, "properties": props}

    def _page(self, items: list[Any], req: Req) -> dict[str, Any]:
        limit = int(req.query.get("limit", 10))
        start = int(req.query.get("after") or 0)
        body: dict[str, Any] = {"results": items[start:start + limit]}
        if start + limit < len(items):
            body["paging"] = {"next": {"after": str(start + limit),
                                       "link": f"{req.path}?after={start + limit}"}}
        return body

    def list_contacts(self, req: Req) -> Answer:
        return 200, self._page([self._view(c, req) for c in self.contacts.values()], req), {}

    def create_contact(self, req: Req) -> Answer:
        props = req.json().get("properties", {})
        email = props.get("email", "")
        if email.lower() in self.blocklist:
            return self.error(400, "This email address was permanently deleted (GDPR).")
        if any(c["properties"]["email"] == email.lower() for c in self.contacts.values()):
            return 409, {"status": "error", "message": "Contact already exists",
                         "category": "CONFLICT"}, {}
        cid = self.add_contact(email, props.get("phone"), deals=0, tickets=0, notes=0)
        self.contacts[cid]["properties"].update(
            {k: v for k, v in props.items() if k != "email"})
        return 201, self.contacts[cid], {}

    def _find(self, key: str, req: Req) -> dict[str, Any] | None:
        if req.query.get("idProperty") == "email":
            for contact in self.contacts.values():
                if contact["properties"]["email"] == key.lower():
                    return contact
            return None
        return self.contacts.get(key)

    def get_contact(self, req: Req) -> Answer:
        contact = self._find(req.params["id"], req)
        if contact is None:
            return self.error(404, "Object not found.")
        return 200, self._view(contact, req), {}

    def search(self, req: Req) -> Answer:
        body = req.json()
        hits = []
        for group in body.get("filterGroups", []):
            for contact in self.contacts.values():
                if all(f.get("operator") == "EQ" and
                       str(contact["properties"].get(f["propertyName"])) == str(f["value"])
                       for f in group.get("filters", [])):
                    hits.append(contact)
        limit = min(int(body.get("limit", 10)), 200)
        start = int(body.get("after") or 0)
        answer: dict[str, Any] = {"total": len(hits), "results": hits[start:start + limit]}
        if start + limit < len(hits):
            answer["paging"] = {"next": {"after": str(start + limit)}}
        return 200, answer, {}

    def list_associations(self, req: Req) -> Answer:
        cid = req.params["id"]
        if cid not in self.contacts:
            return self.error(404, "Object not found.")
        ids = self.associations.get((cid, req.params["kind"]), [])
        items = [{"toObjectId": int(i), "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": 4, "label": None}]} for i in ids]
        return 200, self._page(items, req), {}

    def gdpr_delete(self, req: Req) -> Answer:
        body = req.json()
        contact = self._find(str(body.get("objectId", "")),
                             Req("", "", {"idProperty": body.get("idProperty", "")}, {}, b""))
        if contact is None and body.get("idProperty") == "email":
            self.blocklist.add(str(body.get("objectId", "")).lower())  # as documented
            return 204, None, {}
        if contact is None:
            return self.error(404, "Object not found.")
        self.blocklist.add(contact["properties"]["email"])
        self.deleting.setdefault(contact["id"], self.clock() + self.delete_after)
        self._apply_deletes()
        return 204, None, {}
