"""The state database schema, in one place.

The schema is changed only by Alembic migrations (``dsar/db/migrations``); these models are what
the code reads and writes. Personal data appears in exactly two tables, both encrypted:
``identities`` (what the request named) and ``subject_keys`` (keys discovered on the way), and in
``staged_items`` (collected data waiting for the bundle, encrypted, purged once it is built).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from dsar.db.types import UTCDateTime

ID = String(32)


class Base(DeclarativeBase):
    pass


class Request(Base):
    """A subject-rights request and its legal clock."""

    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    regime: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(32), index=True)
    submitted_by: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    identity_method: Mapped[str | None] = mapped_column(String(128))
    identity_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64))
    holiday_calendar: Mapped[str | None] = mapped_column(String(8))
    rule_id: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[str] = mapped_column(String(32))
    due: Mapped[date] = mapped_column(Date, index=True)
    acknowledge_by: Mapped[date | None] = mapped_column(Date)
    extension_notice_by: Mapped[date | None] = mapped_column(Date)
    extended_due: Mapped[date | None] = mapped_column(Date)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(128))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closing_reason: Mapped[str | None] = mapped_column(Text)
    attention_reason: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    subject_commitment: Mapped[str] = mapped_column(String(80))
    datamap_digest: Mapped[str | None] = mapped_column(String(80))
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    assembly_enqueued: Mapped[bool] = mapped_column(Boolean, default=False)
    watch_flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    identities: Mapped[list[IdentityRow]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="IdentityRow.id"
    )
    events: Mapped[list[AuditEvent]] = relationship(order_by="AuditEvent.id", viewonly=True)
    pauses: Mapped[list[Pause]] = relationship(order_by="Pause.id", viewonly=True)

    @property
    def effective_due(self) -> date:
        return self.extended_due or self.due


class IdentityRow(Base):
    """One identity of a request: encrypted value, and a keyed hash for look-ups."""

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    lookup_hash: Mapped[str] = mapped_column(String(64), index=True)

    request: Mapped[Request] = relationship(back_populates="identities")


class SubjectKey(Base):
    """A key value discovered for the subject by one task (e.g. a customer id), encrypted."""

    __tablename__ = "subject_keys"
    __table_args__ = (UniqueConstraint("request_id", "name", "lookup_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    lookup_hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(Base):
    """An append-only line of the request's history: who, when, from, to, why."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)


class Pause(Base):
    """An interval in which the request waited for the subject (identity or clarification)."""

    __tablename__ = "pauses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    resume_to: Mapped[str] = mapped_column(String(32))


class OutboxMessage(Base):
    """A broker message waiting to be published after its transaction committed."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "available_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(64))
    queue: Mapped[str] = mapped_column(String(64))
    args: Mapped[list[Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Task(Base):
    """One system and action of a request's plan; the unit of fan-out."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("request_id", "system", "action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    system: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    depends_on: Mapped[list[int]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    precount: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EvidenceRow(Base):
    """Evidence from one task about one collection; no personal data (see dsar.evidence)."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("task_id", "collection", "action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    system: Mapped[str] = mapped_column(String(64))
    collection: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StagedItem(Base):
    """Collected data waiting for the bundle: encrypted, purged when the bundle is built."""

    __tablename__ = "staged_items"
    __table_args__ = (UniqueConstraint("task_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class SystemSlot(Base):
    """A lease on one of a system's concurrency slots, held across the whole fleet."""

    __tablename__ = "system_slots"

    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int | None] = mapped_column(Integer)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Bundle(Base):
    """An export bundle: where it is, its digest, and until when its link works."""

    __tablename__ = "bundles"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), unique=True)
    location: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    link_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delete_after: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CompletionRecord(Base):
    """The signed completion record of a request and its place in the ledger."""

    __tablename__ = "completion_records"

    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    envelope: Mapped[dict[str, Any]] = mapped_column(JSON)
    ledger_index: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerEntry(Base):
    """One leaf of the append-only ledger (an RFC 9162 Merkle tree)."""

    __tablename__ = "ledger_entries"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    appended_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Checkpoint(Base):
    """A signed statement of the ledger's size and root at one moment."""

    __tablename__ = "checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The roots of the tree's perfect subtrees, largest first, 32 bytes each: the next
    checkpoint hashes only the entries appended since (see merkle.extend_frontier)."""
    note: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DownloadLink(Base):
    """A download link that was issued: only the token's hash, so the database cannot hand
    out a working link; a revoked link is refused even while its signature is valid."""

    __tablename__ = "download_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    bundle_id: Mapped[str] = mapped_column(ID, index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_via: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MessageRow(Base):
    """A message to the person, one per request and kind: queued in the transaction that
    decided it, sent by the ``send_message`` actor, stamped ``sent_at`` once and never again.
    The content is not kept; it is rendered from the request when it is sent."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("request_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When it last went into the outbox: a message unsent long after is queued again."""
    language: Mapped[str] = mapped_column(String(8), default="en")
    """The language it is written in (en, de, fr): the portal's, where the request was made."""
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Verification(Base):
    """The emailed check of a web request. The link's token and the one-time code are derived
    from the master key and ``nonce``; neither is stored. The receipt code waits here, encrypted,
    so that only the owner of the address sees it, and is wiped once shown."""

    __tablename__ = "verifications"

    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sealed_receipt: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The receipt code, encrypted, until the verified person has been shown it once."""


class AgentToken(Base):
    """An API token the privacy team issued to an authorised agent (``dsar agents issue``):
    only the token's SHA-256 is kept, so the database cannot hand out a working token."""

    __tablename__ = "agent_tokens"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the agent's Ed25519 verify key (base64) for DRP signed requests; None: it cannot use /drp
    verify_key: Mapped[str | None] = mapped_column(String(64))


