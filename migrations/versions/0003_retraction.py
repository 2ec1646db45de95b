"""retraction: who asked to delete a published announcement, and why

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("announcement") as batch_op:
        batch_op.add_column(sa.Column("retract_requested_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("retract_reason", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("announcement") as batch_op:
        batch_op.drop_column("retract_reason")
        batch_op.drop_column("retract_requested_by")
