"""A Zendesk Support API emulator following https://developer.zendesk.com/api-reference for
what dsar uses.

Endpoints (each also with ``.json``, as zenpy sends them): ``GET /api/v2/users/search``
(``query=email:"…"``, case-insensitive), ``GET /api/v2/users/{id}`` (a soft-deleted user
answers ``active: false``),
``GET /api/v2/users/{id}/tickets/requested``, ``DELETE /api/v2/users/{id}`` (a soft delete:
the user drops out of search and lands in deleted users), ``DELETE /api/v2/deleted_users/{id}``
(permanent; only a soft-deleted user, else 404; queued: the user is purged ``purge_after``
seconds later on the emulator's ``clock``), ``GET /api/v2/deleted_users/{id}`` (a
soft-deleted user not purged yet, else 404), ``DELETE /api/v2/tickets/{id}`` and
``DELETE /api/v2/deleted_tickets/{id}`` (the same two steps for tickets; 204). Lists page by
cursor: ``page[size]`` (at most 100) and ``page[after]``, answering ``meta.has_more``,
``meta.after_cursor`` and ``links.next`` (an absolute URL). Errors are
``{"error": "RecordNotFound", "description": "Not found"}`` and the like. Auth: an OAuth
``Bearer`` token, or Basic ``{email}/token:{api_token}``.
"""

from __future__ import annotations

import base64
import itertools
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from interfaces.demo.emulators.server import Answer, Emulator, Req

ERRORS = {401: "Couldn't authenticate you", 404: "RecordNotFound", 429: "TooManyRequests",
          400: "InvalidValue", 500: "InternalError"}


