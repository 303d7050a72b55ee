"""messages to the person, emailed verification, issued download links

The portal verifies a web request by an emailed link or code (``verifications``: a nonce, no
token or code), sends its messages through the outbox (``messages``: one row per request and
kind, stamped when sent) and records every download link it issues (``download_links``: the
token's hash, so a link can be revoked). Authorised agents call the API with tokens the privacy
team issues (``agent_tokens``: the token's hash only).

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
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("agent_tokens")
    op.drop_table("verifications")
    op.drop_table("messages")
    op.drop_table("download_links")
