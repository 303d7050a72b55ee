"""A Braze REST API emulator following https://www.braze.com/docs/api/basics/ for what dsar
uses.

Endpoints: ``POST /users/export/ids`` (by ``external_ids``, ``braze_id``, ``user_aliases`` or
``email_address``; ``fields_to_export`` picks fields; answers ``{"users", "invalid_user_ids",
"message": "success"}``, every profile sharing the address, unpaged), ``POST /users/delete``
(``external_ids`` and/or ``braze_ids``; ``{"deleted": n, "message": "success"}``, unknown ids
count nothing). Errors are ``{"message"}``. Auth: ``Authorization: Bearer <REST API key>``.
"""

from __future__ import annotations

import itertools
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req


class BrazeEmulator(Emulator):
    def __init__(self, api_key: str = "braze-rest-dsar") -> None:
        super().__init__()
        self.api_key = api_key
        self.users: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.route("POST", "/users/export/ids", self.export)
        self.route("POST", "/users/delete", self.delete)

    def authorized(self, req: Req) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.api_key}"

    def error(self, status: int, message: str) -> Answer:
        text = {401: "Invalid API Key", 429: "Rate limit exceeded"}.get(status, message)
        return status, {"message": text}, {}

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
        ext, bids = set(body.get("external_ids") or []), set(body.get("braze_ids") or [])
        if len(ext) + len(bids) > 50:
            return 400, {"message": "at most 50 ids a request"}, {}
        gone = [b for b, u in self.users.items() if b in bids or u["external_id"] in ext]
        for bid in gone:
            del self.users[bid]
        return 201, {"deleted": len(gone), "message": "success"}, {}