class SharedBatch(Base):
    """Erasures of one system's shared S3 files that run as one pass (``workflows.shared_batch``):
    ``open`` while members join, ``running`` under a lease (``claimed_until``), then ``done``.
    ``run_at`` is the earliest time a member's deadline, less the safety margin, or the
    maximum wait requires."""

    __tablename__ = "shared_batches"
    __table_args__ = (Index("ix_shared_batches_system_state", "system", "state"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    system: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SharedBatchMember(Base):
    """One erasure task in a shared batch: its deadline, the evidence of what it erased on its
    own (per-subject objects) and then the evidence of the shared pass. Evidence only (hashes
    and counts); the member's keys stay in its request's encrypted rows. ``precount`` is no
    longer written (the pass keeps :class:`SharedBatchFile` instead); batches of older
    versions may hold one."""

    __tablename__ = "shared_batch_members"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("shared_batches.id"), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"))
    deadline: Mapped[date] = mapped_column(Date)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
    own_evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    precount: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    shared_evidence: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class SharedBatchFile(Base):
    """What one shared file (or table) held for each member of a batch, written by the pass
    just before it changed the file: ``counts`` maps member task ids to records. The first
    attempt's entry is kept, so a pass run again after a crash still knows what the files it
    had already changed held. The file is known by a SHA-256 of its key only."""

    __tablename__ = "shared_batch_files"

    batch_id: Mapped[str] = mapped_column(ForeignKey("shared_batches.id"), primary_key=True)
    collection: Mapped[str] = mapped_column(String(128), primary_key=True)
    file_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict[str, int]] = mapped_column(JSON)


class VendorJob(Base):
    """An erasure a SaaS vendor finishes later (a Segment regulation, a Zendesk permanent
    deletion), submitted by an erasure task that then waits, holding no worker
    (``workflows.vendor_jobs``). ``state`` is ``pending`` until the vendor's status is final:
    ``done``, ``failed``, or ``gave_up`` (pending too long); the fleet asks again at
    ``next_poll_at``. ``last_status`` is the vendor's own word (``RUNNING``). ``job_id`` is the
    vendor's id for the job or for the record being deleted, never a key of the subject;
    ``reference`` is what evidence shows (a keyed hash where the id is the person's record).
    ``task_evidence`` is the task's evidence at submission, the same on each of its jobs."""

    __tablename__ = "vendor_jobs"
    __table_args__ = (Index("ix_vendor_jobs_state_next_poll_at", "state", "next_poll_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), index=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), index=True)
    system: Mapped[str] = mapped_column(String(64))
    vendor: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(64))
    collection: Mapped[str] = mapped_column(String(128))
    job_id: Mapped[str] = mapped_column(String(255))
    reference: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    last_status: Mapped[str | None] = mapped_column(Text)
    every_seconds: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_poll_at: Mapped[datetime] = mapped_column(UTCDateTime)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    task_evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class StaffUser(Base):
    """A member of the privacy team who signs in to the portal's staff area (``dsar staff
    add``): only an argon2id hash of the password is kept. After repeated failed sign-ins the
    account is locked until ``locked_until``."""

    __tablename__ = "staff_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffSession(Base):
    """A signed-in browser: the cookie's token is random and only its SHA-256 is kept, so the
    database cannot hand out a session; it ends when idle too long, at sign-out, or when the
    user is removed or their password changes."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(
        ForeignKey("staff_users.name", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffEvent(Base):
    """The staff area's own audit trail: sign-ins (succeeded, failed, locked), sign-outs and
    reveals of a request's identities. ``actor`` is the name typed or signed in; ``detail``
    says why, never a password or a subject's identity."""

    __tablename__ = "staff_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(ID)
    detail: Mapped[str | None] = mapped_column(Text)
