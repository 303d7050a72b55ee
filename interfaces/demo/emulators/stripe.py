"""A Stripe API emulator following https://docs.stripe.com/api for what dsar uses.

Endpoints: customers (create, retrieve, list with ``email``, search with ``email:'…'``,
delete), a customer's payment methods, charges, invoices and subscriptions listed by
``customer``. Lists are ``{"object": "list", "data", "has_more", "url"}``, newest first,
paged by ``limit`` (at most 100) and ``starting_after``. Errors are
``{"error": {"type", "code", "message"}}`` with Stripe's status codes. Deleting a customer
answers ``{"id", "object": "customer", "deleted": true}``; the customer can still be retrieved
that way, drops out of list and search, loses its payment methods, and its subscriptions are
cancelled; charges and invoices stay. Writes honour ``Idempotency-Key`` (the first answer is
replayed with ``Idempotent-Replayed: true``). Auth: ``Authorization: Bearer <key>`` or Basic
with the key as user.
"""

from __future__ import annotations

import base64
import itertools
import re
from typing import Any

from interfaces.demo.emulators.server import Answer, Emulator, Req, page_after


class StripeEmulator(Emulator):
    def __init__(self, api_key: str = "sk_test_dsar") -> None:
        super().__init__()
        self.api_key = api_key
        self.customers: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.objects: dict[str, list[dict[str, Any]]] = {
            "payment_methods": [], "charges": [], "invoices": [], "subscriptions": []}
        self.idempotent: dict[str, Answer] = {}
        self.clock = 1_700_000_000
        self._ids = itertools.count(1)
        r = self.route
        r("GET", "/v1/customers", self.list_customers)
        r("POST", "/v1/customers", self.create_customer)
        r("GET", "/v1/customers/search", self.search_customers)
        r("GET", "/v1/customers/{id}", self.get_customer)
        r("DELETE", "/v1/customers/{id}", self.delete_customer)
        r("GET", "/v1/customers/{id}/payment_methods", self.customer_payment_methods)
        for kind in ("charges", "invoices", "subscriptions"):
            r("GET", f"/v1/{kind}", lambda req, k=kind: self.list_by_customer(req, k))

    def new_id(self, prefix: str) -> str:
        """A fresh object id of this account."""
        return f"{prefix}_{next(self._ids):014d}"

    # -- protocol ----------------------------------------------------------------------------

    def authorized(self, req: Req) -> bool:
        auth = req.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[7:] == self.api_key
        if auth.startswith("Basic "):
            return base64.b64decode(auth[6:]).decode().split(":")[0] == self.api_key
        return False

    def error(self, status: int, message: str) -> Answer:
        kind = {401: "invalid_request_error", 429: "invalid_request_error",
                500: "api_error"}.get(status, "invalid_request_error")
        body: dict[str, Any] = {"type": kind, "message": message}
        if status == 404:
            body["code"] = "resource_missing"
        if status == 429:
            body["code"] = "rate_limit"
        return status, {"error": body}, {}

    def handle(self, req: Req) -> Answer:
        key = req.headers.get("idempotency-key")
        if key and req.method != "GET" and key in self.idempotent:
            status, body, headers = self.idempotent[key]
            return status, body, {**headers, "Idempotent-Replayed": "true"}
        answer = super().handle(req)
        if key and req.method != "GET" and answer[0] < 500 and answer[0] != 429:
            self.idempotent[key] = answer
        return answer

    # -- seeding -----------------------------------------------------------------------------

    def add_customer(self, email: str, name: str = "Jenny Rosen", *, charges: int = 2,
                     invoices: int = 1, payment_methods: int = 1, subscriptions: int = 1) -> str:
        with self.lock:
            self.clock += 1
            cid = self.new_id("cus")
            self.customers[cid] = {
                "id": cid, "object": "customer", "email": email, "name": name,
                "phone": None, "created": self.clock, "currency": "eur", "delinquent": False,
                "address": {"city": "Berlin", "country": "DE", "line1": "Unter den Linden 1",
                            "line2": None, "postal_code": "10117", "state": None},
                "metadata": {}, "livemode": False, "preferred_locales": ["de"],
                "invoice_settings": {"default_payment_method": None},
            }
            for _ in range(payment_methods):
                self._add("payment_methods", "pm", cid, type="card", billing_details={
                    "email": email, "name": name},
                    card={"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2030})
            for i in range(charges):
                self._add("charges", "ch", cid, amount=1000 + i, currency="eur",
                          status="succeeded", billing_details={"email": email, "name": name})
            for _ in range(invoices):
                self._add("invoices", "in", cid, customer_email=email, amount_due=1000,
                          status="paid", currency="eur")
            for _ in range(subscriptions):
                self._add("subscriptions", "sub", cid, status="active",
                          items={"object": "list", "data": []})
            return cid

    def _add(self, kind: str, prefix: str, cid: str, **fields: Any) -> None:
        self.clock += 1
        obj = {"id": self.new_id(prefix), "object": kind[:-1],
               "customer": cid, "created": self.clock, "livemode": False, **fields}
        self.objects[kind].insert(0, obj)

    # -- endpoints ---------------------------------------------------------------------------

    def _list(self, req: Req, items: list[dict[str, Any]]) -> Answer:
        page, more = page_after(items, req.query)
        return 200, {"object": "list", "url": req.path, "has_more": more, "data": page}, {}

    def _live(self) -> list[dict[str, Any]]:
        return sorted((c for c in self.customers.values() if c["id"] not in self.deleted),
                      key=lambda c: -c["created"])

    def list_customers(self, req: Req) -> Answer:
        items = self._live()
        if "email" in req.query:  # a case-sensitive exact filter, as documented
            items = [c for c in items if c["email"] == req.query["email"]]
        return self._list(req, items)

    def search_customers(self, req: Req) -> Answer:
        match = re.fullmatch(r"email:'((?:[^'\\]|\\.)*)'", req.query.get("query", ""))
        if not match:
            return self.error(400, "Invalid search query")
        wanted = match.group(1).replace("\\'", "'").lower()
        items = [c for c in self._live() if (c["email"] or "").lower() == wanted]
        limit = min(int(req.query.get("limit", 10)), 100)
        start = int(req.query.get("page") or 0)
        chunk, more = items[start:start + limit], start + limit < len(items)
        return 200, {"object": "search_result", "url": req.path, "has_more": more,
                     "next_page": str(start + limit) if more else None, "data": chunk}, {}

    def create_customer(self, req: Req) -> Answer:
        form = req.form()
        cid = self.add_customer(form.get("email", ""), form.get("name", ""), charges=0,
                                invoices=0, payment_methods=0, subscriptions=0)
        return 200, self.customers[cid], {}

    def _missing(self, cid: str) -> Answer:
        return self.error(404, f"No such customer: '{cid}'")

    def get_customer(self, req: Req) -> Answer:
        cid = req.params["id"]
        if cid in self.deleted:
            return 200, {"id": cid, "object": "customer", "deleted": True}, {}
        if cid not in self.customers:
            return self._missing(cid)
        return 200, self.customers[cid], {}

    def delete_customer(self, req: Req) -> Answer:
        cid = req.params["id"]
        if cid not in self.customers or cid in self.deleted:
            return self._missing(cid)
        self.deleted.add(cid)
        self.objects["payment_methods"] = [p for p in self.objects["payment_methods"]
                                           if p["customer"] != cid]
        for sub in self.objects["subscriptions"]:
            if sub["customer"] == cid:
                sub["status"] = "canceled"
        return 200, {"id": cid, "object": "customer", "deleted": True}, {}

    def customer_payment_methods(self, req: Req) -> Answer:
        cid = req.params["id"]
        if cid not in self.customers or cid in self.deleted:
            return self._missing(cid)
        return self._list(req, [p for p in self.objects["payment_methods"]
                                if p["customer"] == cid])

    def list_by_customer(self, req: Req, kind: str) -> Answer:
        items = self.objects[kind]
        if "customer" in req.query:
            items = [o for o in items if o["customer"] == req.query["customer"]]
        if kind == "subscriptions" and req.query.get("status") != "all":
            items = [o for o in items if o["status"] != "canceled"]
        return self._list(req, items)
