"""shared batch files: what each shared file held for each member before the pass changed it

A shared batch's pass writes, for each file it is about to rewrite (or each table it is about
to delete from), how many records of each member the file held, before it changes anything.
The first attempt's count of a file is kept: a pass killed midway and run again finds those
counts for the files it had already changed, so each member's ``found`` stays what was there.
No personal data: the file is known by a SHA-256 of its key, the counts by member task id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shared_batch_files",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("collection", sa.String(length=128), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["shared_batches.id"]),
        sa.PrimaryKeyConstraint("batch_id", "collection", "file_hash"),
    )


def downgrade() -> None:
    op.drop_table("shared_batch_files")
