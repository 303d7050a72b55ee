"""A Salesforce REST API emulator following
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta for what dsar uses.

Endpoints: ``POST /services/oauth2/token`` (client credentials; ``{"access_token",
"instance_url", "token_type", "issued_at"}``, a bad client is 400 ``invalid_client``),
``GET /services/data/vXX.X/query?q=`` (SOQL ``SELECT … FROM Contact|Lead|Case WHERE
<Field> = '<literal>' [AND …]``, string literals with Salesforce's escapes; a malformed query
is 400 ``MALFORMED_QUERY``; ``{"totalSize", "done", "records", "nextRecordsUrl"}`` with
``batch`` records a page), ``GET …/query/{locator}`` (the next page),
``GET|DELETE …/sobjects/{type}/{id}`` (204; a deleted record is 404 ``ENTITY_IS_DELETED``),
``GET …/queryAll?q=`` (as ``query``, and also the records in the Recycle Bin, with
``IsDeleted: true``; its next pages at ``…/queryAll/{locator}``); a trailing slash is
ignored. ``WHERE`` takes string literals and the boolean literals ``true`` and ``false``.

A REST delete is soft, as Salesforce documents it: the record goes to the org's Recycle Bin,
where queries no longer find it, ``queryAll`` still does, and it stays restorable for
``RECYCLE_DAYS`` days before Salesforce purges it for good (:meth:`purge`, on ``clock``, which
a test may replace with a simulated clock).
Records carry ``attributes: {type, url}``. Errors are a list of ``{"message", "errorCode"}``.
The token endpoint is outside fault injection and rate limits (Salesforce serves it apart)
but honours ``refuse``.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req

VERSION = "v62.0"
DATA = f"/services/data/{VERSION}"
CODES = {401: "INVALID_SESSION_ID", 404: "NOT_FOUND", 429: "REQUEST_LIMIT_EXCEEDED",
         400: "MALFORMED_QUERY", 500: "UNKNOWN_EXCEPTION"}
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'",
           "\\": "\\"}
LITERAL = r"'((?:[^'\\]|\\.)*)'"
CONDITION = re.compile(rf"\s*(\w+)\s*=\s*(?:{LITERAL}|(true|false)\b)\s*", re.IGNORECASE)
RECYCLE_DAYS = 15


def unescape(text: str) -> str:
    """A SOQL string literal's value; ValueError for an escape SOQL does not define."""
    out, chars = [], iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars)
            if nxt not in ESCAPES:
                raise ValueError(f"invalid escape \\{nxt}")
            out.append(ESCAPES[nxt])
        else:
            out.append(ch)
    return "".join(out)


def parse_soql(query: str) -> tuple[list[str], str, list[tuple[str, str]]]:
    """Fields, object and ``Field = 'value'`` conditions (joined by AND) of a simple SELECT."""
    match = re.fullmatch(r"\s*SELECT\s+(.+?)\s+FROM\s+(\w+)\s+WHERE\s+(.+?)\s*", query,
                         re.IGNORECASE | re.DOTALL)
    if not match:
        raise ValueError("unexpected token")
    conditions, rest = [], match.group(3)
    while True:
        cond = CONDITION.match(rest)
        if not cond:
            raise ValueError("unexpected token in WHERE")
        value = (unescape(cond.group(2)) if cond.group(3) is None
                 else cond.group(3).lower())
        conditions.append((cond.group(1), value))
        rest = rest[cond.end():]
        if not rest:
            break
        joined = re.match(r"AND\s+", rest, re.IGNORECASE)
        if not joined:
            raise ValueError(f"unexpected token: {rest.split()[0]!r}")
        rest = rest[joined.end():]
    return [f.strip() for f in match.group(1).split(",")], match.group(2), conditions


