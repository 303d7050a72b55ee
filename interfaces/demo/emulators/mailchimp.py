"""A Mailchimp Marketing API 3.0 emulator following https://mailchimp.com/developer/marketing/api/
for what dsar uses.

Endpoints: ``GET /3.0/ping``; ``GET /3.0/lists`` (``offset``/``count`` paging, ``total_items``);
``POST /3.0/lists/{list_id}/members`` and ``GET /3.0/lists/{list_id}/members/{subscriber_hash}``
(the hash is the MD5 of the lower-cased email; the member's ``id`` is that hash);
``GET …/members/{hash}/activity-feed`` (the member's whole activity, newest first, paged by
``offset`` and ``count``: default 10, at most 1000, with ``total_items``; ``activity_filters``
picks activity types); ``GET …/members/{hash}/activity`` (the older endpoint: the last 50
events only, unpaged); ``POST …/members/{hash}/actions/delete-permanent`` (204).
Errors are problem documents ``{"type", "title", "status", "detail", "instance"}``. Auth is
HTTP Basic with any user name and the API key as password.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req

TITLES = {400: "Invalid Resource", 401: "API Key Invalid", 404: "Resource Not Found",
          405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error"}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


class MailchimpEmulator(Emulator):
    def __init__(self, api_key: str = "0123456789abcdef0123456789abcdef-us6") -> None:
        super().__init__()
        self.api_key = api_key
        self.lists: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}
        self.activity: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.forgotten: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)
        r = self.route
        r("GET", "/3.0/ping", lambda req: (200, {"health_status": "Everything's Chimpy!"}, {}))
        r("GET", "/3.0/lists", self.get_lists)
        r("POST", "/3.0/lists/{list_id}/members", self.add_member_call)
        r("GET", "/3.0/lists/{list_id}/members/{hash}", self.get_member)
        r("GET", "/3.0/lists/{list_id}/members/{hash}/activity", self.get_activity)
        r("GET", "/3.0/lists/{list_id}/members/{hash}/activity-feed", self.get_activity_feed)
        r("POST", "/3.0/lists/{list_id}/members/{hash}/actions/delete-permanent",
          self.delete_permanent)

    def authorized(self, req: Req) -> bool:
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return False
        _, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return password == self.api_key

    def error(self, status: int, message: str) -> Answer:
        return status, {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": TITLES.get(status, "Error"), "status": status, "detail": message,
            "instance": "00000000-0000-0000-0000-000000000000",
        }, {"Content-Type": "application/problem+json"}

    # -- seeding -----------------------------------------------------------------------------

    def add_list(self, name: str) -> str:
        with self.lock:
            list_id = f"{next(self._ids):010x}"
            self.lists[list_id] = {"id": list_id, "web_id": next(self._ids), "name": name,
                                   "stats": {"member_count": 0}}
            self.members[list_id] = {}
            return list_id

    def add_member(self, list_id: str, email: str, *, events: int = 3,
                   status: str = "subscribed") -> dict[str, Any]:
        with self.lock:
            h = subscriber_hash(email)
            if (list_id, h) in self.forgotten:
                raise ValueError("permanently deleted members cannot be re-imported")
            member = {
                "id": h, "email_address": email, "unique_email_id": f"{next(self._ids):010x}",
                "contact_id": f"{next(self._ids):010x}", "full_name": "Jenny Rosen",
                "email_type": "html", "status": status, "list_id": list_id,
                "merge_fields": {"FNAME": "Jenny", "LNAME": "Rosen"},
                "ip_signup": "198.51.100.7", "timestamp_signup": "2026-01-02T10:00:00+00:00",
                "language": "de", "vip": False, "tags": [{"id": 1, "name": "customer"}],
                "location": {"latitude": 52.52, "longitude": 13.4, "country_code": "DE"},
            }
            self.members[list_id][h] = member
            self.activity[(list_id, h)] = [  # newest first
                {"activity_type": "open" if i % 2 else "click",
                 "created_at_timestamp": f"2026-02-01T08:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
                 "campaign_id": f"{list_id[-4:]}{i:06x}",  # a campaign goes to one audience
                 "campaign_title": f"Newsletter {i}"}
                for i in reversed(range(events))]
            return member

    # -- endpoints ---------------------------------------------------------------------------

    def get_lists(self, req: Req) -> Answer:
        offset = int(req.query.get("offset", 0))
        count = min(int(req.query.get("count", 10)), 1000)
        items = list(self.lists.values())
        return 200, {"lists": items[offset:offset + count], "total_items": len(items),
                     "_links": []}, {}

    def _member(self, req: Req) -> dict[str, Any] | None:
        return self.members.get(req.params["list_id"], {}).get(req.params["hash"])

    def add_member_call(self, req: Req) -> Answer:
        if req.params["list_id"] not in self.lists:
            return self.error(404, "The requested resource could not be found.")
        body = req.json()
        try:
            member = self.add_member(req.params["list_id"], body["email_address"], events=0,
                                     status=body.get("status", "subscribed"))
        except ValueError as exc:
            return self.error(400, str(exc))
        return 200, member, {}

    def get_member(self, req: Req) -> Answer:
        member = self._member(req)
        if member is None:
            return self.error(404, "The requested resource could not be found.")
        return 200, member, {}

    def get_activity(self, req: Req) -> Answer:
        if self._member(req) is None:
            return self.error(404, "The requested resource could not be found.")
        key = (req.params["list_id"], req.params["hash"])
        events = [{"action": e["activity_type"], "timestamp": e["created_at_timestamp"],
                   "campaign_id": e["campaign_id"], "title": e["campaign_title"]}
                  for e in self.activity.get(key, [])[:50]]
        return 200, {"activity": events, "email_id": req.params["hash"],
                     "list_id": req.params["list_id"], "total_items": len(events)}, {}

    def get_activity_feed(self, req: Req) -> Answer:
        if self._member(req) is None:
            return self.error(404, "The requested resource could not be found.")
        try:
            offset = int(req.query.get("offset", 0))
            count = min(int(req.query.get("count", 10)), 1000)
        except ValueError:
            return self.error(400, "count and offset must be integers")
        key = (req.params["list_id"], req.params["hash"])
        events = self.activity.get(key, [])
        kinds = req.query.get("activity_filters")
        if kinds:
            wanted = set(kinds.split(","))
            events = [e for e in events if e["activity_type"] in wanted]
        return 200, {"activity": events[offset:offset + count], "email_id": req.params["hash"],
                     "list_id": req.params["list_id"], "total_items": len(events),
                     "_links": []}, {}

    def delete_permanent(self, req: Req) -> Answer:
        if self._member(req) is None:
            return self.error(404, "The requested resource could not be found.")
        key = (req.params["list_id"], req.params["hash"])
        del self.members[key[0]][key[1]]
        self.activity.pop(key, None)
        self.forgotten.add(key)
        return 204, None, {}
