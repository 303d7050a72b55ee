"""A generic vendor, "Acme", for the runtime features Stripe and Mailchimp do not use: OAuth2
client credentials (tokens that expire), an API key header, cursor, offset, page-number and
Link-header pagination, phone lookups, anonymising updates and rate-limit headers.

``ACME_YAML`` is its vendor definition (loaded through ``vendor_file``), so these tests also
show that a vendor is data.
"""

from __future__ import annotations

import itertools
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req

ACME_YAML = """\
name: acme
label: Acme
base_url: https://api.acme.test
auth: {type: oauth2_client_credentials, token_url: /oauth/token}
check: {path: /me}
rate_limit: {calls: 1000, seconds: 1}
retries: {attempts: 4, backoff: 0.01, max_wait: 2}
idempotency_header: Idempotency-Key
resources:
  users:
    find:
      email:
        path: /users
        params: {email: "{value}"}
        items: results
        paging: {style: cursor, param: after, next: paging.next, size_param: limit, size: 2}
      phone:
        path: /users/by-phone/{value}
        single: true
    provides: {acme_user_id: id}
    erase:
      kind: anonymise
      call:
        {method: PATCH, path: "/users/{item.id}", json: {email: null, name: "anonymous {item.id}"}}
  notes:
    parent: users
    list:
      path: /users/{parent.id}/notes
      items: notes
      paging: {style: offset, param: offset, size_param: limit, size: 3, total: total}
    erase:
      call: {method: DELETE, path: "/notes/{item.id}"}
  tickets:
    parent: users
    list:
      path: /users/{parent.id}/tickets
      items: tickets
      paging: {style: page, param: page, size_param: per_page, size: 2}
    erase: {with_parent: true}
  events:
    parent: users
    list:
      path: /users/{parent.id}/events
      paging: {style: link}
    erase: {retained_by_vendor: "kept by Acme for fraud prevention"}
"""


class AcmeEmulator(Emulator):
    def __init__(self, client_id: str = "acme-client", secret: str = "acme-secret",
                 token_ttl: int = 3600) -> None:
        super().__init__()
        self.client_id, self.secret, self.token_ttl = client_id, secret, token_ttl
        self.tokens: set[str] = set()
        self.issued = 0
        self.users: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self.tickets: dict[str, list[dict[str, Any]]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.remaining_header: int | None = None
        self._ids = itertools.count(1)
        r = self.route
        r("POST", "/oauth/token", self.token)
        r("GET", "/me", lambda req: (200, {"id": "me"}, {}))
        r("GET", "/users", self.find_users)
        r("GET", "/users/by-phone/{phone}", self.by_phone)
        r("PATCH", "/users/{id}", self.anonymise)
        r("GET", "/users/{id}/notes", self.list_notes)
        r("DELETE", "/notes/{id}", self.delete_note)
        r("GET", "/users/{id}/tickets", self.list_tickets)
        r("GET", "/users/{id}/events", self.list_events)

    def authorized(self, req: Req) -> bool:
        if req.path == "/oauth/token":
            return True
        auth = req.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def error(self, status: int, message: str) -> Answer:
        return status, {"error": message}, {}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def token(self, req: Req) -> Answer:
        form = req.form()
        if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != (
                "client_credentials", self.client_id, self.secret):
            return 401, {"error": "invalid_client"}, {}
        self.issued += 1
        token = f"tok{self.issued}"
        self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "bearer",
                     "expires_in": self.token_ttl}, {}

    def add_user(self, email: str, phone: str, notes: int = 4, tickets: int = 3,
                 events: int = 5) -> str:
        uid = f"u{next(self._ids)}"
        self.users[uid] = {"id": uid, "email": email, "phone": phone, "name": "Ada"}
        for _ in range(notes):
            nid = f"n{next(self._ids)}"
            self.notes[nid] = {"id": nid, "user": uid, "text": "called about an order"}
        self.tickets[uid] = [{"id": f"t{next(self._ids)}", "subject": "help"}
                             for _ in range(tickets)]
        self.events[uid] = [{"id": f"e{next(self._ids)}", "kind": "login"}
                            for _ in range(events)]
        return uid

    def _headers(self) -> dict[str, str]:
        if self.remaining_header is None:
            return {}
        return {"X-RateLimit-Remaining": str(self.remaining_header), "X-RateLimit-Reset": "1"}

    def find_users(self, req: Req) -> Answer:
        found = [u for u in self.users.values() if u["email"] == req.query.get("email")]
        start = int(req.query.get("after") or 0)
        size = int(req.query.get("limit", 2))
        chunk = found[start:start + size]
        nxt = str(start + size) if start + size < len(found) else None
        return 200, {"results": chunk, "paging": {"next": nxt} if nxt else {}}, self._headers()

    def by_phone(self, req: Req) -> Answer:
        for user in self.users.values():
            if user["phone"] == req.params["phone"]:
                return 200, user, {}
        return self.error(404, "no such user")

    def anonymise(self, req: Req) -> Answer:
        user = self.users.get(req.params["id"])
        if user is None:
            return self.error(404, "no such user")
        user.update(req.json())
        self.tickets[user["id"]] = []
        return 200, user, {}

    def list_notes(self, req: Req) -> Answer:
        mine = [n for n in self.notes.values() if n["user"] == req.params["id"]]
        offset, limit = int(req.query.get("offset", 0)), int(req.query.get("limit", 3))
        return 200, {"notes": mine[offset:offset + limit], "total": len(mine)}, {}

    def delete_note(self, req: Req) -> Answer:
        if self.notes.pop(req.params["id"], None) is None:
            return self.error(404, "no such note")
        return 204, None, {}

    def list_tickets(self, req: Req) -> Answer:
        items = self.tickets.get(req.params["id"], [])
        page, per = int(req.query.get("page", 1)), int(req.query.get("per_page", 2))
        return 200, {"tickets": items[(page - 1) * per:page * per]}, {}

    def list_events(self, req: Req) -> Answer:
        items = self.events.get(req.params["id"], [])
        start = int(req.query.get("from", 0))
        headers = {}
        if start + 2 < len(items):
            headers["Link"] = f'<{req.headers["host"] and "http://" + req.headers["host"]}' \
                              f'{req.path}?from={start + 2}>; rel="next"'
        return 200, items[start:start + 2], headers
