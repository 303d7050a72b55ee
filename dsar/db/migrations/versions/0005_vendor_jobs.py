"""vendor jobs: erasures a SaaS vendor finishes later, polled from the state database

An erasure task whose vendor answers with a job (Segment's regulations, Zendesk's permanent
deletion, HubSpot's GDPR delete) waits for it without holding a worker; ``vendor_jobs`` keeps
each job's id, the vendor's last status and when to ask again, so the wait survives worker
restarts. No personal data: the job id is the vendor's id for the job or for the deleted
record, never the subject's key; the evidence is counts and keyed hashes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

import dsar.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, dsar.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vendor_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("system", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("collection", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_status", sa.Text(), nullable=True),
        sa.Column("every_seconds", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("submitted_at"), _time("next_poll_at"), _time("polled_at", nullable=True),
        _time("finished_at", nullable=True),
        sa.Column("task_evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vendor_jobs_task_id", "vendor_jobs", ["task_id"])
    op.create_index("ix_vendor_jobs_request_id", "vendor_jobs", ["request_id"])
    op.create_index("ix_vendor_jobs_state_next_poll_at", "vendor_jobs",
                    ["state", "next_poll_at"])


def downgrade() -> None:
    op.drop_table("vendor_jobs")
