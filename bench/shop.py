"""The benchmark's application database: a shop of N customers (customers, addresses, orders,
order items, payment cards, logins, visits, service requests; about 54 rows per customer),
built with ``generate_series``, and the data map dsar reads it with."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

SHOP_SQL = """
CREATE TABLE customers (id bigint PRIMARY KEY, email text UNIQUE NOT NULL, name text,
    phone text, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO customers SELECT g, 'customer' || g || '@example.com', 'Customer ' || g,
    '+4930' || lpad(g::text, 8, '0'), now() - (g % 1000) * interval '1 day'
    FROM generate_series(1, :n) g;
CREATE TABLE addresses (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id),
    street text, city text, postal_code text);
INSERT INTO addresses SELECT g, (g - 1) % :n + 1, g || ' Main Street', 'Berlin',
    lpad((g % 99999)::text, 5, '0') FROM generate_series(1, :n * 2) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id),
    placed_at timestamptz, total numeric(10, 2), shipping_address text);
INSERT INTO orders SELECT g, (g - 1) % :n + 1, now() - (g % 700) * interval '1 day',
    (g % 500) + 0.99, g || ' Main Street' FROM generate_series(1, :n * 5) g;
CREATE TABLE order_items (id bigint PRIMARY KEY, order_id bigint REFERENCES orders(id),
    sku text, quantity int, price numeric(10, 2));
INSERT INTO order_items SELECT g, (g - 1) % (:n * 5) + 1, 'SKU-' || (g % 5000), 1 + g % 3,
    (g % 200) + 0.5 FROM generate_series(1, :n * 15) g;
CREATE TABLE payment_cards (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id),
    last4 text, expires text);
INSERT INTO payment_cards SELECT g, (g - 1) % :n + 1, lpad((g % 10000)::text, 4, '0'), '12/29'
    FROM generate_series(1, :n) g;
CREATE TABLE logins (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id),
    at timestamptz, ip text);
INSERT INTO logins SELECT g, (g - 1) % :n + 1, now() - (g % 365) * interval '1 hour',
    '10.0.' || (g % 250) || '.' || (g % 200) FROM generate_series(1, :n * 10) g;
CREATE TABLE visits (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers(id),
    at timestamptz, url text);
INSERT INTO visits SELECT g, (g - 1) % :n + 1, now() - (g % 365) * interval '1 hour',
    '/product/' || (g % 5000) FROM generate_series(1, :n * 20) g;
CREATE TABLE service_requests (id bigint PRIMARY KEY,
    customer_id bigint REFERENCES customers(id), opened_at timestamptz, body text);
INSERT INTO service_requests SELECT g, (g - 1) % :n + 1, now(), 'Where is my order ' || g
    FROM generate_series(1, :n) g;
CREATE INDEX ON customers (lower(email));
CREATE INDEX ON addresses (customer_id); CREATE INDEX ON orders (customer_id);
CREATE INDEX ON order_items (order_id); CREATE INDEX ON payment_cards (customer_id);
CREATE INDEX ON logins (customer_id); CREATE INDEX ON visits (customer_id);
CREATE INDEX ON service_requests (customer_id);
ANALYZE;
"""


def shop_map() -> dict[str, Any]:
    def child(name: str, columns: dict[str, str], parent: str = "customers",
              via: str = "customer_id") -> dict[str, Any]:
        return {"name": name, "primary_key": ["id"],
                "references": [{"columns": [via], "table": parent, "to": ["id"],
                                "direction": "inbound"}],
                "columns": {c: {"category": cat} for c, cat in columns.items()},
                "erasure": {"action": "delete"}}

    tables = [
        {"name": "customers", "primary_key": ["id"], "identities": {"email": "email"},
         "provides": {"customer_id": "id"},
         "columns": {"email": {"category": "user.contact.email"},
                     "name": {"category": "user.name"},
                     "phone": {"category": "user.contact.phone"}},
         "erasure": {"action": "delete"}},
        child("addresses", {"street": "user.contact.address", "city": "user.contact.address",
                            "postal_code": "user.contact.address"}),
        child("orders", {"shipping_address": "user.contact.address"}),
        child("order_items", {}, parent="orders", via="order_id"),
        child("payment_cards", {"last4": "user.financial"}),
        child("logins", {"ip": "user.device.ip_address"}),
        child("visits", {"url": "user.behavior.browsing_history"}),
        child("service_requests", {"body": "user.content"}),
    ]
    return {"version": 1, "controller": {"name": "Bench Shop GmbH"},
            "systems": [{"name": "shop", "kind": "sql", "url_env": "SHOP_URL",
                         "max_concurrent_tasks": 16, "tables": tables}]}


def build_shop(url: str, customers: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in SHOP_SQL.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement.replace(":n", str(customers))))
    engine.dispose()
