"""messages to the person, emailed verification, issued download links

The portal verifies a web request by an emailed link or code (``verifications``: a nonce, no
token or code), sends its messages through the outbox (``messages``: one row per request and
kind, stamped when sent) and records every download link it issues (``download_links``: the
token's hash, so a link can be revoked). Authorised agents call the API with tokens the privacy
team issues (``agent_tokens``: the token's hash only).
Erasures of shared S3 files wait in a batch (``shared_batches``, ``shared_batch_members``:
ids, deadlines and evidence, never keys) so one pass over each file removes every member.
The staff area signs in the privacy team (``staff_users``: argon2 hashes only), keeps their
sessions server-side (``staff_sessions``: the token's SHA-256) and audits every sign-in and
reveal (``staff_events``: names, request ids and outcomes, no personal data of subjects).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

import dsar.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, dsar.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "download_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("bundle_id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        _time("issued_at"), _time("expires_at"),
        sa.Column("issued_via", sa.String(length=32), nullable=False),
        _time("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_download_links_bundle_id", "download_links", ["bundle_id"])
    op.create_index("ix_download_links_request_id", "download_links", ["request_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        _time("created_at"), _time("queued_at"), _time("claimed_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("sent_at", nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "kind"),
    )
    op.create_index("ix_messages_request_id", "messages", ["request_id"])
    op.create_table(
        "verifications",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        _time("created_at"), _time("expires_at"),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        _time("used_at", nullable=True),
        sa.Column("sealed_receipt", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_verifications_expires_at", "verifications", ["expires_at"])
    op.create_table(
        "agent_tokens",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _time("created_at"), _time("last_used_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.Column("verify_key", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "shared_batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _time("created_at"), _time("run_at"), _time("claimed_until", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("started_at", nullable=True), _time("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_shared_batches_system_state", "shared_batches", ["system", "state"])
    op.create_table(
        "shared_batch_members",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        _time("joined_at"),
        sa.Column("own_evidence", sa.JSON(), nullable=False),
        sa.Column("precount", sa.JSON(), nullable=True),
        sa.Column("shared_evidence", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.ForeignKeyConstraint(["batch_id"], ["shared_batches.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_shared_batch_members_batch_id", "shared_batch_members", ["batch_id"])
    op.create_table(
        "staff_users",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        _time("created_at"), _time("password_changed_at"),
        sa.Column("failed_sign_ins", sa.Integer(), nullable=False),
        _time("locked_until", nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        _time("created_at"), _time("last_seen_at"),
        sa.ForeignKeyConstraint(["user_name"], ["staff_users.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_staff_sessions_user_name", "staff_sessions", ["user_name"])
    op.create_table(
        "staff_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _time("at"),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_staff_events_at", "staff_events", ["at"])


def downgrade() -> None:
    op.drop_table("staff_events")
    op.drop_table("staff_sessions")
    op.drop_table("staff_users")
    op.drop_table("shared_batch_members")
    op.drop_table("shared_batches")
    op.drop_table("agent_tokens")
    op.drop_table("verifications")
    op.drop_table("messages")
    op.drop_table("download_links")