class SalesforceEmulator(Emulator):
    def __init__(self, client_id: str = "3MVG9dsar", secret: str = "sf-secret") -> None:
        super().__init__()
        self.client_id, self.secret = client_id, secret
        self.tokens: set[str] = set()
        self.records: dict[str, dict[str, dict[str, Any]]] = {"Contact": {}, "Lead": {},
                                                               "Case": {}}
        self.deleted: set[str] = set()  # in the Recycle Bin
        self.deleted_at: dict[str, float] = {}
        self.clock: Callable[[], float] = time.time
        self.batch = 200
        self.cursors: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        r = self.route
        r("GET", f"{DATA}/query", self.query)
        r("GET", f"{DATA}/queryAll", self.query_all)
        r("GET", f"{DATA}/query/{{locator}}", self.query_more)
        r("GET", f"{DATA}/queryAll/{{locator}}", self.query_more)
        r("GET", f"{DATA}/sobjects/{{type}}/{{id}}", self.get_record)
        r("DELETE", f"{DATA}/sobjects/{{type}}/{{id}}", self.delete_record)

    def handle(self, req: Req) -> Answer:
        req.path = req.path.rstrip("/") or "/"  # simple-salesforce sends ``…/query/``
        if req.path == "/services/oauth2/token" and req.method == "POST":
            with self.lock:
                self.calls += 1
                self.log.append((req.method, req.path))
                form = req.form()
                if self.refuse or form.get("grant_type") != "client_credentials" or (
                        form.get("client_id"), form.get("client_secret")) != (self.client_id,
                                                                               self.secret):
                    return 400, {"error": "invalid_client",
                                 "error_description": "invalid client credentials"}, {}
                token = f"00Dxx0000001gPL!{next(self._tokens)}"
                self.tokens.add(token)
                host = req.headers.get("host", "example.my.salesforce.com")
                return 200, {"access_token": token, "instance_url": f"http://{host}",
                             "token_type": "Bearer", "issued_at": "1733300000000",
                             "id": "https://login.salesforce.com/id/00Dxx/005xx"}, {}
        return super().handle(req)

    def authorized(self, req: Req) -> bool:
        auth = req.headers.get("authorization", "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def error(self, status: int, message: str) -> Answer:
        return status, [{"message": message, "errorCode": CODES.get(status, "ERROR")}], {}

    # -- seeding -----------------------------------------------------------------------------

    def _add(self, kind: str, prefix: str, **fields: Any) -> str:
        rid = f"{prefix}{next(self._ids):015d}"
        self.records[kind][rid] = {
            "attributes": {"type": kind, "url": f"{DATA}/sobjects/{kind}/{rid}"},
            "Id": rid, "IsDeleted": False, "CreatedDate": "2026-01-02T10:00:00.000+0000",
            **fields}
        return rid

    def add_contact(self, email: str, *, cases: int = 2, lead: bool = True) -> str:
        with self.lock:
            cid = self._add("Contact", "003", FirstName="Jenny", LastName="Rosen",
                            Email=email, Phone="+49 30 1234567", AccountId="001000000000001")
            for i in range(cases):
                self._add("Case", "500", ContactId=cid, Subject=f"Refund {i}",
                          Description="Parcel lost", Status="New", SuppliedEmail=email)
            if lead:
                self._add("Lead", "00Q", FirstName="Jenny", LastName="Rosen", Email=email,
                          Company="Example GmbH", Status="Open - Not Contacted")
            return cid

    # -- endpoints ---------------------------------------------------------------------------

    def _page(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        chunk, rest = records[:self.batch], records[self.batch:]
        body: dict[str, Any] = {"totalSize": len(records), "done": not rest, "records": chunk}
        if rest:
            locator = f"01gxx0000000{next(self._ids)}-{self.batch}"
            self.cursors[locator] = rest
            body["nextRecordsUrl"] = f"{DATA}/query/{locator}"
        return body

    def purge(self) -> list[str]:
        """Purge the records that have been in the Recycle Bin for ``RECYCLE_DAYS`` days; their
        ids."""
        with self.lock:
            horizon = self.clock() - RECYCLE_DAYS * 86_400
            gone = [rid for rid, when in self.deleted_at.items() if when <= horizon]
            for rid in gone:
                for records in self.records.values():
                    records.pop(rid, None)
                self.deleted.discard(rid)
                del self.deleted_at[rid]
            return gone

    def query(self, req: Req, *, include_deleted: bool = False) -> Answer:
        self.purge()
        try:
            fields, kind, conditions = parse_soql(req.query.get("q", ""))
        except (ValueError, StopIteration) as exc:
            return self.error(400, f"MALFORMED_QUERY: {exc}")
        if kind not in self.records:
            return self.error(400, f"sObject type '{kind}' is not supported.")
        hits = []
        for rec in self.records[kind].values():
            if rec["Id"] in self.deleted and not include_deleted:
                continue
            if all(_text(rec.get(f)) == v.lower() for f, v in conditions):
                hits.append({"attributes": rec["attributes"],
                             **{f: rec.get(f) for f in fields}})
        return 200, self._page(hits), {}

    def query_all(self, req: Req) -> Answer:
        return self.query(req, include_deleted=True)

    def query_more(self, req: Req) -> Answer:
        rest = self.cursors.pop(req.params["locator"], None)
        if rest is None:
            return self.error(400, "invalid query locator")
        body = self._page(rest)
        body["totalSize"] = None  # only the first page knows it; callers must not rely on it
        return 200, body, {}

    def _record(self, req: Req) -> tuple[dict[str, Any] | None, Answer | None]:
        self.purge()
        rec = self.records.get(req.params["type"], {}).get(req.params["id"])
        if rec is None:
            return None, self.error(404, "The requested resource does not exist")
        if rec["Id"] in self.deleted:
            return None, (404, [{"message": "entity is deleted",
                                 "errorCode": "ENTITY_IS_DELETED"}], {})
        return rec, None

    def get_record(self, req: Req) -> Answer:
        rec, err = self._record(req)
        return err if rec is None else (200, rec, {})  # type: ignore[return-value]

    def delete_record(self, req: Req) -> Answer:
        rec, err = self._record(req)
        if rec is None:
            return err  # type: ignore[return-value]
        with self.lock:
            self.deleted.add(rec["Id"])  # to the Recycle Bin
            self.deleted_at[rec["Id"]] = self.clock()
            rec["IsDeleted"] = True
        return 204, None, {}


def _text(value: Any) -> str:
    """A field's value as a WHERE clause compares it: booleans as ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value or "").lower()
