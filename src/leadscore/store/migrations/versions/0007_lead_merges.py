"""which lead was merged into which

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # merges made before this revision left no record: their kept anonymous leads are found
    # by their own id only
    op.create_table(
        "lead_merges",
        sa.Column("lead_id", sa.String(length=200), nullable=False),
        sa.Column("into_id", sa.String(length=200), nullable=False),
        sa.Column("merged_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id", "into_id", name=op.f("pk_lead_merges")),
    )
    op.create_index(op.f("ix_lead_merges_into_id"), "lead_merges", ["into_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lead_merges_into_id"), table_name="lead_merges")
    op.drop_table("lead_merges")
