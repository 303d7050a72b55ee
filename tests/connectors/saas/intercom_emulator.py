"""An Intercom REST API emulator following
https://developers.intercom.com/docs/references/rest-api/ for what dsar uses.

Endpoints: ``GET /me`` (the admin the token belongs to), ``POST /contacts`` (create),
``GET /contacts/{id}``, ``POST /contacts/search`` (``query`` a single filter or an ``AND``/``OR``
of filters; fields ``id``, ``email``, ``external_id``, ``phone``; operators ``=``, ``!=``, ``~``;
email compared case-insensitively), ``DELETE /contacts/{id}`` (permanent; answers
``{"id", "external_id", "type": "contact", "deleted": true}``), ``POST /conversations/search``
(``contact_ids`` ``=`` a contact id), ``DELETE /conversations/{id}`` (``{"id", "object":
"conversation", "deleted": true}``; only from API version 2.13, which added it: an older
version answers 404). Searches page in the body: ``pagination.per_page`` (default 50 for
contacts and 20 for conversations, at most 150) and ``pagination.starting_after``, answered in
``pages`` (``page``, ``per_page``, ``total_pages``, ``next.starting_after`` while more remain);
``total_count`` counts all hits.
Errors are ``{"type": "error.list", "request_id", "errors": [{"code", "message"}]}``. Auth:
``Authorization: Bearer <access token>``. An ``Intercom-Version`` header other than a known
version is refused with 400 ``intercom_version_invalid``; the versions sent are recorded.
"""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req

VERSIONS = {"2.9", "2.10", "2.11", "2.12", "2.13", "2.14", "Unstable"}
CONVERSATION_DELETE_SINCE = (2, 13)
CODES = {400: "parameter_invalid", 401: "unauthorized", 404: "not_found",
         429: "rate_limit_exceeded", 500: "server_error"}


