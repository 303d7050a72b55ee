"""A Braze REST API emulator following https://www.braze.com/docs/api/basics/ for what dsar
uses.

Endpoints: ``POST /users/export/ids`` (by ``external_ids``, ``braze_id``, ``user_aliases`` or
``email_address``; ``fields_to_export`` picks fields; answers ``{"users", "invalid_user_ids",
"message": "success"}``, every profile sharing the address, unpaged), ``POST /users/delete``
(one kind of identifier a request, ``external_ids`` or ``braze_ids``, at most 50; answers
``{"deleted": n, "message": "success"}``, ``n`` the profiles *queued* for deletion, unknown ids
count nothing). Errors are ``{"message"}``. Auth: ``Authorization: Bearer <REST API key>``.

Deletion is asynchronous, as Braze documents it: a success answer means the deletion is
queued; it usually completes within a second, but exports may still show the profile for up
to five minutes. Here a queued profile disappears ``delete_delay`` seconds after the call, on
``clock`` (both settable by a test: ``clock`` may be a simulated clock).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req

IDENTIFIERS = ("external_ids", "user_aliases", "braze_ids", "email_addresses", "phone_numbers")


class BrazeEmulator(Emulator):
    def __init__(self, api_key: str = "braze-rest-dsar") -> None:
        super().__init__()
        self.api_key = api_key
        self.users: dict[str, dict[str, Any]] = {}
        self.queued: dict[str, float] = {}  # braze_id -> when the deletion takes effect
        self.delete_delay = 0.0
        self.clock: Callable[[], float] = time.monotonic
        self._ids = itertools.count(1)
        self.route("POST", "/users/export/ids", self.export)
        self.route("POST", "/users/delete", self.delete)

    def authorized(self, req: Req) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.api_key}"

    def error(self, status: int, message: str) -> Answer:
        text = {401: "Invalid API Key", 429: "Rate limit exceeded"}.get(status, message)
        return status, {"message": text}, {}

    def handle(self, req: Req) -> Answer:
        self.apply_deletions()
        return super().handle(req)

    def apply_deletions(self) -> None:
        """Remove the queued profiles whose deletion time has come."""
        with self.lock:
            now = self.clock()
            for bid, when in list(self.queued.items()):
                if when <= now:
                    self.users.pop(bid, None)
                    del self.queued[bid]

    def add_user(self, email: str, external_id: str | None = None) -> str:
        with self.lock:
            bid = f"5e{next(self._ids):022x}"
            self.users[bid] = {
                "braze_id": bid, "external_id": external_id, "email": email,
                "first_name": "Jenny", "last_name": "Rosen", "country": "DE",
                "email_subscribe": "opted_in", "created_at": "2026-01-02T10:00:00.000Z",
                "custom_attributes": {"plan": "gold"},
                "purchases": [{"name": "mug", "count": 2}]}
            return bid

    def export(self, req: Req) -> Answer:
        body = req.json()
        wanted = set(body.get("external_ids") or [])
        hits = [u for u in self.users.values()
                if u["external_id"] in wanted or u["braze_id"] == body.get("braze_id")
                or (body.get("email_address") and
                    u["email"].lower() == str(body["email_address"]).lower())]
        if not any(k in body for k in ("external_ids", "braze_id", "email_address",
                                       "user_aliases", "phone")):
            return 400, {"message": "Specify at least one identifier"}, {}
        fields = body.get("fields_to_export")
        users = [{k: v for k, v in u.items() if not fields or k in fields or k == "braze_id"}
                 for u in hits]
        invalid = sorted(wanted - {u["external_id"] for u in hits})
        return 201, {"users": users, "invalid_user_ids": invalid, "message": "success"}, {}

    def delete(self, req: Req) -> Answer:
        body = req.json()
        given = [k for k in IDENTIFIERS if body.get(k)]
        if len(given) != 1:
            return 400, {"message": "Specify exactly one of " + ", ".join(IDENTIFIERS)}, {}
        ids = set(body[given[0]])
        if len(ids) > 50:
            return 400, {"message": "at most 50 ids a request"}, {}
        field = {"external_ids": "external_id", "braze_ids": "braze_id"}.get(given[0])
        if field is None:
            return 400, {"message": f"{given[0]} is not supported by this emulator"}, {}
        with self.lock:
            queued = [b for b, u in self.users.items() if u[field] in ids]
            when = self.clock() + self.delete_delay
            for bid in queued:
                self.queued.setdefault(bid, when)
        self.apply_deletions()
        return 201, {"deleted": len(queued), "message": "success"}, {}