class ZendeskEmulator(Emulator):
    def __init__(self, token: str = "zd-oauth-dsar") -> None:
        super().__init__()
        self.token = token
        self.users: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.soft_deleted_tickets: set[int] = set()
        self.purged: set[int] = set()  # permanently deleted users
        self.clock: Callable[[], float] = time.time
        self.purge_after = 0.0
        self.purging: dict[int, float] = {}  # user id -> when its permanent deletion runs
        self._ids = itertools.count(35436)
        r = self.route
        for path in ("/api/v2/users/search", "/api/v2/users/search.json"):
            r("GET", path, self.search_users)
        r("GET", "/api/v2/users/{id}", self.get_user)
        r("GET", "/api/v2/users/{id}/tickets/requested", self.requested)
        r("DELETE", "/api/v2/users/{id}", self.delete_user)
        r("DELETE", "/api/v2/deleted_users/{id}", self.purge_user)
        r("GET", "/api/v2/deleted_users/{id}", self.get_deleted_user)
        r("DELETE", "/api/v2/tickets/{id}", self.delete_ticket)
        r("DELETE", "/api/v2/deleted_tickets/{id}", self.purge_ticket)

    def handle(self, req: Req) -> Answer:
        # Zendesk answers every path with or without ``.json`` (zenpy always adds it)
        req.path = req.path.removesuffix(".json")
        with self.lock:
            for uid, due in list(self.purging.items()):
                if due <= self.clock():
                    del self.purging[uid]
                    self.purged.add(uid)
                    self.users.pop(uid, None)
            return super().handle(req)

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (it starts at the real time)."""
        now = self.clock()
        self.clock = lambda: now + seconds

    def authorized(self, req: Req) -> bool:
        auth = req.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:] == self.token
        if auth.startswith("Basic "):
            user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return user.endswith("/token") and secret == self.token
        return False

    def error(self, status: int, message: str) -> Answer:
        if status == 404:
            return status, {"error": "RecordNotFound", "description": "Not found"}, {}
        if status == 401:
            return status, {"error": ERRORS[401]}, {}
        return status, {"error": ERRORS.get(status, "Error"), "description": message}, {}

    # -- seeding -----------------------------------------------------------------------------

    def add_user(self, email: str, *, tickets: int = 2) -> int:
        with self.lock:
            uid = next(self._ids)
            self.users[uid] = {
                "id": uid, "url": f"https://example.zendesk.com/api/v2/users/{uid}.json",
                "name": "Jenny Rosen", "email": email, "phone": "+49 30 1234567",
                "role": "end-user", "active": True, "verified": True, "locale": "de",
                "time_zone": "Berlin", "created_at": "2026-01-02T10:00:00Z",
                "user_fields": {"customer_tier": "gold"}, "tags": ["vip"]}
            for i in range(tickets):
                tid = next(self._ids)
                self.tickets[tid] = {
                    "id": tid, "requester_id": uid, "submitter_id": uid,
                    "subject": f"Order {i} arrived damaged", "description": "The box was wet.",
                    "status": "open", "priority": "normal", "via": {"channel": "email"},
                    "created_at": "2026-02-03T10:00:00Z", "tags": []}
            return uid

    # -- helpers -----------------------------------------------------------------------------

    def _cursor_page(self, req: Req, key: str, items: list[dict[str, Any]]) -> Answer:
        size = req.query.get("page[size]")
        if size is None:  # offset pagination, one page here
            return 200, {key: items, "next_page": None, "previous_page": None,
                         "count": len(items)}, {}
        size_n = min(int(size), 100)
        after = req.query.get("page[after]")
        start = int(base64.urlsafe_b64decode(after).decode()) if after else 0
        chunk = items[start:start + size_n]
        more = start + size_n < len(items)
        cursor = base64.urlsafe_b64encode(str(start + size_n).encode()).decode()
        host = req.headers.get("host", "example.zendesk.com")
        query = {k: v for k, v in req.query.items() if k != "page[after]"}
        next_url = (f"http://{host}{req.path}?{urlencode({**query, 'page[after]': cursor})}"
                    if more else None)
        return 200, {key: chunk,
                     "meta": {"has_more": more, "after_cursor": cursor if more else None,
                              "before_cursor": None},
                     "links": {"next": next_url, "prev": None}}, {}

    def _user(self, req: Req) -> dict[str, Any] | None:
        raw = req.params["id"].removesuffix(".json")
        if not raw.isdigit() or int(raw) in self.purged:
            return None
        return self.users.get(int(raw))

    # -- endpoints ---------------------------------------------------------------------------

    def search_users(self, req: Req) -> Answer:
        match = re.fullmatch(r'email:(?:"((?:[^"\\]|\\.)*)"|(\S+))', req.query.get("query", ""))
        if not match:
            return self.error(400, "query must be email:<address>")
        wanted = re.sub(r"\\(.)", r"\1", match.group(1) or match.group(2) or "").lower()
        hits = [u for u in self.users.values()
                if u["active"] and u["email"].lower() == wanted and u["id"] not in self.purged]
        return self._cursor_page(req, "users", hits)

    def get_user(self, req: Req) -> Answer:
        user = self._user(req)
        if user is None:
            return self.error(404, "Not found")
        return 200, {"user": user}, {}

    def requested(self, req: Req) -> Answer:
        user = self._user(req)
        if user is None or not user["active"]:
            return self.error(404, "Not found")
        items = [t for t in self.tickets.values()
                 if t["requester_id"] == user["id"] and t["id"] not in self.soft_deleted_tickets]
        return self._cursor_page(req, "tickets", items)

    def delete_user(self, req: Req) -> Answer:
        user = self._user(req)
        if user is None or not user["active"]:
            return self.error(404, "Not found")
        user["active"] = False
        return 200, {"user": user}, {}

    def purge_user(self, req: Req) -> Answer:
        user = self._user(req)
        if user is None or user["active"]:  # only a soft-deleted user is in deleted_users
            return self.error(404, "Not found")
        self.purging.setdefault(user["id"], self.clock() + self.purge_after)
        if self.purging[user["id"]] <= self.clock():
            del self.purging[user["id"]]
            self.purged.add(user["id"])
            del self.users[user["id"]]
        return 200, {"deleted_user": {"id": user["id"], "name": user["name"],
                                      "email": user["email"]}}, {}

    def get_deleted_user(self, req: Req) -> Answer:
        user = self._user(req)
        if user is None or user["active"]:
            return self.error(404, "Not found")
        return 200, {"deleted_user": {"id": user["id"], "name": user["name"],
                                      "email": user["email"], "active": False}}, {}

    def delete_ticket(self, req: Req) -> Answer:
        tid = int(req.params["id"]) if req.params["id"].isdigit() else -1
        if tid not in self.tickets or tid in self.soft_deleted_tickets:
            return self.error(404, "Not found")
        self.soft_deleted_tickets.add(tid)
        return 204, None, {}

    def purge_ticket(self, req: Req) -> Answer:
        tid = int(req.params["id"]) if req.params["id"].isdigit() else -1
        if tid not in self.soft_deleted_tickets:
            return self.error(404, "Not found")
        self.soft_deleted_tickets.discard(tid)
        del self.tickets[tid]
        return 204, None, {}
