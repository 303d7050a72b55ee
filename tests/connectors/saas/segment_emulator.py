"""A Segment Public API emulator for user deletion and suppression, following
https://docs.segmentapis.com/tag/Deletion-and-Suppression for what dsar uses.

Endpoints: ``GET /`` (Get Workspace), ``POST /regulations`` (Create Workspace Regulation:
``{"regulationType", "subjectType", "subjectIds"}``, answering
``{"data": {"regulateId"}}``), ``GET /regulations/{regulateId}`` (Get Regulation:
``{"data": {"regulation": {"id", "workspaceId", "overallStatus", "createdAt", "finishedAt",
"streamStatus"}}}``). ``regulationType`` is one of the documented ``DELETE_INTERNAL``,
``DELETE_ONLY``, ``SUPPRESS_ONLY``, ``SUPPRESS_WITH_DELETE``, ``SUPPRESS_WITH_DELETE_INTERNAL``,
``UNSUPPRESS``; ``subjectType`` ``USER_ID`` or ``OBJECT_ID``; a bad body answers 422. Errors
are ``{"errors": [{"type", "message"}]}``. Auth: a ``Bearer`` token.

A regulation is ``INITIALIZED`` when created, ``RUNNING`` once ``start_after`` seconds have
passed on the emulator's ``clock`` and ``FINISHED`` (or ``outcome``) after ``finish_after``:
a test moves ``clock`` forward instead of sleeping. A finished deletion removes the subjects'
data (``users``); a suppression adds them to ``suppressed``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req

TYPES = ("DELETE_INTERNAL", "DELETE_ONLY", "SUPPRESS_ONLY", "SUPPRESS_WITH_DELETE",
         "SUPPRESS_WITH_DELETE_INTERNAL", "UNSUPPRESS")
SUBJECTS = ("USER_ID", "OBJECT_ID")
ERROR_TYPES = {401: "unauthorized", 404: "not-found", 422: "validation",
               429: "too-many-requests", 500: "server"}


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace(
        "+00:00", "Z")


class SegmentEmulator(Emulator):
    def __init__(self, token: str = "sgp_dsar", workspace: str = "wks_9yHxhM3gB") -> None:
        super().__init__()
        self.token, self.workspace = token, workspace
        self.clock: Callable[[], float] = time.time
        self.start_after, self.finish_after = 0.0, 0.0
        self.outcome = "FINISHED"
        self.users: dict[str, int] = {}         # userId -> events Segment holds
        self.suppressed: set[str] = set()
        self.regulations: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        r = self.route
        r("GET", "/", self.get_workspace)
        r("POST", "/regulations", self.create_regulation)
        r("GET", "/regulations/{id}", self.get_regulation)

    def authorized(self, req: Req) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def error(self, status: int, message: str) -> Answer:
        return status, {"errors": [{"type": ERROR_TYPES.get(status, "unknown"),
                                    "message": message}]}, {}

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (it starts at the real time)."""
        now = self.clock()
        self.clock = lambda: now + seconds

    # -- seeding -----------------------------------------------------------------------------

    def add_user(self, user_id: str, events: int = 12) -> None:
        with self.lock:
            self.users[user_id] = self.users.get(user_id, 0) + events

    # -- endpoints ---------------------------------------------------------------------------

    def get_workspace(self, req: Req) -> Answer:
        return 200, {"data": {"workspace": {"id": self.workspace, "slug": "example",
                                            "name": "Example"}}}, {}

    def create_regulation(self, req: Req) -> Answer:
        try:
            body = req.json()
        except ValueError:
            return self.error(422, "body is not JSON")
        kind, subject, ids = (body.get("regulationType"), body.get("subjectType"),
                              body.get("subjectIds"))
        if kind not in TYPES:
            return self.error(422, f"regulationType must be one of {', '.join(TYPES)}")
        if subject not in SUBJECTS:
            return self.error(422, "subjectType must be one of OBJECT_ID, USER_ID")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i
                                                           for i in ids):
            return self.error(422, "subjectIds must be a non-empty list of strings")
        regulate_id = f"2Lx{next(self._ids):07d}qGgA1cRkyVNtOJ8z5i"[:27]
        self.regulations[regulate_id] = {"type": kind, "subjectType": subject,
                                         "subjectIds": list(ids), "created": self.clock(),
                                         "applied": False}
        return 200, {"data": {"regulateId": regulate_id}}, {}

    def _status(self, reg: dict[str, Any]) -> tuple[str, float | None]:
        age = self.clock() - reg["created"]
        if age >= self.finish_after:
            if not reg["applied"]:
                reg["applied"] = True
                if self.outcome == "FINISHED":
                    self._apply(reg)
            return self.outcome, reg["created"] + self.finish_after
        return ("RUNNING" if age >= self.start_after else "INITIALIZED"), None

    def _apply(self, reg: dict[str, Any]) -> None:
        for subject in reg["subjectIds"]:
            if "DELETE" in reg["type"]:
                self.users.pop(subject, None)
            if reg["type"].startswith("SUPPRESS"):
                self.suppressed.add(subject)
            if reg["type"] == "UNSUPPRESS":
                self.suppressed.discard(subject)

    def get_regulation(self, req: Req) -> Answer:
        reg = self.regulations.get(req.params["id"])
        if reg is None:
            return self.error(404, "Resource not found")
        status, finished = self._status(reg)
        streams = [{"id": "src_1", "name": "website", "status": status,
                    "destinationStatus": [{"name": "Segment", "id": "seg", "status": status,
                                           "errString": "", "finishedAt": _iso(finished) or ""}]}]
        return 200, {"data": {"regulation": {
            "id": req.params["id"], "workspaceId": self.workspace, "overallStatus": status,
            "createdAt": _iso(reg["created"]), "finishedAt": _iso(finished),
            "streamStatus": streams}}}, {}
