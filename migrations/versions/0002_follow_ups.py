"""follow-ups: announcements that continue an earlier one, and the receipts they reply to

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("announcement") as batch_op:
        batch_op.add_column(sa.Column("follows_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_announcement_follows", "announcement", ["follows_id"], ["id"])
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.add_column(sa.Column("receipt", sa.String(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.drop_column("receipt")
    with op.batch_alter_table("announcement") as batch_op:
        batch_op.drop_constraint("fk_announcement_follows", type_="foreignkey")
        batch_op.drop_column("follows_id")