class IntercomEmulator(Emulator):
    def __init__(self, token: str = "dG9rOmRzYXI=") -> None:
        super().__init__()
        self.token = token
        self.contacts: dict[str, dict[str, Any]] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.versions: set[str | None] = set()
        self._ids = itertools.count(1)
        r = self.route
        r("GET", "/me", self.me)
        r("POST", "/contacts", self.create_contact)
        r("POST", "/contacts/search", self.search_contacts)
        r("GET", "/contacts/{id}", self.get_contact)
        r("DELETE", "/contacts/{id}", self.delete_contact)
        r("POST", "/conversations/search", self.search_conversations)
        r("DELETE", "/conversations/{id}", self.delete_conversation)

    def authorized(self, req: Req) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def error(self, status: int, message: str) -> Answer:
        text = {401: "Access Token Invalid"}.get(status, message)
        headers = {}
        if status == 429:
            headers = {"X-RateLimit-Limit": "1666", "X-RateLimit-Remaining": "0"}
        return status, {"type": "error.list", "request_id": "req-0000",
                        "errors": [{"code": CODES.get(status, "error"), "message": text}]}, headers

    def handle(self, req: Req) -> Answer:
        version = req.headers.get("intercom-version")
        with self.lock:
            self.versions.add(version)
        if version is not None and version not in VERSIONS:
            return 400, {"type": "error.list", "request_id": "req-0000", "errors": [
                {"code": "intercom_version_invalid",
                 "message": "The requested version could not be found"}]}, {}
        return super().handle(req)

    # -- seeding -----------------------------------------------------------------------------

    def _id(self, width: int = 24) -> str:
        return f"{next(self._ids):0{width}x}"

    def add_contact(self, email: str, *, conversations: int = 2, phone: str | None = None,
                    external_id: str | None = None) -> str:
        with self.lock:
            cid = self._id()
            now = int(time.time())
            self.contacts[cid] = {
                "type": "contact", "id": cid, "workspace_id": "ecahpwf5",
                "external_id": external_id, "role": "user", "email": email, "phone": phone,
                "name": "Jenny Rosen", "avatar": None, "owner_id": None,
                "has_hard_bounced": False, "marked_email_as_spam": False,
                "unsubscribed_from_emails": False, "created_at": now, "updated_at": now,
                "signed_up_at": now, "last_seen_at": None, "browser": None,
                "language_override": None, "custom_attributes": {"plan": "pro"},
                "tags": {"type": "list", "data": [], "url": f"/contacts/{cid}/tags",
                         "total_count": 0, "has_more": False},
                "location": {"type": "location", "country": "Germany", "region": "Berlin",
                             "city": "Berlin"}}
            for i in range(conversations):
                vid = str(next(self._ids))
                self.conversations[vid] = {
                    "type": "conversation", "id": vid, "title": None, "created_at": now,
                    "updated_at": now, "state": "closed", "open": False, "read": True,
                    "priority": "not_priority", "admin_assignee_id": None,
                    "source": {"type": "conversation", "id": f"4{vid}", "delivered_as":
                               "customer_initiated", "subject": "",
                               "body": f"<p>Where is my order {i}?</p>",
                               "author": {"type": "user", "id": cid, "name": "Jenny Rosen",
                                          "email": email}},
                    "contacts": {"type": "contact.list", "contacts": [
                        {"type": "contact", "id": cid, "external_id": external_id}]},
                    "tags": {"type": "tag.list", "tags": []}}
            return cid

    # -- helpers -----------------------------------------------------------------------------

    def _page(self, req: Req, kind: str, key: str, hits: list[dict[str, Any]],
              default: int) -> Answer:
        paging = req.json().get("pagination") or {}
        per_page = int(paging.get("per_page", default))
        if not 1 <= per_page <= 150:
            return self.error(400, "per_page must be between 1 and 150")
        after = paging.get("starting_after")
        try:
            start = int(base64.b64decode(after).decode()) if after else 0
        except ValueError:
            return self.error(400, "starting_after is not a valid cursor")
        pages: dict[str, Any] = {"type": "pages", "page": start // per_page + 1,
                                 "per_page": per_page,
                                 "total_pages": max(1, -(-len(hits) // per_page))}
        if start + per_page < len(hits):
            cursor = base64.b64encode(str(start + per_page).encode()).decode()
            pages["next"] = {"page": pages["page"] + 1, "starting_after": cursor}
        return 200, {"type": kind, key: hits[start:start + per_page],
                     "total_count": len(hits), "pages": pages}, {}

    @staticmethod
    def _matches(item: dict[str, Any], query: dict[str, Any]) -> bool:
        if query.get("operator") in ("AND", "OR"):
            parts = [IntercomEmulator._matches(item, q) for q in query.get("value", [])]
            return all(parts) if query["operator"] == "AND" else any(parts)
        field, op, value = query.get("field"), query.get("operator"), query.get("value")
        if field == "contact_ids":
            have = [c["id"] for c in item["contacts"]["contacts"]]
            return (value in have) == (op == "=")
        got = item.get(str(field))
        if field == "email" and isinstance(got, str) and isinstance(value, str):
            got, value = got.lower(), value.lower()
        if op == "=":
            return got == value
        if op == "!=":
            return got != value
        if op == "~":
            return isinstance(got, str) and str(value) in got
        raise ValueError(op)

    def _search(self, req: Req, items: list[dict[str, Any]], kind: str, key: str,
                fields: set[str], default: int) -> Answer:
        query = req.json().get("query")
        if not isinstance(query, dict):
            return self.error(400, "query is required")

        def check(q: dict[str, Any]) -> bool:
            if q.get("operator") in ("AND", "OR"):
                return all(check(p) for p in q.get("value", []))
            return q.get("field") in fields and q.get("operator") in ("=", "!=", "~")

        if not check(query):
            return self.error(400, "Unsupported field or operator in query")
        with self.lock:
            hits = [i for i in items if self._matches(i, query)]
        return self._page(req, kind, key, hits, default)

    # -- endpoints ---------------------------------------------------------------------------

    def me(self, req: Req) -> Answer:
        return 200, {"type": "admin", "id": "991267", "name": "Ops", "email": "ops@example.com",
                     "app": {"type": "app", "id_code": "ecahpwf5", "name": "Example",
                             "region": "US", "timezone": "Europe/Berlin"}}, {}

    def create_contact(self, req: Req) -> Answer:
        body = req.json()
        email = body.get("email")
        if email and any((c["email"] or "").lower() == email.lower()
                         for c in self.contacts.values()):
            return 409, {"type": "error.list", "request_id": "req-0000", "errors": [
                {"code": "conflict", "message": "A contact matching those details already "
                                                "exists"}]}, {}
        cid = self.add_contact(email or "", conversations=0, phone=body.get("phone"),
                               external_id=body.get("external_id"))
        if body.get("name"):
            self.contacts[cid]["name"] = body["name"]
        return 200, self.contacts[cid], {}

    def get_contact(self, req: Req) -> Answer:
        contact = self.contacts.get(req.params["id"])
        if contact is None:
            return self.error(404, "User Not Found")
        return 200, contact, {}

    def search_contacts(self, req: Req) -> Answer:
        return self._search(req, list(self.contacts.values()), "list", "data",
                            {"id", "email", "external_id", "phone", "name"}, 50)

    def delete_contact(self, req: Req) -> Answer:
        with self.lock:
            contact = self.contacts.pop(req.params["id"], None)
        if contact is None:
            return self.error(404, "User Not Found")
        return 200, {"id": contact["id"], "external_id": contact["external_id"],
                     "type": "contact", "deleted": True}, {}

    def search_conversations(self, req: Req) -> Answer:
        return self._search(req, list(self.conversations.values()), "conversation.list",
                            "conversations", {"id", "contact_ids", "state"}, 20)

    def delete_conversation(self, req: Req) -> Answer:
        version = req.headers.get("intercom-version") or "2.13"
        if version != "Unstable" and tuple(
                int(p) for p in version.split(".")) < CONVERSATION_DELETE_SINCE:
            return self.error(404, "Resource Not Found")  # the endpoint came with 2.13
        with self.lock:
            gone = self.conversations.pop(req.params["id"], None)
        if gone is None:
            return self.error(404, "Resource Not Found")
        return 200, {"id": gone["id"], "object": "conversation", "deleted": True}, {}
