"""store each checkpoint's Merkle frontier

A checkpoint used to hash the whole ledger again, under the ledger lock that every completion
waits for; with the frontier of the previous checkpoint stored, it hashes only the entries
appended since. Checkpoints made before this revision have none: the next one hashes the
ledger once more and stores its frontier.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frontier", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkpoints", schema=None) as batch_op:
        batch_op.drop_column("frontier")
