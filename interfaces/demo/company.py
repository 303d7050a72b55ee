"""The sample company: a small online shop with a SQLite database and an S3 bucket.

Everything is made by Faker from a fixed seed, so two runs build the same company. The first
customer is the demo's data subject and has a little of everything: orders, a support ticket, a
payment dispute under legal hold, a newsletter subscription, an avatar, uploads, and lines in
the shared event logs.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import sqlite3
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from faker import Faker

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    email VARCHAR(254) NOT NULL UNIQUE,
    phone VARCHAR(32),
    first_name VARCHAR(80) NOT NULL,
    last_name VARCHAR(80) NOT NULL,
    street VARCHAR(200),
    city VARCHAR(100),
    postcode VARCHAR(16),
    country CHAR(2) NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    placed_at TIMESTAMP NOT NULL,
    total_cents INTEGER NOT NULL,
    currency CHAR(3) NOT NULL,
    billing_name VARCHAR(160) NOT NULL,
    billing_address VARCHAR(300) NOT NULL
);
CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product VARCHAR(120) NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price_cents INTEGER NOT NULL
);
CREATE TABLE support_tickets (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    opened_at TIMESTAMP NOT NULL,
    subject VARCHAR(200) NOT NULL,
    body TEXT NOT NULL,
    status VARCHAR(16) NOT NULL
);
CREATE TABLE payment_disputes (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    opened_at TIMESTAMP NOT NULL,
    reason VARCHAR(200) NOT NULL,
    status VARCHAR(16) NOT NULL
);
CREATE TABLE newsletter_subscriptions (
    id INTEGER PRIMARY KEY,
    email VARCHAR(254) NOT NULL,
    subscribed_at TIMESTAMP NOT NULL,
    source VARCHAR(32) NOT NULL,
    confirmed BOOLEAN NOT NULL
);
"""

PRODUCTS = ["Trail running shoes", "Rain jacket", "Wool socks (3 pairs)", "Headlamp",
            "Insulated bottle", "Day pack 22 l", "Merino base layer", "Camp stove"]
TOPICS = ["Where is my parcel?", "Wrong size delivered", "Refund not received",
          "Change of delivery address", "Question about warranty"]


@dataclass(frozen=True)
class Subject:
    """The demo's data subject."""

    customer_id: int
    email: str
    phone: str
    name: str


def _png(seed: int) -> bytes:
    """A tiny valid 8x8 PNG in one colour, so avatars are real images."""
    rng = random.Random(seed)
    colour = bytes(rng.randrange(256) for _ in range(3))
    raw = b"".join(b"\x00" + colour * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def build_database(path: Path, customers: int = 300, seed: int = 7) -> tuple[Subject, list[dict]]:
    """Create the shop database; returns the subject and every customer (for the bucket)."""
    fake = Faker(["de_DE", "fr_FR", "en_GB"])
    Faker.seed(seed)
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    people: list[dict[str, Any]] = []
    order_id = line_id = 0
    for cid in range(1, customers + 1):
        first, last = fake.first_name(), fake.last_name()
        person = {
            "id": cid, "email": f"{first}.{last}.{cid}@example.org".lower().replace(" ", ""),
            "phone": f"+49 30 {rng.randrange(1000000, 9999999)}",
            "first_name": first, "last_name": last, "street": fake.street_address(),
            "city": fake.city(), "postcode": fake.postcode(), "country": "DE",
            "created_at": (start + timedelta(days=rng.randrange(600))).isoformat(),
        }
        people.append(person)
        db.execute("INSERT INTO customers VALUES (:id, :email, :phone, :first_name, :last_name,"
                   " :street, :city, :postcode, :country, :created_at)", person)
        for _ in range(3 if cid == 1 else rng.randrange(0, 4)):
            order_id += 1
            placed = start + timedelta(days=rng.randrange(700), hours=rng.randrange(24))
            lines = [(rng.choice(PRODUCTS), rng.randrange(1, 3), rng.randrange(900, 15000))
                     for _ in range(rng.randrange(1, 4))]
            total = sum(q * p for _, q, p in lines)
            db.execute("INSERT INTO orders VALUES (?, ?, ?, ?, 'EUR', ?, ?)",
                       (order_id, cid, placed.isoformat(), total, f"{first} {last}",
                        f"{person['street']}, {person['postcode']} {person['city']}"))
            for product, quantity, price in lines:
                line_id += 1
                db.execute("INSERT INTO order_lines VALUES (?, ?, ?, ?, ?)",
                           (line_id, order_id, product, quantity, price))
            if (cid == 1 and order_id == 1) or rng.random() < 0.03:
                db.execute("INSERT INTO payment_disputes (order_id, opened_at, reason, status) "
                           "VALUES (?, ?, 'chargeback: item not received', 'open')",
                           (order_id, (placed + timedelta(days=20)).isoformat()))
        if cid == 1 or rng.random() < 0.3:
            db.execute("INSERT INTO support_tickets (customer_id, opened_at, subject, body, "
                       "status) VALUES (?, ?, ?, ?, ?)",
                       (cid, (start + timedelta(days=rng.randrange(700))).isoformat(),
                        rng.choice(TOPICS), fake.paragraph(nb_sentences=3), "closed"))
        if cid == 1 or rng.random() < 0.5:
            db.execute("INSERT INTO newsletter_subscriptions (email, subscribed_at, source, "
                       "confirmed) VALUES (?, ?, 'checkout', 1)",
                       (person["email"].upper() if cid == 1 else person["email"],
                        person["created_at"]))
    db.commit()
    db.close()
    first = people[0]
    subject = Subject(1, first["email"], first["phone"],
                      f"{first['first_name']} {first['last_name']}")
    return subject, people


def fill_bucket(s3: Any, bucket: str, people: list[dict], seed: int = 7) -> None:
    """Versioned bucket with avatars, uploads, an abandoned multipart upload and event logs."""
    rng = random.Random(seed)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for person in people[:60]:
        cid = person["id"]
        s3.put_object(Bucket=bucket, Key=f"avatars/{cid}.png", Body=_png(cid),
                      ContentType="image/png")
        if cid == 1:  # an older version, which a plain delete would leave behind
            s3.put_object(Bucket=bucket, Key=f"avatars/{cid}.png", Body=_png(cid + 1000),
                          ContentType="image/png")
        if cid == 1 or rng.random() < 0.2:
            s3.put_object(Bucket=bucket, Key=f"uploads/{cid}/receipt.txt",
                          Body=f"Return receipt for order of customer {cid}\n".encode(),
                          ContentType="text/plain")
    s3.create_multipart_upload(Bucket=bucket, Key="uploads/1/video.mp4")
    for day in (1, 2, 3):
        lines = []
        for n in range(400):
            person = people[0] if n % 97 == day else rng.choice(people)
            lines.append(json.dumps({
                "at": f"2026-11-0{day}T{n % 24:02d}:{n % 60:02d}:00Z",
                "event": rng.choice(["login", "view_product", "add_to_cart", "checkout"]),
                "user": {"email": person["email"]}, "ip": f"203.0.113.{n % 250}",
            }))
        body = ("\n".join(lines) + "\n").encode()
        if day == 3:
            buffer = io.BytesIO()
            with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
                gz.write(body)
            s3.put_object(Bucket=bucket, Key=f"events/2026-11-0{day}.jsonl.gz",
                          Body=buffer.getvalue(), ContentType="application/gzip")
        else:
            s3.put_object(Bucket=bucket, Key=f"events/2026-11-0{day}.jsonl", Body=body,
                          ContentType="application/x-ndjson")
